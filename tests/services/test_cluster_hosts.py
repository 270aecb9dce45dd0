"""Hosts file, host checks and plans: every refusal says why, and a bad hosts file changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlxtui.devhub.templates import LLAMA3_TEMPLATE
from mlxtui.services.bounded import BadFileError
from mlxtui.services.cluster_checks import HostCheck, check_hosts
from mlxtui.services.cluster_hosts import Host, Hosts, hosts_path, load_hosts, local_hosts, parse_hosts, save_hosts
from mlxtui.services.cluster_plan import make_plan, split_support
from tests.fixtures.models import tiny_model

LOCAL = {"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}


def mlxtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlxtui", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("data, words", [
    ({"hosts": []}, "must list hosts"),
    ([{"ssh": "mac 1", "ips": ["10.0.0.1"]}], "is not a host name ssh would take"),
    ([{"ssh": "-oProxyCommand=touch /tmp/x", "ips": ["10.0.0.1"]}], "is not a host name ssh would take"),
    ([{"ssh": "mac1", "ips": ["10.0.0.300"]}], "is not an IP address"),
    ([{"ssh": "mac1"}], "the ring backend needs an IP for every host; mac1 has none"),
    ({"backend": "carrier-pigeon", "hosts": [LOCAL, LOCAL]}, "is not one of ring"),
    ({"hosts": [LOCAL], "envs": ["NOEQUALS"]}, "NAME=value"),
    ([["127.0.0.1"]], "must be an object"),
])
def test_a_malformed_hosts_file_is_refused_with_the_reason(data: object, words: str) -> None:
    with pytest.raises(BadFileError, match=words.replace("(", r"\(")):
        parse_hosts(data)


def test_hosts_file_round_trips_in_mlx_launch_format_in_the_config_dir() -> None:
    hosts = Hosts((Host("mac1.local", ("10.0.0.1",)), Host("mac2.local", ("10.0.0.2",), (None, "rdma_en3"))), "ring")
    path = save_hosts(hosts)
    assert path == hosts_path() and path.parent.name == "mlxtui"
    data = json.loads(path.read_text())
    assert data == {"backend": "ring", "envs": [], "hosts": [
        {"ssh": "mac1.local", "ips": ["10.0.0.1"]}, {"ssh": "mac2.local", "ips": ["10.0.0.2"], "rdma": [None, "rdma_en3"]}]}
    # mlx.launch's own parser reads the same file
    from mlx._distributed_utils.common import Hostfile

    parsed = Hostfile.from_file(path)
    assert [h.ssh_hostname for h in parsed.hosts] == ["mac1.local", "mac2.local"] and parsed.backend == "ring"
    assert load_hosts() == hosts


def test_a_jaccl_hosts_file_with_several_rdma_devices_per_peer_is_kept_as_written() -> None:
    data = {"backend": "jaccl", "envs": ["MLX_METAL_FAST_SYNCH=1"], "hosts": [
        {"ssh": "m1", "ips": ["10.0.0.1"], "rdma": [None, ["rdma_en2", "rdma_en3"]]},
        {"ssh": "m2", "ips": ["10.0.0.2"], "rdma": [["rdma_en2", "rdma_en3"], None]}]}
    hosts = parse_hosts(data)
    assert len(set(hosts.hosts)) == 2  # hashable, so ranks on one host share its check
    assert hosts.to_json() == data


def test_cli_add_with_a_bad_ip_leaves_the_hosts_file_as_it_was() -> None:
    assert mlxtui("cluster", "add", "127.0.0.1").returncode == 0
    before = hosts_path().read_bytes()
    bad = mlxtui("cluster", "add", "mac2", "--ip", "10.0.0.999")
    assert bad.returncode == 6 or bad.returncode == 2, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxtui:") and "not an IP address" in lines[0]
    assert hosts_path().read_bytes() == before
    shown = mlxtui("cluster", "hosts")
    assert "rank 0: 127.0.0.1" in shown.stdout


def test_a_dead_host_is_reported_unreachable_and_the_plan_refused(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "llama", model_type="llama", tokenizer="llama3", chat_template=LLAMA3_TEMPLATE)
    hosts = parse_hosts({"hosts": [LOCAL, {"ssh": "dead.invalid", "ips": ["10.255.255.1"]}]})
    checks = asyncio.run(check_hosts(hosts, str(model)))
    assert checks[0].ok and checks[0].model_present
    assert not checks[1].reachable and not checks[1].ok
    assert "dead.invalid is not reachable over SSH" in checks[1].problems[0]
    assert checks[1].verdict().startswith("NOT READY · dead.invalid is not reachable over SSH")  # the table's words
    plan = make_plan(str(model), hosts, checks)
    assert not plan.ok and any("dead.invalid is not reachable" in p for p in plan.problems)


@pytest.fixture
def other_mlx_lm_over_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A host reached through `ssh` (an ssh on PATH that runs the command here) whose mlx-lm is 0.1.0."""
    site = tmp_path / "other-site"
    dist = site / "mlx_lm-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mlx-lm\nVersion: 0.1.0\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text('#!/bin/bash\nwhile [[ "$1" == -o ]]; do shift 2; done\nshift\n'
                   f'export PYTHONPATH={site}\nexec bash -c "$*"\n')
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return "studio.local"


def test_a_version_mismatch_is_named_and_refused(tmp_path: Path, other_mlx_lm_over_ssh: str) -> None:
    model = tiny_model(tmp_path / "llama", model_type="llama", tokenizer="llama3", chat_template=LLAMA3_TEMPLATE)
    hosts = parse_hosts({"hosts": [LOCAL, {"ssh": other_mlx_lm_over_ssh, "ips": ["10.0.0.2"]}]})
    checks = asyncio.run(check_hosts(hosts, str(model)))
    import mlx_lm

    assert checks[1].reachable
    assert f"mlx-lm 0.1.0 on studio.local, {mlx_lm.__version__} here: install the same version" in checks[1].problems
    assert checks[1].verdict() == f"NOT READY · {checks[1].problems[0]}"
    plan = make_plan(str(model), hosts, checks)
    assert not plan.ok and any("mlx-lm 0.1.0 on studio.local" in p for p in plan.problems)


def test_an_architecture_with_no_split_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "n_embd": 128, "n_layer": 2, "n_head": 4, "n_ctx": 256, "n_positions": 256,
        "vocab_size": 1024, "layer_norm_epsilon": 1e-5, "num_hidden_layers": 2, "hidden_size": 128}))
    assert split_support(json.loads((folder / "config.json").read_text())) == ()
    plan = make_plan(str(folder), local_hosts(2), [])
    assert not plan.ok and plan.split is None
    assert "mlx-lm has no pipeline or tensor split for the gpt2 architecture" in plan.problems
    result = mlxtui("cluster", "plan", str(folder))  # no hosts file yet: the CLI says where to add hosts
    assert result.returncode == 3 and "mlxtui cluster add" in result.stderr


def test_splits_come_from_mlx_lm_and_too_little_memory_is_refused(tmp_path: Path) -> None:
    llama = tiny_model(tmp_path / "llama", model_type="llama", tokenizer="llama3", chat_template=LLAMA3_TEMPLATE)
    qwen = tiny_model(tmp_path / "qwen", repo_id="tests/q", model_type="qwen2", tokenizer="qwen", num_hidden_layers=4)
    assert split_support(json.loads((llama / "config.json").read_text())) == ("tensor",)
    assert split_support(json.loads((qwen / "config.json").read_text())) == ("pipeline", "tensor")
    # One file, no index: mlx-lm's pipeline loader could not find each rank's layers, so tensor is chosen.
    plan = make_plan(str(qwen), local_hosts(2), [])
    assert plan.ok and plan.split == "tensor"
    forced = make_plan(str(qwen), local_hosts(2), [], "pipeline")
    assert not forced.ok and any("model.safetensors.index.json" in p for p in forced.problems)
    small = [HostCheck(Host("127.0.0.1", ("127.0.0.1",)), True, {"memory_total": 1_000_000, "memory_free": 500_000})] * 2
    tight = make_plan(str(llama), local_hosts(2), small)
    assert not tight.ok
    assert any(p.startswith("rank 0 on 127.0.0.1 needs") and "75% of its memory" in p for p in tight.problems)

"""Clusters on one machine: two ranks on 127.0.0.1 over the ring backend, real mlx.launch and mlx_lm server.

Pipeline on a tiny qwen2, tensor on a tiny llama (random weights, float32), each compared with a single
process's greedy text; stopping leaves no rank process; a rank killed mid-reply ends the reply with a clear
error and the others are stopped; the supervisor losing mlxtui (its stdin closing) stops everything too.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxtui.devhub.templates import CHATML_TEMPLATE, LLAMA3_TEMPLATE
from mlxtui.services.chat_sampling import SamplingSettings
from mlxtui.services.cluster import Cluster, ClusterService
from mlxtui.services.cluster_chat import ClusterChatService
from mlxtui.services.cluster_hosts import ClusterError, local_hosts
from mlxtui.services.cluster_supervisor import live_in_group
from mlxtui.services.events import TokenDelta
from tests.fixtures.models import tiny_model
from tests.process_helpers import foreground

pytestmark = pytest.mark.timeout(600) if hasattr(pytest.mark, "timeout") else []

PROMPT = "Tell me about the sea."


@pytest.fixture(scope="module")
def cluster_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A pipeline-able qwen2 (4 layers, sharded with an index, as sharded_load needs) and a tensor-only llama."""
    root = tmp_path_factory.mktemp("cluster-models")
    return {
        "qwen2": tiny_model(root / "qwen2", repo_id="tests/cluster-qwen2", model_type="qwen2", tokenizer="qwen",
                            chat_template=CHATML_TEMPLATE, dtype="float32", num_hidden_layers=4, shards=2),
        "llama": tiny_model(root / "llama", repo_id="tests/cluster-llama", model_type="llama", tokenizer="llama3",
                            chat_template=LLAMA3_TEMPLATE, dtype="float32"),
    }


def single_process_text(folder: Path, prompt: str, max_tokens: int) -> str:
    """What one process generates greedily for the same chat turn (mlx-lm's own load and stream_generate)."""
    from mlx_lm import load, stream_generate
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = load(str(folder))
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
    return "".join(r.text for r in stream_generate(model, tokenizer, ids, max_tokens=max_tokens,
                                                   sampler=make_sampler(0.0)))


def rank_processes(model: Path) -> list[str]:
    """Live (not zombie) processes of any rank serving `model` on this machine."""
    out = subprocess.run(["ps", "-A", "-ww", "-o", "pid=,stat=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if f"--model {model}" in line and line.split()[1][0] != "Z" and "mlx_lm" in line]


def kill_leftovers(model: Path) -> list[str]:
    """SIGKILL every rank process still serving `model` (mlx.launch, wrappers, servers); the ones it found."""
    left = rank_processes(model)
    for line in left:
        try:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


@pytest.fixture(autouse=True)
def no_rank_outlives_its_test(cluster_models: dict[str, Path]) -> Iterator[None]:
    """A test that fails half-way must not leave idle ranks burning CPU (and counted by the next test's
    `servers()`): whatever is left is killed here, and reported, after the test's own assertions have run."""
    yield
    left = [line for model in cluster_models.values() for line in kill_leftovers(model)]
    assert not left, "rank processes outlived the test (now killed):\n" + "\n".join(left)


def launcher_cpu_seconds(cluster: Cluster, seconds: float) -> float:
    """CPU time this cluster's mlx.launch (run through cluster_launch) used over `seconds` (Linux /proc)."""
    out = subprocess.run(["ps", "-A", "-ww", "-o", "pid=,args="], capture_output=True, text=True).stdout
    pid = next(int(line.split()[0]) for line in out.splitlines()
               if "mlxtui.services.cluster_launch" in line and str(cluster.run_dir) in line)

    def used() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    before = used()
    time.sleep(seconds)
    return used() - before


def servers(model) -> list[str]:
    """The mlx_lm server processes themselves (not mlx.launch or the rank wrappers, whose lines name them too)."""
    return [line for line in rank_processes(model) if line.split(None, 2)[2].split()[1:4] == ["-m", "mlx_lm", "server"]]


async def reply_text(chat: ClusterChatService, prompt: str, max_tokens: int) -> str:
    text = ""
    async for event in chat.reply([{"role": "user", "content": prompt}], None,
                                  SamplingSettings(temperature=0.0, max_tokens=max_tokens)):
        if isinstance(event, TokenDelta):
            text += event.text
    return text


async def _open(model: Path, split: str | None = None) -> Cluster:
    return await ClusterService().open(str(model), local_hosts(2), split, launch_timeout=300)


@pytest.mark.parametrize("arch, split", [("qwen2", "pipeline"), ("llama", "tensor")])
def test_two_local_ranks_give_the_single_process_text_and_stop_leaves_no_rank(
        cluster_models: dict[str, Path], arch: str, split: str) -> None:
    model = cluster_models[arch]
    expected = single_process_text(model, PROMPT, 24)

    async def run() -> tuple[str, Cluster]:
        cluster = await _open(model)
        try:
            assert cluster.split == split  # chosen from what mlx-lm has for the architecture
            assert [s.state for s in cluster.states.values()] == ["running", "running"]
            assert len(servers(model)) == 2  # one mlx_lm server per rank
            return await reply_text(ClusterChatService(cluster), PROMPT, 24), cluster
        finally:
            result = await cluster.stop()
            assert result.survivors == () and result.failure is None

    text, cluster = asyncio.run(run())
    assert text == expected and text
    assert rank_processes(model) == []
    assert {s.state for s in cluster.states.values()} == {"stopped"}
    pgids = [s.pgid for s in cluster.states.values()]
    assert all(pgids) and len(set(pgids)) == 2  # each rank had its own process group, now empty
    # No live process in either group (a zombie awaiting its reaper is not running; ps shows it as Z).
    assert [live_in_group(pgid) for pgid in pgids] == [0, 0]


def test_a_rank_killed_mid_reply_is_a_clear_error_and_the_others_are_stopped(cluster_models: dict[str, Path]) -> None:
    model = cluster_models["llama"]

    async def run() -> tuple[str, Cluster, int]:
        cluster = await _open(model, "tensor")
        chat = ClusterChatService(cluster)
        tokens = 0
        try:
            with pytest.raises(ClusterError) as caught:
                async for event in chat.reply([{"role": "user", "content": PROMPT}], None,
                                              SamplingSettings(temperature=0.0, max_tokens=100000)):
                    if isinstance(event, TokenDelta):
                        tokens += 1
                        if tokens == 1:
                            os.killpg(cluster.states[1].pgid, signal.SIGKILL)  # the host loses power
            await asyncio.wait_for(cluster.stopped.wait(), 120)
            return str(caught.value), cluster, tokens
        finally:
            await cluster.stop()

    message, cluster, tokens = asyncio.run(run())
    assert tokens >= 1
    assert "Rank 1 on 127.0.0.1" in message and "every other rank was stopped" in message
    assert cluster.result is not None and cluster.result.survivors == ()
    assert rank_processes(model) == []


def test_the_supervisor_stops_every_rank_when_mlxtui_goes_away(cluster_models: dict[str, Path]) -> None:
    """mlxtui crashing or losing its terminal closes the supervisor's stdin: that alone stops the ranks."""
    model = cluster_models["llama"]

    async def run() -> Cluster:
        cluster = await _open(model, "tensor")
        assert len(servers(model)) == 2
        if Path("/proc/self/stat").exists():
            # Idle, mlx.launch waits instead of spinning (its own select watched an always-writable pipe:
            # 80-90 % of a core); a spinning one gets far more than this even on a loaded machine.
            assert await asyncio.to_thread(launcher_cpu_seconds, cluster, 3.0) < 0.3
        assert cluster._process is not None and cluster._process.stdin is not None
        cluster._process.stdin.close()  # no "stop": the pipe just closes
        await asyncio.wait_for(cluster.stopped.wait(), 120)
        await cluster.stop()  # already stopped: only reaps the supervisor
        return cluster

    cluster = asyncio.run(run())
    assert cluster.result is not None and cluster.result.survivors == ()
    assert rank_processes(model) == []


def test_a_plan_with_problems_is_refused_before_anything_starts(cluster_models: dict[str, Path]) -> None:
    model = cluster_models["llama"]

    async def run() -> None:
        await ClusterService().open(str(model), local_hosts(2), "pipeline")

    with pytest.raises(ClusterError, match="no pipeline split for the llama architecture"):
        asyncio.run(run())
    assert rank_processes(model) == []


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_cluster_run_from_the_cli_leaves_no_rank_when_interrupted_or_killed(
        cluster_models: dict[str, Path], tmp_path: Path, how: int) -> None:
    """Ctrl-C or SIGTERM (a service manager) stops the ranks in order and says so; even `mlxtui` killed outright
    (a crash) leaves none: the supervisor's pipe closes and it stops them."""
    model = cluster_models["llama"]
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps({"backend": "ring", "hosts": [{"ssh": "127.0.0.1"}, {"ssh": "127.0.0.1"}]}))
    process = foreground(["-m", "mlxtui", "cluster", "--hosts", str(hosts), "run", str(model)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    seen: list[str] = []
    try:
        for line in process.stdout:
            seen.append(line)
            if line.startswith("Serving at http://127.0.0.1:"):
                break
        # Keep reading: a child blocked writing rank logs to a full pipe could not react to the signal.
        drain = threading.Thread(target=lambda: seen.extend(process.stdout or ()), daemon=True)
        drain.start()
        assert len(servers(model)) == 2, "".join(seen)
        process.send_signal(how)
        code = process.wait(timeout=120)
        drain.join(timeout=30)
        deadline = time.monotonic() + 120
        while rank_processes(model) and time.monotonic() < deadline:
            time.sleep(0.2)  # polling a condition, bounded: after SIGKILL the supervisor stops the ranks on its own
        assert rank_processes(model) == []
        output = "".join(seen)
        if how == signal.SIGKILL:
            assert code == -signal.SIGKILL
        else:
            assert code == 128 + how, output
            assert f"Stopped: stopped (on {signal.Signals(how).name})" in output
            assert "could not be stopped" not in output
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        kill_leftovers(model)


def test_chat_with_hosts_stops_every_rank_on_sigterm_at_the_prompt(cluster_models: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    model = cluster_models["qwen2"]
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps([{"ssh": "127.0.0.1"}, {"ssh": "127.0.0.1"}]))
    process = foreground(["-m", "mlxtui", "chat", str(model), "--hosts", str(hosts), "--max-tokens", "4"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdin is not None and process.stderr is not None
        process.stdin.write("Hello\n")
        process.stdin.flush()
        for line in process.stderr:  # the figures line ends the turn; chat then waits on stdin, still open
            if line.startswith("prompt: "):
                break
        assert len(servers(model)) == 2
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)  # stdin stays open: chat is stopped by the signal, not by end of input
        err = process.stderr.read()
        assert process.returncode == 128 + signal.SIGTERM, err
        assert "mlxtui: the cluster was stopped (on SIGTERM)" in err
        assert rank_processes(model) == []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        kill_leftovers(model)


def test_chat_with_hosts_prints_chats_json_plus_ranks_and_split(cluster_models: dict[str, Path], tmp_path: Path) -> None:
    model = cluster_models["qwen2"]
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps([{"ssh": "127.0.0.1"}, {"ssh": "127.0.0.1"}]))  # mlx.launch also takes a bare list
    done = subprocess.run([sys.executable, "-m", "mlxtui", "chat", str(model), "--hosts", str(hosts), "--prompt", PROMPT,
                           "--max-tokens", "12", "--temp", "0", "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["ranks"] == 2 and document["split"] == "pipeline"
    assert document["reply"] == single_process_text(model, PROMPT, 12)
    assert {"prompt_tokens", "generation_tps", "ttft_s", "generation_tokens", "finish_reason"} <= set(document)
    assert rank_processes(model) == []
    forced = subprocess.run([sys.executable, "-m", "mlxtui", "chat", str(model), "--hosts", str(hosts), "--split",
                              "tensor", "--prompt", "hi", "--json"], capture_output=True, text=True, timeout=600)
    # the qwen2 fixture has 4 heads, 2 kv heads and 256 intermediate: tensor over 2 works; a 3-rank file does not
    assert forced.returncode == 0 and json.loads(forced.stdout)["split"] == "tensor", forced.stderr
    hosts.write_text(json.dumps([{"ssh": "127.0.0.1"}] * 3))
    three = subprocess.run([sys.executable, "-m", "mlxtui", "chat", str(model), "--hosts", str(hosts), "--split",
                            "tensor", "--prompt", "hi", "--json"], capture_output=True, text=True, timeout=600)
    assert three.returncode == 1 and three.stdout == ""
    lines = three.stderr.strip().splitlines()
    assert len(lines) == 1 and "tensor parallelism over 3 ranks needs num_attention_heads (4) divisible by 3" in lines[0]

"""The installed `mlxtui --demo` over a real SSH connection, in tmux, keys only.

Search → Inspect → Convert over SSH at 80x24; then a conversion that outlives a dropped SSH
connection and shows again when mlxtui is reopened in a new connection.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.sshd import SSHServer, sshd_available
from tests.e2e.tmux import Terminal, tmux_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (tmux_available() and sshd_available()), reason="needs tmux and openssh-server"),
]

MLXTUI = Path(sys.executable).with_name("mlxtui")


@pytest.fixture
def ssh(tmp_path: Path):
    server = SSHServer(tmp_path / "ssh")
    yield server
    server.stop()


def remote_env(isolated_home: Path, hub_seed: Path, **extra: str) -> dict[str, str]:
    demo = isolated_home / "data" / "mlxtui" / "demo-hub"
    if not demo.exists():
        shutil.copytree(hub_seed, demo)
    return {
        "TERM": "xterm-256color",
        "HOME": str(isolated_home),
        "XDG_CONFIG_HOME": str(isolated_home / "config"),
        "XDG_DATA_HOME": str(isolated_home / "data"),
        "HF_HOME": str(isolated_home / "hf"),
        **extra,
    }


def search_inspect_convert(term: Terminal) -> None:
    term.wait_for(lambda s: "DEMO" in s and "online" in s, timeout=60)
    term.wait_for("results", timeout=60)  # the first search runs by itself once the Hub answers
    term.type("danube")
    term.wait_for(lambda s: "results for “danube”" in s and "h2oai/h2o-danube2-tiny-chat" in s, timeout=30)
    term.keys("Escape")  # from the query to the results; the first row is the most downloaded
    time.sleep(0.3)
    term.keys("Enter")
    screen = term.wait_for("Supported by mlx-lm", timeout=30)
    assert "mistral" in screen
    term.keys("c")
    term.wait_for(lambda s: "h2oai/h2o-danube2-tiny-chat" in s and "Add to queue" in s, timeout=30)
    term.keys("C-r")


def test_search_inspect_convert_over_ssh(ssh: SSHServer, isolated_home: Path, hub_seed: Path) -> None:
    env = remote_env(isolated_home, hub_seed)
    with Terminal(ssh.command(f"{MLXTUI} --demo", env=env), width=80, height=24) as term:
        search_inspect_convert(term)
        term.wait_for(lambda s: "Job" in s and "done." in s, timeout=120)
        # The figures come first on the result line, so they show at 80 columns once the toast fades.
        term.wait_for(lambda s: "bits/weight" in s and "h2o-danube2-tiny-chat-4bit" in s, timeout=30)
        term.keys("C-q")
    out = isolated_home / "data" / "models" / "mlx" / "h2o-danube2-tiny-chat-4bit"
    assert (out / "config.json").exists() and (out / "mlxtui-provenance.json").exists()
    assert json.loads((out / "config.json").read_text())["quantization"]["bits"] == 4


def test_conversion_survives_a_dropped_ssh_connection(ssh: SSHServer, isolated_home: Path, hub_seed: Path) -> None:
    env = remote_env(isolated_home, hub_seed, MLXTUI_CONVERT_SLOWDOWN_S="0.5")
    jobs = isolated_home / "data" / "mlxtui" / "jobs"
    term = Terminal(ssh.command(f"{MLXTUI} --demo", env=env), width=120, height=40)
    try:
        search_inspect_convert(term)
        term.wait_for(lambda s: "of 16 layers" in s, timeout=60)  # mid-quantize (slowed down)
    finally:
        term.close()  # the SSH client dies with its terminal: the connection drops mid-conversion
    job_file = next(jobs.glob("*/job.json"))
    assert json.loads(job_file.read_text())["state"] in ("running", "queued")
    deadline = time.monotonic() + 120
    while json.loads(job_file.read_text())["state"] != "done":
        assert time.monotonic() < deadline, "the conversion did not finish after the connection dropped"
        assert json.loads(job_file.read_text())["state"] in ("running", "queued"), job_file.read_text()
        time.sleep(0.5)
    # A new connection, mlxtui again: the finished job is listed in Convert.
    with Terminal(ssh.command(f"{MLXTUI} --demo", env=env), width=120, height=40) as again:
        again.wait_for(lambda s: "online" in s and "results" in s, timeout=60)
        again.keys("Escape")
        time.sleep(0.3)
        again.keys("3")
        screen = again.wait_for(job_file.parent.name, timeout=30)
        assert "done" in screen and "h2oai/h2o-danube2-tiny-chat" in screen

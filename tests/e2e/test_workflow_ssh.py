"""The installed `mlxtui --demo` over a real SSH connection, in tmux, keys only.

The whole workflow (search → inspect → convert → chat → card → upload) at 80x24 and 120x40 with a
256-colour TERM and at 80x24 with a 16-colour one, checked at the end against the Hub's own file list;
a resize down to 60x20 and below; and a conversion that outlives a dropped SSH connection and shows
again when mlxtui is reopened in a new connection.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.sshd import SSHServer
from tests.e2e.tmux import Terminal

pytestmark = [pytest.mark.e2e, pytest.mark.sshd]

MLXTUI = Path(sys.executable).with_name("mlxtui")


@pytest.fixture
def ssh(tmp_path: Path):
    server = SSHServer(tmp_path / "ssh")
    yield server
    server.stop()


def remote_env(isolated_home: Path, hub_seed: Path, **extra: str) -> dict[str, str]:
    """The SSH session's environment: the test's own XDG/HF folders, the session's demo Hub copied in."""
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
    # Each wait names everything it checks: a capture can land mid-repaint, with part of the screen drawn.
    term.wait_for(lambda s: "Supported by mlx-lm" in s and "mistral" in s, timeout=30)
    term.keys("c")
    term.wait_for(lambda s: "h2oai/h2o-danube2-tiny-chat" in s and "Add to queue" in s, timeout=30)
    term.keys("C-r")


def chat_card_upload(term: Terminal) -> None:
    """From a finished conversion: Library → Chat (one reply) → Library → Card (save) → Upload (confirm)."""
    term.keys("Escape")  # out of the form, onto the tab bar, where digits switch panes
    time.sleep(0.3)
    term.keys("7")
    # The detail line under the table describes the highlighted row: the folder just converted.
    # (the line may wrap between the folder's path and its type, so any whitespace may separate them)
    term.wait_for(lambda s: "1 converted folder" in s and re.search(r"·\s+mistral", s.split("─" * 20)[-1]),
                  timeout=30)
    term.keys("Enter")  # that row opens in Chat
    term.wait_for(lambda s: "h2o-danube2-tiny-chat-4bit · mistral" in s and "Enter sends" in s, timeout=60)
    term.type("Hello there")
    term.keys("Enter")
    term.wait_for(lambda s: "✓ done" in s and re.search(r"gen\s+\d+\.\d tok/s", s)
                  and re.search(r"first\s+\d+ ms", s), timeout=90)
    term.keys("Escape")  # nothing to stop: leave the message box for the log
    time.sleep(0.3)
    term.keys("Home")  # the log followed the reply to its end; the top shows the message sent
    term.wait_for("Hello there", timeout=30)
    term.keys("7")
    term.wait_for("converted folder", timeout=30)
    term.keys("e")
    term.wait_for(lambda s: "no problems" in s and "library_name: mlx" in s, timeout=60)
    term.keys("C-s")
    term.wait_for("· saved", timeout=30)
    term.keys("C-o")
    # The card was saved before a target was chosen: the preflight may warn that its usage snippet names
    # another repo (a warning, not a refusal; the Card pane follows the target once Upload chooses it).
    term.wait_for(lambda s: "Token: alice" in s and ("README.md: lint-clean" in s or "usage snippet names" in s),
                  timeout=60)
    term.keys("C-g")
    term.wait_for(lambda s: "Upload to the Hub?" in s and "alice/h2o-danube2-tiny-chat-4bit" in s, timeout=30)
    term.keys("y")
    term.wait_for("Uploaded and verified", timeout=90)


def assert_uploaded(devhub_factory, demo_root: Path, folder: Path, repo_id: str) -> None:
    """The repo on the (restarted) demo Hub holds every local file with the same size and sha256."""
    from huggingface_hub import HfApi

    from mlxtui.devhub.demo import DEMO_WRITE_TOKEN

    hub = devhub_factory(demo_root, tokens=None)
    api = HfApi(endpoint=hub.url, token=DEMO_WRITE_TOKEN)
    remote = {f.path: f for f in api.list_repo_tree(repo_id, recursive=True, expand=True) if hasattr(f, "size")}
    local = {p.name: p for p in folder.iterdir() if p.is_file()}
    # The Hub adds .gitattributes when it creates a repo; everything else came from the folder.
    assert set(remote) == set(local) | {".gitattributes"}, (sorted(remote), sorted(local))
    for name, path in local.items():
        data = path.read_bytes()
        assert remote[name].size == len(data), name
        if remote[name].lfs is not None:
            assert remote[name].lfs.sha256 == hashlib.sha256(data).hexdigest(), name
        else:  # a regular file: its git blob id
            assert remote[name].blob_id == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(), name


@pytest.mark.parametrize(
    ("width", "height", "term_name"),
    [(80, 24, "xterm-256color"), (120, 40, "xterm-256color"), (80, 24, "xterm")],
    ids=["80x24", "120x40", "80x24-16-colours"],
)
def test_whole_workflow_over_ssh_with_keys_only(
    ssh: SSHServer, isolated_home: Path, hub_seed: Path, devhub_factory, width: int, height: int, term_name: str,
) -> None:
    env = remote_env(isolated_home, hub_seed, TERM=term_name)
    with Terminal(ssh.command(f"{MLXTUI} --demo", env=env), width=width, height=height, term=term_name) as term:
        search_inspect_convert(term)
        term.wait_for(lambda s: "Job" in s and "done." in s, timeout=120)
        # The figures come first on the result line, so they show at 80 columns once the toast fades
        # (the output path follows on its own lines; the folder itself is checked below).
        term.wait_for(lambda s: re.search(r"✓ 4bit · 4\.\d+ bits/weight", s), timeout=30)
        chat_card_upload(term)
        if term_name == "xterm":
            # A 16-colour terminal gets no 256-colour or true-colour escapes.
            styled = term.screen(escapes=True)
            assert "\x1b[" in styled and not re.search(r"[34]8;[25];", styled), styled[:400]
        term.keys("C-q")
        term.wait_for(lambda s: "Uploaded" not in s, timeout=20)
    out = isolated_home / "data" / "models" / "mlx" / "h2o-danube2-tiny-chat-4bit"
    assert json.loads((out / "config.json").read_text())["quantization"]["bits"] == 4
    assert (out / "mlxtui-provenance.json").exists()
    assert "library_name: mlx" in (out / "README.md").read_text()
    assert_uploaded(devhub_factory, isolated_home / "data" / "mlxtui" / "demo-hub", out,
                    "alice/h2o-danube2-tiny-chat-4bit")


def test_resize_to_60x20_stays_usable_and_smaller_shows_a_notice(
    ssh: SSHServer, isolated_home: Path, hub_seed: Path,
) -> None:
    env = remote_env(isolated_home, hub_seed)
    with Terminal(ssh.command(f"{MLXTUI} --demo", env=env), width=120, height=40) as term:
        term.wait_for(lambda s: "online" in s and "results" in s, timeout=60)
        term.resize(60, 20)
        # Redrawn for the new size: nothing wider than 60 columns, the results and the footer's keys.
        term.wait_for(lambda s: max(map(len, s.splitlines())) <= 60 and "results" in s and "^q" in s
                      and "1 Srch" in s and "9 Hst" in s and "needs at least" not in s, timeout=20)  # short tab names: all nine fit
        term.type("danube")  # still usable at 60x20: the search runs and its results show
        term.wait_for("h2oai/h2o-danube2-tiny-chat", timeout=30)
        term.resize(50, 15)
        # Waits for the whole notice: a capture can land mid-repaint, with half of it drawn.
        term.wait_for(lambda s: "50x15" in s and "needs at least" in s and "60x18" in s and "(ctrl+q quits)" in s,
                      timeout=20)
        term.resize(100, 30)  # back to a usable size: the panes return, nothing was lost
        term.wait_for(lambda s: "needs at least" not in s and "h2oai/h2o-danube2-tiny-chat" in s, timeout=20)
        term.keys("C-q")
        term.wait_for(lambda s: "Search" not in s, timeout=20)


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
        again.wait_for(lambda s: job_file.parent.name in s and "done" in s and "h2oai/h2o-danube2-tiny-chat" in s,
                       timeout=30)

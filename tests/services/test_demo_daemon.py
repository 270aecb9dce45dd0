"""The shared demo Hub: `--demo` commands reuse one background server whose URL outlives each command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlxtui.devhub.daemon import RUNNING_FILE, ensure_running, read_running

MLXTUI = Path(sys.executable).with_name("mlxtui")


@pytest.fixture
def demo_root(isolated_home: Path, hub_seed: Path) -> Path:
    """The session's seeded demo store copied to where `mlxtui --demo` looks for it."""
    root = isolated_home / "data" / "mlxtui" / "demo-hub"
    shutil.copytree(hub_seed, root)
    return root


def _search(env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MLXTUI), "--demo", "search", "mistral", "--json"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env_extra or {})})


def test_two_demo_commands_share_one_hub_that_outlives_them(demo_root: Path) -> None:
    first = _search()
    assert first.returncode == 0, first.stderr
    running = json.loads((demo_root / RUNNING_FILE).read_text())
    second = _search()
    assert second.returncode == 0, second.stderr
    assert json.loads((demo_root / RUNNING_FILE).read_text()) == running  # the same server, reused
    hub = read_running(demo_root)
    assert hub is not None and hub.url == running["url"]  # still answering after both commands exited
    from huggingface_hub import HfApi

    assert any(m.id.startswith("mistralai/") for m in HfApi(endpoint=hub.url).list_models(search="mistral"))
    hub.stop()


def test_a_stale_record_of_a_dead_server_starts_a_new_one(demo_root: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (demo_root / RUNNING_FILE).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": dead.pid}))
    hub = ensure_running(demo_root)
    try:
        assert hub.started and hub.url != "http://127.0.0.1:9" and read_running(demo_root) is not None
    finally:
        hub.stop()


def test_an_idle_hub_stops_by_itself_and_clears_its_record(demo_root: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLXTUI_DEMO_IDLE_S", "1")
    hub = ensure_running(demo_root)
    process_gone = False
    for _ in range(600):  # up to a minute on a loaded machine; it needs ~1.5 s
        try:
            os.kill(hub.pid, 0)
        except ProcessLookupError:
            process_gone = True
            break
        time.sleep(0.1)
    assert process_gone
    assert not (demo_root / RUNNING_FILE).exists()

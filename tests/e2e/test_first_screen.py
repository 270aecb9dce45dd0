"""The installed `mlxtui --demo` in a real terminal (tmux): its first screen."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.e2e.tmux import Terminal

pytestmark = [pytest.mark.e2e]

MLXTUI = Path(sys.executable).with_name("mlxtui")


def demo_env(isolated_home: Path, hub_seed: Path) -> dict[str, str]:
    """The test's own XDG/HF folders, with the session's seeded demo Hub copied in so start-up does not reseed."""
    shutil.copytree(hub_seed, isolated_home / "data" / "mlxtui" / "demo-hub")
    return {
        "HOME": str(isolated_home),
        "XDG_CONFIG_HOME": str(isolated_home / "config"),
        "XDG_DATA_HOME": str(isolated_home / "data"),
        "HF_HOME": str(isolated_home / "hf"),
    }


def test_demo_first_screen_shows_panes_demo_badge_and_keys(isolated_home: Path, hub_seed: Path) -> None:
    with Terminal(f"{MLXTUI} --demo", width=80, height=24, env=demo_env(isolated_home, hub_seed)) as term:
        # One wait for all of it: a capture can land mid-repaint, with part of the screen drawn.
        term.wait_for(
            lambda s: "DEMO" in s and "online" in s and "Hub: 127.0.0.1:" in s
            and all(pane in s for pane in ["1 Search", "2 Inspect", "3 Convert", "4 Chat"])
            and ("^q" in s or "ctrl+q" in s.lower()),  # the footer shows the keys
            timeout=60,
        )
        term.keys("C-q")
        term.wait_for(lambda s: "1 Search" not in s, timeout=20)

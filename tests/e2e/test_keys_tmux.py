"""The key policy in a real terminal (tmux, the installed `mlxtui --demo`, 80x24): digits walk every pane,
a digit typed in a field stays in it, and Escape with a digit sent together (alt+digit, or Escape then a digit
within tmux's escape-time) leaves the field and switches pane instead of typing ¢ or ™."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_first_screen import demo_env
from tests.e2e.tmux import Terminal

pytestmark = [pytest.mark.e2e]

MLXTUI = Path(sys.executable).with_name("mlxtui")

#: what each pane shows at rest, to know which one is on screen
PANE_MARKS = {
    "1": "results",
    "2": "Give a repo id",
    "3": "Add to queue",
    "4": "no model",
    "5": "Metadata",
    "6": "Preflight",
    "7": "local models",
    "8": "Variant",
    "9": "Hosts file",
}


def test_digits_walk_the_panes_and_a_digit_in_a_field_stays_there(isolated_home: Path, hub_seed: Path) -> None:
    with Terminal(f"{MLXTUI} --demo", width=80, height=24, env=demo_env(isolated_home, hub_seed)) as term:
        term.wait_for(lambda s: "online" in s and "results" in s, timeout=60)
        term.keys("Escape")  # the first screen's search box had the cursor: out of it
        time.sleep(0.5)  # longer than tmux's escape-time, so the next digit is a key of its own
        for digit in ["2", "3", "4", "5", "6", "7", "8", "9", "1"]:
            term.keys(digit)
            # the pane's own text, and the footer's keys fit (Help is the last one)
            term.wait_for(lambda s, d=digit: PANE_MARKS[d] in s and "? Help" in s, timeout=30)
        term.keys("2")
        term.wait_for(PANE_MARKS["2"], timeout=30)
        term.keys("/")  # edit the model field
        term.type("ab3")  # a digit typed in a field is text
        term.wait_for(lambda s: "ab3" in s and PANE_MARKS["2"] in s, timeout=10)
        term.keys("Escape", "4")  # sent together: tmux forwards ESC 4, which used to type ¢
        term.wait_for(PANE_MARKS["4"], timeout=30)
        term.keys("2")
        screen = term.wait_for(lambda s: "ab3" in s and PANE_MARKS["2"] in s, timeout=30)
        assert "¢" not in screen and "ab34" not in screen
        term.keys("C-q")
        term.wait_for(lambda s: "Search" not in s, timeout=20)

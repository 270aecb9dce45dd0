"""Snapshots of the Card pane at 80x24 and 120x36: a fresh 4-bit conversion of the demo danube model.

The folder sits at a fixed path and the endpoint is a fixed unreachable address, so nothing in the screen
depends on the machine, the port or the time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from tests.ui_helpers import settle
from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.messages import EditCard
from mlxtui.ui.panes.card import CardPane

SIZES = [(80, 24), (120, 36)]
FIXED = Path("/tmp/mlxtui-snapshots/card/h2o-danube2-tiny-chat-4bit")

@pytest.fixture
def fixed_folder(mlx_folder_template: Path) -> Iterator[Path]:
    """The converted folder at a path that is the same on every run: one test at a time uses it (a lock
    between pytest-xdist's workers)."""
    import fcntl

    FIXED.parent.mkdir(parents=True, exist_ok=True)
    with open(FIXED.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(FIXED, ignore_errors=True)
        shutil.copytree(mlx_folder_template, FIXED)
        yield FIXED


def opening(folder: Path, *keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await pilot.pause()
        app.post_message(EditCard(str(folder)))
        for _ in range(200):  # the pane mounts lazily, then builds the card
            await pilot.pause(0.05)
            await settle(app)
            panes = app.query(CardPane)
            if panes and panes.first().folder is not None:
                break
        # a late start-up focus in the Search tab can switch tabs back: settle on the card, editor focused
        app.action_show_pane("card")
        await pilot.pause()
        await pilot.pause(0.4)  # the form/lint debounce
        await settle(app)
        if keys:
            await pilot.press(*keys)
            await pilot.pause()
        for widget in [*app.query(Input), *app.query(TextArea)]:
            widget.cursor_blink = False
            if isinstance(widget, Input):  # the same scroll position whatever the timing: cursor at the end
                widget.cursor_position = len(widget.value)
        app.clear_notifications()
        app.set_focus(None)  # no cursor at all: whether one is drawn depends on timing
        await pilot.pause()

    return run_before


def make_app(tmp_path: Path) -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False, settings_path=tmp_path / "config.toml")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_card_editor_with_built_card(snap_compare, fixed_folder: Path, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=opening(fixed_folder))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_card_preview(snap_compare, fixed_folder: Path, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=opening(fixed_folder, "ctrl+t"))

"""Snapshots of the Search pane on the demo Hub at 80x24 and 120x36 (port normalised, cursor blink off)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.search import DEBOUNCE_S

SIZES = [(80, 24), (120, 36)]


def make_app(hub, tmp_path: Path) -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint=hub.url, token=hub.write_token), probe=False,
                     settings_path=tmp_path / "config.toml")


async def steady(pilot) -> None:
    """Wait for the search, then hide what changes between runs: the port and the blinking cursor."""
    await pilot.pause(DEBOUNCE_S + 0.1)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    # DataTable measures new rows when its message queue is idle; on a loaded machine a frame can come
    # first, with every column at its header's width ("Repo" cut to "meta"): wait for the measurement
    table = pilot.app.query_one("#search-results", DataTable)
    for _ in range(200):
        if not table.row_count or table.ordered_columns[0].content_width > len("Repo"):
            break
        await pilot.pause(0.05)
    pilot.app.query_one("#endpoint", Static).update("Hub: http://127.0.0.1:PORT")
    for widget in pilot.app.query(Input):
        widget.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_search_results(snap_compare, hub, tmp_path: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:
        pilot.app.action_show_pane("search")
        await pilot.press(*"tiny", "enter")
        await steady(pilot)

    assert snap_compare(make_app(hub, tmp_path), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_search_filtered_by_author(snap_compare, hub, tmp_path: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:
        pilot.app.action_show_pane("search")
        await pilot.press("escape", "f", *"mlx-community")  # leave the query input, then the author filter
        await steady(pilot)

    assert snap_compare(make_app(hub, tmp_path), terminal_size=size, run_before=run_before)

"""Snapshots of the Lab pane at 80x24 and 120x36 showing a recorded lab result of the trained test model:
the sorted table with the Pareto marks, the size-against-KL plot and the sentence for the highlighted pick."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.lab import LabPane
from mlxtui.ui.switcher import PaneSwitcher
from tests.ui.test_lab_pane import lab_result

SIZES = [(80, 24), (120, 36)]


def on_lab():
    async def run_before(pilot) -> None:
        app = pilot.app
        for _ in range(50):
            await pilot.pause()
            if app.query(LabPane):
                break
        await pilot.pause()
        app.set_focus(None)
        app.query_one("#panes", PaneSwitcher).active = "lab"
        pane = app.query_one(LabPane)
        pane.show_result(lab_result())
        table = pane.query_one("#lab-table", DataTable)
        app.set_focus(table)
        await pilot.pause()
        table.move_cursor(row=3)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_lab(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False, settings_path=tmp_path / "config.toml")
    assert snap_compare(app, terminal_size=size, run_before=on_lab())

"""Snapshots of the Inspect pane on the demo Hub at 80x24 and 120x36 (machine memory, disk and port fixed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static, TextArea

from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.inspect import InspectPane

SIZES = [(80, 24), (120, 36)]


@pytest.fixture(autouse=True)
def fixed_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same memory and free disk on every machine, so the verdict text is stable."""
    monkeypatch.setattr("mlxtui.services.inspect.machine_memory_bytes", lambda: 32 * 10**9)
    monkeypatch.setattr("mlxtui.services.inspect.free_disk", lambda path: 500 * 10**9)


def make_app(hub, tmp_path: Path) -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint=hub.url, token=hub.write_token), probe=False,
                     settings_path=tmp_path / "config.toml")


def inspecting(repo_id: str, *keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        app.action_show_pane("inspect")
        for _ in range(50):
            await pilot.pause()
            if app.query(InspectPane):
                break
        app.action_show_pane("inspect")
        app.query_one(InspectPane).show_model(repo_id)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
        app.query_one("#endpoint", Static).update("Hub: http://127.0.0.1:PORT")
        for widget in [*app.query(Input), *app.query(TextArea)]:
            widget.cursor_blink = False
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_inspect_supported_model(snap_compare, hub, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(hub, tmp_path), terminal_size=size,
                        run_before=inspecting("h2oai/h2o-danube2-tiny-chat"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_inspect_unsupported_model_raw_config(snap_compare, hub, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(hub, tmp_path), terminal_size=size,
                        run_before=inspecting("fancylabs/FancyNet-tiny", "t"))

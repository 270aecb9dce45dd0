"""Snapshots of the Convert pane at 80x24 and 120x36: the form for a demo model, a refused model, and a job's
progress (fed as events, so no timings or temp paths reach the screen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static

from mlxtui.services import Context
from mlxtui.services.events import ConvertLog, ConvertProgress, ConvertVariantDone
from mlxtui.settings import ConvertSettings, Settings
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.convert import ConvertPane
from mlxtui.ui.switcher import PaneSwitcher

SIZES = [(80, 24), (120, 36)]
MODELS = "/srv/mlx-models"  # never created: the form only checks whether folders exist
JOB = "20261127-120000-abcd"


def make_app(tmp_path: Path) -> MlxtuiApp:
    settings = Settings(convert=ConvertSettings(output_dir=MODELS))
    return MlxtuiApp(Context(endpoint="http://127.0.0.1:9", settings=settings), probe=False,
                     settings_path=tmp_path / "config.toml")


def on_convert(setup, after=None):
    async def run_before(pilot) -> None:
        app = pilot.app
        for _ in range(50):
            await pilot.pause()
            if app.query(ConvertPane):
                break
        await pilot.pause()
        app.set_focus(None)
        app.query_one("#panes", PaneSwitcher).active = "convert"
        pane = app.query_one(ConvertPane)
        for _ in range(200):  # the jobs list is read in a worker at mount
            await pilot.pause(0.02)
            if not [w for w in app.workers if w.is_running]:
                break
        setup(pane)
        for widget in app.query(Input):
            widget.cursor_blink = False
        app.set_focus(pane.query_one("#convert-source", Input))
        await pilot.pause()
        await pilot.pause()
        if after is not None:
            after(pane)
            await pilot.pause()
            await pilot.pause()

    return run_before


def prefilled(pane: ConvertPane) -> None:
    pane.prefill("h2oai/h2o-danube2-tiny-chat", None, {"repo_id": "h2oai/h2o-danube2-tiny-chat", "supported": True,
                                                        "problems": [], "dtype": "bfloat16"})


def refused(pane: ConvertPane) -> None:
    pane.prefill("fancylabs/FancyNet-tiny", None, {
        "repo_id": "fancylabs/FancyNet-tiny", "supported": False,
        "problems": ["mlx-lm 0.32.2 has no module for model_type 'fancynet' (after its own remapping), so it cannot "
                     "load or convert it"],
    })


def running(pane: ConvertPane) -> None:
    prefilled(pane)
    pane.job_id = JOB
    pane.job_labels = ["4bit", "8bit", "mixed_3_6"]
    pane.query_one("#convert-job", Static).update(f"Job {JOB}: h2oai/h2o-danube2-tiny-chat → 4bit, 8bit, mixed_3_6")
    events = [
        ConvertLog(JOB, "[mlxtui] Downloading h2oai/h2o-danube2-tiny-chat (main)"),
        ConvertProgress(JOB, "download", -1, 7, 7, "files"),
        ConvertProgress(JOB, "download", -1, 412_000, 412_000, "bytes", rate=2_000_000),
        ConvertVariantDone(JOB, 0, f"{MODELS}/h2o-danube2-tiny-chat-4bit", 5.031, 416_634, 3.2),
        ConvertLog(JOB, "[INFO] Quantized model with 5.031 bits per weight."),
        ConvertProgress(JOB, "load", 1, 1, 1, "steps"),
        ConvertProgress(JOB, "quantize", 1, 9, 16, "layers", item="model.layers.1.mlp.down_proj"),
    ]
    for event in events:
        pane.show_event(event)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_convert_form(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=on_convert(prefilled))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_convert_refused_by_inspect(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=on_convert(refused))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_convert_job_progress(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    def scroll(pane: ConvertPane) -> None:
        pane.query_one("#convert-scroll").scroll_to_widget(pane.query_one("#convert-progress"), animate=False, top=True)

    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=on_convert(running, scroll))

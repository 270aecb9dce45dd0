"""Snapshots of the Library pane at 80x24 and 120x36: two converted demo models and one cached repo
(temporary paths in the status and detail lines are normalised)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.library import LibraryPane
from mlxtui.ui.switcher import PaneSwitcher

from tests.fixtures.models import tiny_model
from tests.services.test_library import _seed_cache

SIZES = [(80, 24), (120, 36)]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """models dir with two conversions (4bit, mixed_3_6) of a tiny demo-style model; one repo in the HF cache."""
    models = Context().settings.models_dir()
    models.mkdir(parents=True)
    source = tiny_model(tmp_path / "src", repo_id="h2oai/h2o-danube2-tiny-chat")
    for n, (label, quant, options) in enumerate([
        ("4bit", {"group_size": 64, "bits": 4}, {"quantize": True}),
        ("mixed_3_6", {"group_size": 64, "bits": 3}, {"quantize": True, "quant_predicate": "mixed_3_6"}),
    ]):
        folder = models / f"h2o-danube2-tiny-chat-{label}"
        shutil.copytree(source, folder)
        config = json.loads((folder / "config.json").read_text())
        config["quantization"] = quant
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "mlxtui-provenance.json").write_text(
            json.dumps({"source": "h2oai/h2o-danube2-tiny-chat", "options": options}))
        os.utime(folder, (1_700_000_000 + n, 1_700_000_000 + n))
    cache = Path(os.environ["HF_HOME"]) / "hub"
    _seed_cache(cache, "Qwen/Qwen2-tiny", tiny_model(tmp_path / "qwen", repo_id="Qwen/Qwen2-tiny", dtype="float32"))
    return models


def on_library():
    async def run_before(pilot) -> None:
        app = pilot.app
        for _ in range(50):
            await pilot.pause()
            if app.query(LibraryPane):
                break
        await pilot.pause()
        app.set_focus(None)
        app.query_one("#panes", PaneSwitcher).active = "library"
        pane = app.query_one(LibraryPane)
        pane.reload()
        for _ in range(200):
            await pilot.pause(0.02)
            if len(pane.models) == 3 and not [w for w in app.workers if w.is_running]:
                break
        app.set_focus(pane.query_one("#library-table", DataTable))
        await pilot.pause()
        pane.query_one("#library-status", Static).update(
            "2 converted folders in ~/.local/share/models/mlx · 1 in the Hugging Face cache · "
            "Enter: Chat · e: Card · d: Delete")
        pane.query_one("#library-detail", Static).update(
            "~/.local/share/models/mlx/h2o-danube2-tiny-chat-mixed_3_6 · llama")
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_library(snap_compare, library: Path, tmp_path: Path, size: tuple[int, int]) -> None:
    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False, settings_path=tmp_path / "config.toml")
    assert snap_compare(app, terminal_size=size, run_before=on_library())

"""The Library pane through the pilot: lists local models, opens one in Chat or Card, deletes with confirmation."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from textual.widgets import DataTable

from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.card import CardPane
from mlxtui.ui.panes.chat import ChatPane
from mlxtui.ui.panes.library import LibraryPane
from mlxtui.ui.screens.confirm import ConfirmDialog
from mlxtui.ui.switcher import PaneSwitcher


def make_app() -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False)


async def wait_until(pilot, predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def open_library(app: MlxtuiApp, pilot) -> LibraryPane:
    await wait_until(pilot, lambda: bool(app.query(LibraryPane)))
    await pilot.pause()
    app.set_focus(None)
    app.query_one("#panes", PaneSwitcher).active = "library"
    pane = app.query_one(LibraryPane)
    app.set_focus(pane.query_one("#library-table", DataTable))
    pane.reload()
    await wait_until(pilot, lambda: bool(pane.models))
    return pane


@pytest.fixture
def converted(make_tiny_model):
    """A converted folder in the models dir, with a provenance file."""
    models = Context().settings.models_dir()
    models.mkdir(parents=True)
    folder = models / "tiny-4bit"
    shutil.copytree(make_tiny_model("tiny"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization"] = {"group_size": 64, "bits": 4}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "mlxtui-provenance.json").write_text(json.dumps({"source": "org/tiny", "options": {"quantize": True}}))
    return folder


async def test_lists_models_and_opens_one_in_chat_and_card(converted, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, object]] = []
    monkeypatch.setattr(ChatPane, "open_model", lambda self, path: opened.append(("chat", path)))
    monkeypatch.setattr(CardPane, "open_folder", lambda self, path, source=None: opened.append(("card", (path, source))))
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_library(app, pilot)
        table = pane.query_one("#library-table", DataTable)
        assert [str(c) for c in table.get_row_at(0)[:3]] == ["tiny-4bit", "folder", "4bit"]
        assert str(table.get_row_at(0)[4]) == "org/tiny"
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(opened))
        assert opened == [("chat", str(converted))]
        assert app.query_one("#panes", PaneSwitcher).active == "chat"

        app.set_focus(None)
        app.query_one("#panes", PaneSwitcher).active = "library"
        app.set_focus(table)
        await pilot.pause()
        await pilot.press("e")
        await wait_until(pilot, lambda: len(opened) == 2)
        assert opened[1] == ("card", (str(converted), "org/tiny"))


async def test_delete_asks_first(converted) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_library(app, pilot)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("escape")
        await pilot.pause()
        assert converted.exists()

        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.click("#confirm-ok")
        await wait_until(pilot, lambda: not pane.models)
        assert not converted.exists()



async def test_a_cache_entry_without_weights_says_so_and_does_not_open_in_chat(make_tiny_model, tmp_path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from mlxtui.services.library import LibraryService
    from tests.services.test_library import _seed_cache

    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(make_tiny_model("tiny") / "config.json", small / "config.json")
    _seed_cache(LibraryService(Context()).cache_dir, "mlx-community/tiny-4bit", small)
    opened: list[str] = []
    monkeypatch.setattr(ChatPane, "open_model", lambda self, path: opened.append(path))
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_library(app, pilot)
        table = pane.query_one("#library-table", DataTable)
        assert str(table.get_row_at(0)[0]) == "mlx-community/tiny-4bit" and "no weights" in table.get_row_at(0)[3]
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert opened == [] and app.query_one("#panes", PaneSwitcher).active == "library"
        assert any("no weights to load" in n.message for n in app._notifications)


async def test_a_malformed_provenance_file_never_breaks_the_library(make_tiny_model) -> None:
    """Issue 12: one bad mlxtui-provenance.json used to leave the pane on "Reading the library…"."""
    models = Context().settings.models_dir()
    models.mkdir(parents=True)
    for name, record in {"bad-source": '{"source": 5}', "deep": "[" * 50_000 + "]" * 50_000,
                         "bigint": '{"source": "x", "n": ' + "9" * 5000 + "}", "escape": '{"source": "org/\\u001b[2Jx"}'}.items():
        folder = models / name
        shutil.copytree(make_tiny_model("tiny"), folder)
        (folder / "mlxtui-provenance.json").write_text(record)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_library(app, pilot)
        assert sorted(m.name for m in pane.models) == ["bad-source", "bigint", "deep", "escape"]
        status = str(pane.query_one("#library-status").render())
        assert "Reading" not in status and "4 converted folders" in status
        table = pane.query_one("#library-table", DataTable)
        cells = [str(c) for row in range(table.row_count) for c in table.get_row_at(row)]
        assert all("\x1b" not in c for c in cells) and any("^[" in c for c in cells)


async def test_a_cached_mlx_conversion_without_weights_offers_chat_not_convert(make_tiny_model, tmp_path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14: Enter on a cached mlx-community/…-4bit is already a conversion: Chat (which downloads it)."""
    from mlxtui.services.library import LibraryService
    from tests.services.test_library import _seed_cache

    small = tmp_path / "small"
    small.mkdir()
    config = json.loads((make_tiny_model("tiny") / "config.json").read_text())
    config["quantization"] = {"group_size": 64, "bits": 4}
    (small / "config.json").write_text(json.dumps(config))
    _seed_cache(LibraryService(Context()).cache_dir, "mlx-community/tiny-4bit", small)
    opened: list[str] = []
    monkeypatch.setattr(ChatPane, "open_model", lambda self, path: opened.append(path))
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_library(app, pilot)
        await pilot.press("enter")
        await wait_until(pilot, lambda: opened == ["mlx-community/tiny-4bit"])
        assert app.query_one("#panes", PaneSwitcher).active == "chat"
        messages = [n.message for n in app._notifications]
        assert not any("Convert it" in m for m in messages) and any("Chat downloads its weights" in m for m in messages)
        assert pane.models[0].is_mlx

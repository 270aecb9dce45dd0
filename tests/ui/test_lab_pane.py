"""The Lab pane through the pilot, on a recorded lab result of the trained test model: the table sorts by any
column, ★ marks the Pareto front, the plot and the pick sentence follow, Enter opens a row in Chat; and a run
started from the form refuses a bad input with one sentence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, Static

from mlxtui.services import Context
from mlxtui.ui.messages import ChatWithModel
from mlxtui.ui.panes.lab import LabPane
from tests.fixtures.trained import TRAINED_MODEL
from tests.ui_helpers import settle

RESULT = Path(__file__).parent.parent / "fixtures" / "lab_result.json"


def lab_result() -> dict[str, Any]:
    return json.loads(RESULT.read_text())


class LabHost(App):
    """Only the Lab pane, recording the messages it posts to the app."""

    def __init__(self) -> None:
        super().__init__()
        self.ctx = Context(endpoint="http://127.0.0.1:9")
        self.chats: list[str] = []

    def compose(self) -> ComposeResult:
        yield LabPane(id="lab-pane")

    def on_chat_with_model(self, message: ChatWithModel) -> None:
        self.chats.append(message.path)

    def action_leave_field(self) -> None:
        self.set_focus(None)

    def worker_failed(self, worker: Any, pane: Any) -> None:
        pass


def _names(pane: LabPane) -> list[str]:
    table = pane.query_one("#lab-table", DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


def _plain(widget: Static) -> str:
    return str(widget.render())


async def test_table_sorts_by_any_column_and_marks_the_front() -> None:
    app = LabHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(LabPane)
        pane.show_result(lab_result())
        await pilot.pause()
        rows = {r["name"]: r for r in lab_result()["variants"]}
        # by size (the default), smallest first
        assert _names(pane) == sorted(rows, key=lambda n: (rows[n]["bytes"], n))
        table = pane.query_one("#lab-table", DataTable)
        stars = {str(table.get_row_at(i)[1]) for i in range(table.row_count) if str(table.get_row_at(i)[0]) == "★"}
        # 4bit-g32 is bigger than 4bit and (on this model) no closer: the only variant off the front
        assert stars == set(rows) - {"4bit-g32"}
        # click the KL header: lowest KL first; again: highest first
        await pilot.click("#lab-table", offset=(1, 0))  # make sure the table has focus
        pane._header(DataTable.HeaderSelected(table, table.columns[_key(table, "kl_mean")].key, 9, "KL"))
        await pilot.pause()
        assert _names(pane)[0] == "8bit" and _names(pane)[-1] == "2bit"
        pane._header(DataTable.HeaderSelected(table, table.columns[_key(table, "kl_mean")].key, 9, "KL"))
        await pilot.pause()
        assert _names(pane)[0] == "2bit"
        # `s` moves to the next column (KL p99), `r` reverses
        await pilot.press("s")
        assert pane.sort_key == "kl_p99" and _names(pane)[0] == "8bit"
        await pilot.press("r")
        assert _names(pane)[0] == "2bit"


def _key(table: DataTable, key: str) -> Any:
    return next(k for k in table.columns if k.value == key)


async def test_pick_sentence_follows_the_cursor_and_enter_opens_chat() -> None:
    app = LabHost()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(LabPane)
        pane.show_result(lab_result())
        table = pane.query_one("#lab-table", DataTable)
        table.focus()
        await pilot.pause()
        table.move_cursor(row=_names(pane).index("4bit"))
        await pilot.pause()
        pick = _plain(pane.query_one("#lab-pick", Static))
        assert pick.startswith("4-bit g64: 6.3× smaller, top-1 agreement 98 %")
        plot = _plain(pane.query_one("#lab-plot", Static))
        legend = _plain(pane.query_one("#lab-legend", Static))
        assert "│" in plot and "KL (log scale" in legend and "2=4bit" in legend
        await pilot.press("enter")
        await pilot.pause()
        assert app.chats == ["/models/lab/tiny-trained-llama/tiny-trained-llama-4bit"]


async def test_run_from_the_form_refuses_a_bad_variant_in_one_sentence(tmp_path: Path) -> None:
    app = LabHost()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(LabPane)
        pane.query_one("#lab-source", Input).value = str(TRAINED_MODEL)
        pane.query_one("#lab-variants", Input).value = "4bit,mixed_3_6-nvfp4"
        pane.query_one("#lab-source", Input).focus()
        await pilot.press("enter")
        await settle(app)
        await pilot.pause()
        status = _plain(pane.query_one("#lab-status", Static))
        assert "recipes like mixed_3_6 work only with affine quantization, not nvfp4" in status
        assert not pane.running and pane.result is None


async def test_a_lab_started_from_the_form_runs_as_a_job_and_fills_the_table(tmp_path: Path) -> None:
    app = LabHost()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(LabPane)
        pane.seq_len, pane.max_sequences = 64, 4  # a small evaluation keeps the test short
        pane.query_one("#lab-source", Input).value = str(TRAINED_MODEL)
        pane.query_one("#lab-variants", Input).value = "8bit,2bit"
        pane.query_one("#lab-source", Input).focus()
        await pilot.press("enter")
        await settle(app)
        await pilot.pause()
        assert pane.result is not None, _plain(pane.query_one("#lab-status", Static))
        assert _names(pane) == ["2bit", "8bit"]  # by size
        assert pane.job_id and not pane.running
        table = pane.query_one("#lab-table", DataTable)
        table.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.chats and app.chats[0].endswith("tiny-trained-llama-2bit")


def _publishable_lab(mlx_folder: Path, out: Path) -> dict[str, Any]:
    """A lab result whose 4bit and 2bit rows point at real MLX folders (copies of a converted model)."""
    import shutil

    from mlxtui.services.lab_report import RESULTS_FILE

    result = lab_result()
    rows = [r for r in result["variants"] if r["name"] in ("4bit", "2bit")]
    for row in rows:
        row["path"] = str(shutil.copytree(mlx_folder, out / Path(row["path"]).name))
    result["variants"] = rows
    (out / RESULTS_FILE).write_text(json.dumps(result))
    return result


def _showing(app: LabHost, result: dict[str, Any]) -> LabPane:
    """The Lab pane showing `result`, its table focused (where arriving puts the keys)."""
    pane = app.query_one(LabPane)
    pane.show_result(result)
    pane.query_one("#lab-table", DataTable).focus()
    return pane


async def test_marked_variants_are_published_from_the_pane_each_to_its_own_repo(
        mlx_folder: Path, tmp_path: Path, fresh_hub: Any, monkeypatch: Any) -> None:
    """Issue 15: space marks rows, p asks where (owner prefilled with the token's user), then each marked
    variant goes to <owner>/<its folder> with a card that links its sibling."""
    import huggingface_hub.constants as constants
    from huggingface_hub import HfApi

    from mlxtui.ui.screens.lab_publish import PublishDialog

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    hub = fresh_hub  # holds the variants' base model, which each card names (the preflight checks it)
    app = LabHost()
    app.ctx = Context(endpoint=hub.url, token=hub.write_token)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = _showing(app, _publishable_lab(mlx_folder, tmp_path / "out"))
        await pilot.press("space", "down", "space")
        assert pane.marked == {"4bit", "2bit"} and all(n.startswith("✓ ") for n in _names(pane))
        await pilot.press("p")
        while not isinstance(app.screen, PublishDialog):
            await pilot.pause(0.05)
        assert app.screen.query_one("#publish-owner", Input).value == "alice"
        assert "alice/tiny-trained-llama-2bit" in _plain(app.screen.query_one("#publish-repos", Static))
        await pilot.click("#publish-ok")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Published 2" in _plain(pane.query_one("#lab-status", Static)) and not pane.marked
    api = HfApi(endpoint=hub.url, token=hub.write_token)
    for repo in ("alice/tiny-trained-llama-4bit", "alice/tiny-trained-llama-2bit"):
        assert "model.safetensors" in api.list_repo_files(repo)
    card = Path(api.hf_hub_download("alice/tiny-trained-llama-4bit", "README.md", cache_dir=tmp_path / "dl")).read_text()
    assert f"[2bit]({hub.url}/alice/tiny-trained-llama-2bit)" in card


async def test_escape_in_the_publish_dialog_sends_nothing(mlx_folder: Path, tmp_path: Path, devhub_factory: Any) -> None:
    from huggingface_hub import HfApi

    from mlxtui.ui.screens.lab_publish import PublishDialog

    hub = devhub_factory()
    app = LabHost()
    app.ctx = Context(endpoint=hub.url, token=hub.write_token)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = _showing(app, _publishable_lab(mlx_folder, tmp_path / "out"))
        await pilot.press("p")  # nothing marked: the highlighted variant
        while not isinstance(app.screen, PublishDialog):
            await pilot.pause(0.05)
        assert list(app.screen.folders) == [pane.selected()["name"]]
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, PublishDialog)
    assert [m.id for m in HfApi(endpoint=hub.url, token=hub.write_token).list_models(author="alice")] == []


async def test_reached_by_its_digit_the_lab_offers_the_model_in_works_original() -> None:
    """The workflow's thread: the source being converted is what its variants are measured against."""
    from mlxtui.ui.app import MlxtuiApp

    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        while not app.query(LabPane):
            await pilot.pause(0.01)
        app.set_work(app.work.with_source("mlxtui/tiny-trained-llama"))
        await pilot.press("escape", "8")
        await pilot.pause()
        pane = app.query_one(LabPane)
        assert pane.query_one("#lab-source", Input).value == "mlxtui/tiny-trained-llama"
        assert not pane.query_one("#lab-source", Input).has_focus  # offered; a digit cannot replace it

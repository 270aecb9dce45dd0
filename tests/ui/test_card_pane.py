"""The Card pane through the pilot: open, form <-> YAML sync, lint, save, drafts, preview."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Markdown, OptionList, TextArea

from tests.ui_helpers import settle
from mlxtui.services import Context
from mlxtui.services.card import CardService, split_card
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.messages import EditCard
from mlxtui.ui.panes.card import CardPane
from mlxtui.ui.switcher import PaneSwitcher

OFFLINE = "http://127.0.0.1:9"

def make_app() -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint=OFFLINE), probe=False)


async def open_card(app: MlxtuiApp, pilot, folder: Path) -> CardPane:
    await pilot.pause()  # let start-up (first pane focus) settle before switching
    app.post_message(EditCard(str(folder)))
    await pilot.pause()
    await pilot.pause()
    pane = app.query_one(CardPane)
    await settle(app)
    await pilot.pause(0.4)  # the sync debounce
    await settle(app)
    await pilot.pause()
    return pane


def lint_text(pane: CardPane) -> str:
    lint = pane.query_one("#card-lint", OptionList)
    return "\n".join(str(lint.get_option_at_index(i).prompt) for i in range(lint.option_count))


async def test_opening_a_fresh_conversion_builds_a_card_and_fills_the_form(mlx_folder: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        assert "## Conversion" in pane.editor.text
        assert pane.query_one("#card-field-license", Input).value == "apache-2.0"
        assert pane.query_one("#card-field-base_model", Input).value == "h2oai/h2o-danube2-tiny-chat"
        assert "mlx" in pane.query_one("#card-field-tags", Input).value
        assert "✗" not in lint_text(pane)  # lint-clean (the offline Hub check is only a note)
        assert "unsaved" in str(pane.query_one("#card-state").render())


async def test_form_edits_the_yaml_and_yaml_edits_the_form(mlx_folder: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        body_before = split_card(pane.editor.text).body
        field = pane.query_one("#card-field-license", Input)
        field.focus()
        await pilot.pause()
        field.value = ""
        await pilot.press(*"mit")
        await pilot.pause()
        meta = split_card(pane.editor.text).meta
        assert meta.get("license") == "mit", (field.value, app.focused, pane.editor.text[:600])
        assert split_card(pane.editor.text).body.strip() == body_before.strip()
        # now the other way: edit the YAML text
        editor = pane.query_one("#card-editor", TextArea)
        editor.focus()
        editor.text = editor.text.replace("pipeline_tag: text-generation", "pipeline_tag: text2text-generation")
        field = pane.query_one("#card-field-pipeline_tag", Input)
        for _ in range(50):  # the form follows the YAML after a short debounce; slower on a busy machine
            await pilot.pause(0.1)
            if field.value == "text2text-generation":
                break
        assert field.value == "text2text-generation"


async def test_lint_lists_problems_as_the_user_types(mlx_folder: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        editor = pane.editor
        editor.text = editor.text.replace("license: apache-2.0\n", "")
        await pilot.pause(0.5)
        assert "No license" in lint_text(pane)
        editor.text = "---\nlicense: [broken\n---\n\nbody\n"
        await pilot.pause(0.5)
        assert "YAML front matter is invalid" in lint_text(pane)
        assert pane.query_one("#card-field-license", Input).disabled  # no form edits over broken YAML


async def test_ctrl_s_saves_atomically_and_drops_the_draft(mlx_folder: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        pane.editor.focus()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert (mlx_folder / "README.md").read_text() == pane.editor.text
        assert CardService(app.ctx).load_draft(mlx_folder) is None
        assert "saved" in str(pane.query_one("#card-state").render())


async def test_unsaved_edits_survive_a_crash(mlx_folder: Path) -> None:
    on_disk = (mlx_folder / "README.md").read_text()
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        pane.editor.focus()
        pane.editor.move_cursor(pane.editor.document.end)
        await pilot.press(*"precious words")
        await pilot.pause(1.3)  # the draft debounce
        # the "crash": the draft is already on disk while the app still runs
        draft = CardService(app.ctx).load_draft(mlx_folder)
        assert draft is not None and "precious words" in draft.text
    assert (mlx_folder / "README.md").read_text() == on_disk  # never written behind the user's back
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        assert "precious words" in pane.editor.text


async def test_preview_toggle_shows_the_body(mlx_folder: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        pane.editor.focus()
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert pane.query_one("#card-view").current == "card-preview-scroll"
        assert "Use with mlx-lm" in pane.query_one("#card-preview", Markdown).source
        await pilot.press("ctrl+t")
        assert pane.query_one("#card-view").current == "card-editor"


async def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.post_message(EditCard(str(tmp_path / "nope")))
        await pilot.pause()
        await pilot.pause()
        pane = app.query_one(CardPane)
        await settle(app)
        await pilot.pause()
        assert any("is not a folder" in n.message for n in app._notifications)
        assert pane.folder is None


async def test_ctrl_o_asks_for_an_upload_of_the_saved_card(mlx_folder: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        pane.editor.focus()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert app.query_one("#panes", PaneSwitcher).active == "card"  # unsaved: refused with a notice
        await pilot.press("ctrl+s")
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.pause()
        assert app.query_one("#panes", PaneSwitcher).active == "upload"


async def test_unknown_base_model_on_the_hub_is_an_error(devhub_factory, source_folder: Path, mlx_folder: Path) -> None:
    hub = devhub_factory()
    hub.import_folder("h2oai/h2o-danube2-tiny-chat", source_folder)
    app = MlxtuiApp(Context(endpoint=hub.url, token=hub.read_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        assert "✗" not in lint_text(pane)  # the original exists on this Hub
        field = pane.query_one("#card-field-base_model", Input)
        field.focus()
        await pilot.pause()
        field.value = "nobody/nothing"
        for _ in range(3):
            await pilot.pause(0.4)
            await settle(app)
        assert "'nobody/nothing' was not found on the Hub" in lint_text(pane)


async def test_a_readme_changed_on_disk_is_not_clobbered_silently(mlx_folder: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        (mlx_folder / "README.md").write_text("---\nlicense: mit\n---\n\nwritten elsewhere\n")
        pane.editor.focus()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert (mlx_folder / "README.md").read_text().endswith("written elsewhere\n")
        assert any("changed on disk" in n.message for n in app._notifications)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert (mlx_folder / "README.md").read_text() == pane.editor.text


async def test_quitting_right_after_typing_keeps_the_draft(mlx_folder: Path) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        pane.editor.focus()
        pane.editor.move_cursor(pane.editor.document.end)
        await pilot.press(*"last words")
        # no pause for the debounce: the app closes at once
    draft = CardService(Context(endpoint=OFFLINE)).load_draft(mlx_folder)
    assert draft is not None and draft.text.endswith("last words")


async def wait_for(pilot, predicate, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_reached_by_its_digit_card_opens_the_newest_conversion(mlx_folder: Path) -> None:
    """Issue 14: Card reached with 5 and nothing open opens the latest conversion instead of starting empty."""
    import shutil

    models = Context().settings.models_dir()
    models.mkdir(parents=True)
    newest = models / mlx_folder.name
    shutil.copytree(mlx_folder, newest)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: bool(app.query(CardPane)))
        await pilot.pause()
        await pilot.press("escape", "5")  # out of the search box (where start-up puts the cursor), then 5
        pane = app.query_one(CardPane)
        await wait_for(pilot, lambda: pane.folder is not None)
        assert pane.folder == newest and "## Conversion" in pane.editor.text
        assert app.query_one("#panes", PaneSwitcher).active == "card"


async def test_reached_by_its_digit_card_opens_the_model_in_work(mlx_folder: Path, tmp_path: Path) -> None:
    import shutil

    models = Context().settings.models_dir()
    models.mkdir(parents=True)
    shutil.copytree(mlx_folder, models / "newer-4bit")  # newer, but not the model in work
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: bool(app.query(CardPane)))
        app.set_work(app.work.with_folder(str(mlx_folder), "h2oai/h2o-danube2-tiny-chat"))
        await pilot.pause()
        await pilot.press("escape", "5")
        pane = app.query_one(CardPane)
        await wait_for(pilot, lambda: pane.folder is not None)
        assert pane.folder == mlx_folder


async def test_the_card_follows_the_chosen_target_keeping_the_users_edits(mlx_folder: Path) -> None:
    from mlxtui.ui.messages import TargetChosen

    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_card(app, pilot, mlx_folder)
        assert f'load("{mlx_folder.name}")' in pane.editor.text
        pane.editor.insert("My own line.\n", (pane.editor.document.line_count - 1, 0))
        before = pane.editor.text
        front = before.split("\n---\n", 1)[0]
        app.post_message(TargetChosen("alice/tiny-4bit"))
        await wait_for(pilot, lambda: 'load("alice/tiny-4bit")' in pane.editor.text)
        text = pane.editor.text
        assert text.split("\n---\n", 1)[0] == front and "My own line.\n" in text
        assert "\n# alice/tiny-4bit\n" in text and f'load("{mlx_folder.name}")' not in text
        assert app.work.target == "alice/tiny-4bit" and "alice/tiny-4bit" in str(app.query_one("#work").render())
        assert any("now follows alice/tiny-4bit" in n.message and "usage snippet" in n.message
                   for n in app._notifications)
        assert "unsaved" in str(pane.query_one("#card-state").render())  # the user sees it and saves it

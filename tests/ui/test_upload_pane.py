"""The Upload pane through the pilot against a devhub: account, preflight, confirm, progress, verify, errors."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from textual.worker import WorkerCancelled
from textual.widgets import Button, OptionList, Static

from tests.ui_helpers import settle
from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.messages import UploadFolder
from mlxtui.ui.panes.upload import UploadPane
from mlxtui.ui.screens.upload_confirm import UploadConfirmDialog

pytestmark = pytest.mark.usefixtures("restore_hub_environment")


@pytest.fixture
def hubx(hubx):
    """The shared devhub with the source model; the endpoint decided on the main thread, as the CLI does."""
    from mlxtui.services import configure_hub_environment

    configure_hub_environment(hubx.url)
    return hubx


async def open_upload(app: MlxtuiApp, pilot, folder: Path) -> UploadPane:
    await pilot.pause()
    app.post_message(UploadFolder(str(folder)))
    await pilot.pause()
    await pilot.pause()
    pane = app.query_one(UploadPane)
    await settle(app)
    await pilot.pause()
    return pane


def text_of(pane: UploadPane, selector: str) -> str:
    return str(pane.query_one(selector, Static).render())


def checklist(pane: UploadPane) -> str:
    checks = pane.query_one("#upload-checks", OptionList)
    return "\n".join(str(checks.get_option_at_index(i).prompt) for i in range(checks.option_count))


async def test_open_check_confirm_upload_verify(hubx, ready_folder: Path) -> None:
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        assert "alice" in text_of(pane, "#upload-account") and "mlx-community" in text_of(pane, "#upload-account")
        assert hubx.write_token not in text_of(pane, "#upload-account")
        assert "✗" not in checklist(pane)
        assert "alice/h2o-danube2-tiny-chat-4bit" in checklist(pane)
        pane.query_one("#upload-namespace").value = "mlx-community"
        await pilot.pause()
        assert pane.query_one("#upload-go", Button).disabled  # a changed target must be checked again
        await pilot.press("ctrl+r")
        await settle(app)
        await pilot.pause()
        assert not pane.query_one("#upload-go", Button).disabled
        await pilot.press("ctrl+g")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, UploadConfirmDialog)
        facts = str(dialog.query_one("#confirm-facts", Static).render())
        assert hubx.url in facts and "mlx-community/h2o-danube2-tiny-chat-4bit" in facts and "PUBLIC" in facts
        assert dialog.query_one("#confirm-files").row_count == len(dialog.plan.files)
        await pilot.press("y")
        await pilot.pause()
        await settle(app)
        await pilot.pause()
        status = text_of(pane, "#upload-status")
        assert "Uploaded and verified" in status
        assert f"{hubx.url}/mlx-community/h2o-danube2-tiny-chat-4bit" in status
    from huggingface_hub import HfApi

    assert "model.safetensors" in HfApi(endpoint=hubx.url, token=hubx.write_token).list_repo_files(
        "mlx-community/h2o-danube2-tiny-chat-4bit"
    )


async def test_backing_out_of_the_confirmation_sends_nothing(hubx, ready_folder: Path) -> None:
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_upload(app, pilot, ready_folder)
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, UploadConfirmDialog)
    from huggingface_hub import HfApi

    assert not HfApi(endpoint=hubx.url, token=hubx.write_token).repo_exists("alice/h2o-danube2-tiny-chat-4bit")


async def test_no_token_is_said_and_upload_is_blocked(hubx, ready_folder: Path) -> None:
    app = MlxtuiApp(Context(endpoint=hubx.url), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        assert "No Hugging Face token" in text_of(pane, "#upload-account")
        assert "✗ Token" in checklist(pane)
        assert pane.query_one("#upload-go", Button).disabled
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert not isinstance(app.screen, UploadConfirmDialog)


async def test_a_card_with_problems_blocks_the_upload(hubx, mlx_folder: Path) -> None:
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, mlx_folder)  # mlx-lm's README: empty body
        assert "✗ README.md" in checklist(pane) and "no text" in checklist(pane)
        assert pane.query_one("#upload-go", Button).disabled


async def test_a_dropped_connection_is_reported_and_a_retry_completes(
    hubx, ready_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    import huggingface_hub.utils._http as hf_http

    monkeypatch.setattr(hf_http, "time", types.SimpleNamespace(**{**vars(hf_http.time), "sleep": lambda s: None}))
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        hubx.faults.drop_upload(100)
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        await settle(app)
        await pilot.pause()
        assert "connection" in text_of(pane, "#upload-status") and "dropped" in text_of(pane, "#upload-status")
        hubx.faults.clear()
        assert not pane.query_one("#upload-go", Button).disabled  # the same plan can be sent again
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        await settle(app)
        await pilot.pause()
        assert "Uploaded and verified" in text_of(pane, "#upload-status")


async def test_escape_cancels_an_upload_and_nothing_is_published(hubx, ready_folder: Path) -> None:
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        hubx.faults.slow(2.0, 5, method="PUT")
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press("y")
        for _ in range(100):
            await pilot.pause(0.05)
            if "Sending" in text_of(pane, "#upload-status"):
                break
        pane.query_one("#upload-checks").focus()
        await pilot.press("escape")
        await pilot.pause()
        with contextlib.suppress(WorkerCancelled):
            await settle(app)
        await pilot.pause()
        assert "cancelled" in text_of(pane, "#upload-status")
    from huggingface_hub import HfApi

    await asyncio.sleep(2.5)  # the slowed PUT ends; the sender must then stop before the commit
    files = HfApi(endpoint=hubx.url, token=hubx.write_token).list_repo_files("alice/h2o-danube2-tiny-chat-4bit")
    assert "config.json" not in files


async def test_x_excludes_the_file_a_secret_line_names_and_the_check_passes(hubx, ready_folder: Path) -> None:
    (ready_folder / "notes.txt").write_text("token: hf_" + "Qw3" * 12 + "\n")
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        assert "✗ Secrets" in checklist(pane) and "notes.txt line 1" in checklist(pane)
        assert "Qw3Qw3Qw3" not in checklist(pane)  # masked
        assert pane.query_one("#upload-go", Button).disabled
        checks = pane.query_one("#upload-checks", OptionList)
        checks.focus()
        checks.highlighted = next(i for i, c in enumerate(pane.plan.checks) if c.name == "Secrets")
        await pilot.press("x")
        await settle(app)
        await pilot.pause()
        assert "✗" not in checklist(pane) and "Excluded: not sent: notes.txt" in checklist(pane)
        assert not pane.query_one("#upload-go", Button).disabled
        assert "notes.txt" not in {f.path for f in pane.plan.files}


async def test_the_confirmation_shows_a_visibility_change_and_deletions(hubx, ready_folder: Path) -> None:
    from mlxtui.services.upload import UploadService

    service = UploadService(Context(endpoint=hubx.url, token=hubx.write_token))
    (ready_folder / "extra_config.json").write_text("{}")
    await drain(service.upload(await service.preflight(ready_folder, "alice/h2o-danube2-tiny-chat-4bit")))
    (ready_folder / "extra_config.json").unlink()
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        pane.query_one("#upload-private").value = True
        await pilot.press("ctrl+r")
        await settle(app)
        await pilot.pause()
        assert "public → private" in checklist(pane) and "deletes 1 on the Hub" in checklist(pane)
        await pilot.press("ctrl+g")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, UploadConfirmDialog)
        facts = str(dialog.query_one("#confirm-facts", Static).render())
        assert "public → private: changed before any file is sent" in facts and "Deleted     1 remote" in facts
        assert dialog.query_one("#confirm-files").row_count == len(dialog.plan.files) + 1
        await pilot.press("y")
        await settle(app)
        await pilot.pause()
        status = text_of(pane, "#upload-status")
        assert "Uploaded and verified" in status and "1 stale file deleted" in status
        assert "already there with the same content" in status and "private (changed by this upload)" in status
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hubx.url, token=hubx.write_token)
    assert api.model_info("alice/h2o-danube2-tiny-chat-4bit").private is True
    assert "extra_config.json" not in api.list_repo_files("alice/h2o-danube2-tiny-chat-4bit")


async def test_file_names_reach_the_pane_printable(hubx, ready_folder: Path) -> None:
    (ready_folder / ".env\x1b[31mred").write_text("x")
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        text = checklist(pane)
        assert "\x1b" not in text and ".env^[[31mred" in text


async def drain(events) -> list:
    return [e async for e in events]


async def test_an_existing_private_repo_stays_private_unless_the_box_is_unticked(hubx, ready_folder: Path) -> None:
    from mlxtui.services.upload import UploadService

    service = UploadService(Context(endpoint=hubx.url, token=hubx.write_token))
    await drain(service.upload(await service.preflight(ready_folder, "alice/h2o-danube2-tiny-chat-4bit", private=True)))
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        box = pane.query_one("#upload-private")
        assert box.value is True and pane.plan.private is True and pane.plan.visibility_change is None
        assert "(private)" in checklist(pane) and not pane.query_one("#upload-go", Button).disabled
        box.value = False  # the user asks for public: a change, checked again and shown
        await pilot.pause()
        assert pane.query_one("#upload-go", Button).disabled
        await pilot.press("ctrl+r")
        await settle(app)
        await pilot.pause()
        assert "private → PUBLIC" in checklist(pane)


async def test_names_from_the_server_are_shown_as_text(devhub_factory, source_folder: Path, ready_folder: Path) -> None:
    """An org name with markup and escape codes is shown as typed, never interpreted."""
    from mlxtui.services import configure_hub_environment

    token = "hf_markup_alice_devhub"
    hub = devhub_factory(tokens={token: {"user": "alice", "orgs": ["[b]x\x1b[2J"], "role": "write"}})
    configure_hub_environment(hub.url)
    app = MlxtuiApp(Context(endpoint=hub.url, token=token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        account = text_of(pane, "#upload-account")
        assert "[b]x^[[2J" in account and "\x1b" not in account


async def test_escape_after_the_commit_was_sent_checks_and_says_what_landed(hubx, ready_folder: Path) -> None:
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        hubx.faults.slow(3.0, 1, method="POST", path_prefix="/api/models/alice/h2o-danube2-tiny-chat-4bit/commit")
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press("y")
        while pane.uploading and "Committing" not in text_of(pane, "#upload-status"):
            await pilot.pause(0.05)
        pane.query_one("#upload-checks").focus()
        await pilot.press("escape")
        await settle(app)
        await pilot.pause()
        status = text_of(pane, "#upload-status")
        assert "nothing was published" not in status
        # on any machine speed: either the cancel came while the commit was in flight, or after it all finished
        assert "the commit landed" in status or "Uploaded and verified" in status, status
    from huggingface_hub import HfApi

    assert "config.json" in HfApi(endpoint=hubx.url, token=hubx.write_token).list_repo_files(
        "alice/h2o-danube2-tiny-chat-4bit")


async def test_the_checked_target_is_the_model_in_work_and_search_lists_the_upload(hubx, ready_folder: Path) -> None:
    """Issue 14: the preflight's target goes to the top bar (TargetChosen); after the upload, Search (which was
    showing this Hub) searches again and lists the new repo without ctrl+r (HubChanged)."""
    from textual.widgets import Input

    from mlxtui.ui.panes.search import SearchPane

    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        search = app.query_one(SearchPane)
        search.query_one("#search-query", Input).value = "tiny-chat-4bit"
        search.start_search()
        await settle(app)
        assert not search._hits
        pane = await open_upload(app, pilot, ready_folder)
        assert app.work.target == "alice/h2o-danube2-tiny-chat-4bit" and app.work.folder == str(ready_folder)
        assert "alice/h2o-danube2-tiny-chat-4bit" in str(app.query_one("#work", Static).render())
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press("y")
        for _ in range(600):
            if any(h.repo_id == "alice/h2o-danube2-tiny-chat-4bit" for h in search._hits):
                break
            await pilot.pause(0.05)
        assert "Uploaded and verified" in text_of(pane, "#upload-status")
        assert any(h.repo_id == "alice/h2o-danube2-tiny-chat-4bit" for h in search._hits)


async def test_reached_by_its_digit_upload_opens_the_newest_conversion(hubx, ready_folder: Path) -> None:
    import shutil

    from textual.widgets import Input

    models = Context().settings.models_dir()
    models.mkdir(parents=True)
    newest = models / ready_folder.name
    shutil.copytree(ready_folder, newest)
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(200):
            if app.query(UploadPane):
                break
            await pilot.pause(0.05)
        await pilot.press("escape", "6")  # out of the search box, then 6
        pane = app.query_one(UploadPane)
        for _ in range(400):
            if pane.query_one("#upload-folder", Input).value:
                break
            await pilot.pause(0.05)
        assert pane.query_one("#upload-folder", Input).value == str(newest)
        await settle(app)
        await pilot.pause()
        assert "alice/h2o-danube2-tiny-chat-4bit" in checklist(pane)


async def test_the_result_says_the_hub_already_stored_the_weights_from_another_repo(hubx, ready_folder: Path) -> None:
    from mlxtui.services.upload import UploadService

    service = UploadService(Context(endpoint=hubx.url, token=hubx.write_token))
    await drain(service.upload(await service.preflight(ready_folder, "alice/first-name")))
    app = MlxtuiApp(Context(endpoint=hubx.url, token=hubx.write_token), probe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_upload(app, pilot, ready_folder)
        assert "✗" not in checklist(pane) and "alice/h2o-danube2-tiny-chat-4bit" in checklist(pane)
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert isinstance(app.screen, UploadConfirmDialog)
        await pilot.press("y")
        await settle(app)
        await pilot.pause()
        status = text_of(pane, "#upload-status")
        assert "Uploaded and verified" in status
        assert "1 already there with the same content" in status
        assert "1 from elsewhere on the Hub" in status
    from huggingface_hub import HfApi

    assert "model.safetensors" in HfApi(endpoint=hubx.url, token=hubx.write_token).list_repo_files(
        "alice/h2o-danube2-tiny-chat-4bit")

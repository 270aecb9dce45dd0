"""The Convert pane through the pilot: validation shown in the form, the trust-remote-code confirmation,
Inspect's verdict, free output names, a real job run from the form, Escape cancelling, reattach on start."""

from __future__ import annotations

import os
import signal
import time

import pytest
from textual.widgets import Button, Checkbox, Input, Select, Static

from mlxtui.services import Context
from mlxtui.services import jobs as jobstore
from mlxtui.services.convert import ConvertOptions, ConvertService
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.focus import home_widget
from mlxtui.ui.panes.convert import ConvertPane
from mlxtui.ui.screens.confirm import ConfirmDialog
from mlxtui.ui.switcher import PaneSwitcher

pytestmark = pytest.mark.timeout(120)


def make_app() -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False)


async def open_convert(app: MlxtuiApp, pilot) -> ConvertPane:
    await pilot.pause()
    app.set_focus(None)
    app.query_one("#panes", PaneSwitcher).active = "convert"
    pane = app.query_one(ConvertPane)
    app.set_focus(home_widget(pane))  # where arriving puts focus (docs/keys.md): Escape there cancels a job
    await pilot.pause()
    return pane


def text(pane: ConvertPane, selector: str) -> str:
    return str(pane.query_one(selector, Static).render())


async def wait_until(pilot, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.1)


async def test_combinations_mlx_lm_rejects_are_refused_in_the_form(make_tiny_model) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        pane.prefill(str(make_tiny_model("tiny")))
        await pilot.pause()
        run = pane.query_one("#convert-run", Button)
        assert not run.disabled and text(pane, "#convert-problems") == ""

        pane.query_one("#convert-mode", Select).value = "mxfp4"
        await pilot.pause()
        assert pane.query_one("#convert-group", Select).value == 32  # the form follows the mode's fixed group
        assert not run.disabled
        pane.query_one("#convert-group", Select).value = 64
        await pilot.pause()
        assert "mxfp4 always uses group size 32" in text(pane, "#convert-problems") and run.disabled

        pane.query_one("#convert-group", Select).value = 32
        pane.query_one("#convert-recipe", Select).value = "mixed_3_6"
        await pilot.pause()
        assert "only with affine" in text(pane, "#convert-problems") and run.disabled

        pane.query_one("#convert-mode", Select).value = "affine"
        pane.query_one("#convert-recipe", Select).clear()
        pane.query_one("#convert-dequantize", Checkbox).value = True
        await pilot.pause()
        assert "exclude each other" in text(pane, "#convert-problems") and run.disabled
        pane.action_run()  # the key does nothing either
        await pilot.pause()
        assert ConvertService(app.ctx).jobs() == []


async def test_trust_remote_code_asks_first_and_says_why() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        box = pane.query_one("#convert-trust", Checkbox)
        assert box.value is False
        box.value = True
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert "run Python files" in str(app.screen.query_one("#confirm-body", Static).render())
        await pilot.press("escape")
        await pilot.pause()
        assert box.value is False and pane.options().trust_remote_code is False

        box.value = True
        await pilot.pause()
        await pilot.click("#confirm-ok")
        await pilot.pause()
        assert box.value is True and pane.options().trust_remote_code is True


async def test_inspect_verdict_unsupported_stops_convert(make_tiny_model) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        report = {"repo_id": "fancylabs/FancyNet-tiny", "supported": False,
                  "problems": ["mlx-lm has no module for model_type 'fancynet'"]}
        pane.prefill("fancylabs/FancyNet-tiny", None, report)
        await pilot.pause()
        assert "no module for model_type 'fancynet'" in text(pane, "#convert-verdict")
        assert pane.query_one("#convert-run", Button).disabled


@pytest.mark.parametrize(("config", "says"), [
    ('{"model_type": "llama", "n": ' + "9" * 5000 + "}", "integer of 5000 digits"),
    ('{"model_type": "llama", "x": ' + "[" * 3000 + "]" * 3000 + "}", "nests deeper than"),
])
async def test_a_hostile_config_json_says_why_in_the_pane_and_starts_nothing(make_tiny_model, config: str, says: str) -> None:
    folder = make_tiny_model("tiny")
    (folder / "config.json").write_text(config)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        pane.prefill(str(folder))
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "Not started" in text(pane, "#convert-job"))
        assert says in text(pane, "#convert-job")
        assert ConvertService(app.ctx).jobs() == []
        models = app.ctx.settings.models_dir()
        assert not models.exists() or not any(models.iterdir())


async def test_existing_default_output_is_never_overwritten_a_free_name_is_offered(make_tiny_model) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        models = app.ctx.settings.models_dir()
        (models / "tiny-4bit").mkdir(parents=True)
        pane.prefill(str(make_tiny_model("tiny")))
        await pilot.pause()
        assert pane.query_one("#convert-output", Input).value == str(models / "tiny-4bit-2")
        assert "tiny-4bit already exists and is never overwritten: using tiny-4bit-2" in text(pane, "#convert-output-note")
        pane.query_one("#convert-output", Input).value = str(models / "tiny-4bit")
        await pilot.pause()
        assert "already exists" in text(pane, "#convert-problems")
        assert pane.query_one("#convert-run", Button).disabled


async def test_a_queue_runs_from_the_form_with_progress_and_results(make_tiny_model) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        pane.prefill(str(make_tiny_model("tiny")))
        pane.query_one("#convert-dtype", Select).value = "float32"
        await pilot.pause()
        pane.action_queue()
        pane.query_one("#convert-bits", Select).value = 8
        await pilot.pause()
        pane.action_queue()
        await pilot.pause()
        assert "Queue: 4bit, 8bit" in text(pane, "#convert-queue")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "done." in text(pane, "#convert-job"))
        models = app.ctx.settings.models_dir()
        assert (models / "tiny-4bit" / "mlxtui-provenance.json").exists()
        assert (models / "tiny-8bit" / "mlxtui-provenance.json").exists()
        results = text(pane, "#convert-results")
        assert "✓ 4bit · " in results and "✓ 8bit · " in results and "bits/weight" in results
        assert f"\n  {models / 'tiny-4bit'}" in results and f"\n  {models / 'tiny-8bit'}" in results
        assert pane.query_one("#progress-quantize").display
        assert text(pane, "#convert-queue") == ""


async def test_escape_cancels_a_job_that_just_started(make_tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0.5")
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        pane.confirm_after_s = 3600  # "just started", however slow this machine is today
        pane.prefill(str(make_tiny_model("tiny")))
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: pane.query_one("#progress-quantize").display)
        await pilot.press("escape")
        await wait_until(pilot, lambda: "cancelled" in text(pane, "#convert-job"))
        models = app.ctx.settings.models_dir()
        assert not (models / "tiny-4bit").exists() and not list(models.glob(".*partial*"))
        assert ConvertService(app.ctx).jobs()[0].state == "cancelled"


async def test_escape_on_a_long_running_job_asks_before_cancelling(
    make_tiny_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0.5")
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        pane.confirm_after_s = 0  # every running job counts as long-running here
        pane.prefill(str(make_tiny_model("tiny")))
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: pane.query_one("#progress-quantize").display)
        job_id = pane.job_id
        worker = ConvertService(app.ctx).job(job_id).pid
        os.kill(worker, signal.SIGSTOP)  # held mid-job, so it cannot finish while the test answers the dialog
        try:
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            assert "has run for" in str(app.screen.query_one("#confirm-body", Static).render())
            await pilot.press("escape")  # No: the job keeps running
            await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmDialog))
            job = ConvertService(app.ctx).job(job_id)
            assert job.active and jobstore.worker_alive(job.dir)
            await pilot.press("escape")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            await pilot.press("y")  # yes: cancel it
            await wait_until(pilot, lambda: "Cancelling" in text(pane, "#convert-job"))
        finally:
            os.kill(worker, signal.SIGCONT)  # a SIGTERM sent meanwhile is delivered now
        await wait_until(pilot, lambda: "cancelled" in text(pane, "#convert-job"))
        assert ConvertService(app.ctx).job(job_id).state == "cancelled"
        models = app.ctx.settings.models_dir()
        assert not (models / "tiny-4bit").exists() and not list(models.glob(".*partial*"))


async def test_reopening_mlxtui_reattaches_to_a_running_job(make_tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0.3")
    service = ConvertService(Context(endpoint="http://127.0.0.1:9"))
    job = await service.start(await service.plan(str(make_tiny_model("tiny")), ConvertOptions(quantize=True)))
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: bool(app.query(ConvertPane)))
        pane = app.query_one(ConvertPane)
        await wait_until(pilot, lambda: pane.job_id == job.id)
        await wait_until(pilot, lambda: "done." in text(pane, "#convert-job"))
        assert "✓ 4bit · " in text(pane, "#convert-results")
        assert jobstore.load_job(job.dir).state == "done"


async def test_an_unexpected_failure_is_reported_and_the_status_leaves_checking(
    make_tiny_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (not an MlxtuiError) in the service: the app's one failure handler reports it, and the pane's
    status line says it failed instead of staying on 'Checking…'."""

    async def broken_start(self, plan):  # our own service, made to fail as a bug would
        raise RuntimeError("a bug in start")

    monkeypatch.setattr(ConvertService, "start", broken_start)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        pane.prefill(str(make_tiny_model("tiny")))
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: text(pane, "#convert-job").startswith("Failed:"))
        assert "a bug in start" in text(pane, "#convert-job")
        assert any("a bug in start" in str(n.message) for n in app._notifications)


async def test_a_finished_conversion_hands_off_to_chat_card_and_upload(make_tiny_model) -> None:
    """Issue 14: the finished conversion becomes the model in work and Chat, Card, Upload are one key away."""
    from mlxtui.ui.panes.card import CardPane

    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        source = str(make_tiny_model("tiny"))
        pane.prefill(source)
        await pilot.pause()
        assert not app.active_bindings.get("h") or app.active_bindings["h"].node is not pane  # nothing to offer yet
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "done." in text(pane, "#convert-job"))
        output = str(app.ctx.settings.models_dir() / "tiny-4bit")
        await wait_until(pilot, lambda: app.work.folder == output)
        assert app.work.source == source and "tiny-4bit" in str(app.query_one("#work", Static).render())
        assert "Library (7)" not in " ".join(n.message for n in app._notifications)
        app.set_focus(pane.query_one("#convert-log"))  # at rest (not typing in a field)
        await pilot.pause()
        shown = {b.binding.key: b.binding.description for b in app.active_bindings.values() if b.binding.show}
        assert shown.get("h") == "Chat" and shown.get("e") == "Card" and shown.get("u") == "Upload"
        await pilot.press("e")
        card = app.query_one(CardPane)
        await wait_until(pilot, lambda: card.folder is not None and str(card.folder) == output)
        assert app.query_one("#panes", PaneSwitcher).active == "card"


async def test_not_started_clears_when_the_source_is_fixed(make_tiny_model) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        pane.prefill("4")
        await pilot.pause()
        pane.action_run()
        await wait_until(pilot, lambda: "Not started" in text(pane, "#convert-job"))
        assert "no folder" in text(pane, "#convert-job").lower()
        pane.query_one("#convert-source", Input).value = str(make_tiny_model("tiny"))
        await wait_until(pilot, lambda: "Not started" not in text(pane, "#convert-job"))
        assert text(pane, "#convert-job") == "No job running."


async def test_cancelling_shows_one_toast(make_tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0.5")
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await open_convert(app, pilot)
        pane.confirm_after_s = 3600
        pane.prefill(str(make_tiny_model("tiny")))
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: pane.query_one("#progress-quantize").display)
        app.set_focus(pane.query_one("#convert-log"))  # at rest: Escape cancels (in a field it leaves the field)
        await pilot.pause()
        before = len(app._notifications)
        await pilot.press("escape")
        await wait_until(pilot, lambda: "cancelled" in text(pane, "#convert-job"))
        await app.workers.wait_for_complete()
        await pilot.pause()
        toasts = list(app._notifications)[before:]
        assert len(toasts) == 1, [t.message for t in toasts]

"""One failure policy: a worker that dies with anything is reported (notice + log), never silent."""

from __future__ import annotations

import pytest

from textual.worker import WorkerFailed

from mlxtui import paths
from mlxtui.services import Context
from mlxtui.services.errors import NotFoundError
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.keys import PANES


def make_app() -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False)


async def _explode() -> None:
    raise RuntimeError("the service had a bug")


async def _not_found() -> None:
    raise NotFoundError("org/missing was not found on the Hub.", hint="Check the spelling.")


@pytest.mark.parametrize("pane", [p for p, _ in PANES])
async def test_a_bug_in_any_pane_worker_is_shown_and_logged(pane: str) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        widget = app.query_one(f"#{pane}-pane")
        worker = widget.run_worker(_explode(), exit_on_error=False, name="explode")
        with pytest.raises(WorkerFailed):
            await worker.wait()
        await pilot.pause()
        notices = [n.message for n in app._notifications]
        assert any("Something went wrong: the service had a bug" in m and str(paths.log_path()) in m for m in notices)
        log = paths.log_path().read_text(encoding="utf-8")
        assert "RuntimeError: the service had a bug" in log and type(widget).__name__ in log


async def test_an_mlxtui_error_that_escapes_a_worker_is_shown_as_its_sentence() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        worker = app.query_one("#inspect-pane").run_worker(_not_found(), exit_on_error=False)
        with pytest.raises(WorkerFailed):
            await worker.wait()
        await pilot.pause()
        notices = [n.message for n in app._notifications]
        assert "org/missing was not found on the Hub. Check the spelling." in notices


async def test_a_crash_ends_with_one_line_and_the_log_never_a_traceback_with_locals(capsys) -> None:
    app = make_app()
    secret = "hf_" + "b" * 34

    def crash() -> None:
        token = secret  # a local variable, which Textual's own crash report would print
        if token:
            raise ZeroDivisionError("division by zero")

    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.call_later(crash)
            await pilot.pause()
            await pilot.pause()
    out = capsys.readouterr()
    printed = out.out + out.err
    assert app.return_code == 70
    assert "mlxtui: unexpected error: division by zero (details in" in printed
    assert "Traceback" not in printed and secret not in printed
    log = paths.log_path().read_text(encoding="utf-8")
    assert "ZeroDivisionError" in log and secret not in log


@pytest.mark.parametrize("pane", ["chat", "upload"])  # every widget's notify() goes through the app's
async def test_every_notification_is_plain_text_whatever_the_caller_passes(pane: str) -> None:
    """Server replies, file names and model output reach the toasts: brackets are never markup (an OpenAI
    error's "[DONE]" once vanished from its sentence; an unbalanced "[link=" raised MarkupError while the
    toast was drawn) and control characters are shown, not sent."""
    from textual.widgets._toast import Toast

    hostile = "ended (no finish reason, no [DONE]); [b]bold?[/b] [link=http://x]here[/link] \x1b[2J"
    app = make_app()
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await pilot.pause()
        app.query_one(f"#{pane}-pane").notify(hostile, title="[i]Chat[/i]", severity="error")  # markup=True
        while not app.screen.query(Toast):
            await pilot.pause(0.01)  # the toast is mounted by the screen's rack (a condition; the test's timeout bounds it)
        assert [n.markup for n in app._notifications] == [False]
        shown = " ".join(str(toast.render()) for toast in app.screen.query(Toast))
        assert "no [DONE])" in shown and "[b]bold?[/b]" in shown and "[link=http://x]here[/link]" in shown
        assert "[i]Chat[/i]" in shown
        assert "\x1b" not in shown and "^[[2J" in shown

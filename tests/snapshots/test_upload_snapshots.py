"""Snapshots of the Upload pane at 80x24 and 120x36 on the demo Hub: the preflight and the confirmation.

The folder sits at a fixed path and the endpoint's port is replaced by PORT in every visible text.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from tests.ui_helpers import settle
from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.messages import UploadFolder
from mlxtui.ui.panes.upload import UploadPane

pytestmark = pytest.mark.usefixtures("restore_hub_environment")
SIZES = [(80, 24), (120, 36)]
FIXED = Path("/tmp/mlxtui-snapshots/upload/h2o-danube2-tiny-chat-4bit")

@pytest.fixture
def fixed_folder(mlx_folder_template: Path) -> Iterator[Path]:
    """The converted folder with its built card, at a path that is the same on every run.

    One path for every run means one test at a time uses it: pytest-xdist's workers take turns (a lock)."""
    import fcntl

    from mlxtui.services.card import CardService

    FIXED.parent.mkdir(parents=True, exist_ok=True)
    with open(FIXED.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(FIXED, ignore_errors=True)
        shutil.copytree(mlx_folder_template, FIXED)
        service = CardService(Context(endpoint="http://127.0.0.1:9"))
        # written for the target the pane suggests, as after the Card pane followed it (issue 14)
        text, _ = asyncio.run(service.build(FIXED, existing=(FIXED / "README.md").read_text(),
                                            repo_id="alice/h2o-danube2-tiny-chat-4bit"))
        (FIXED / "README.md").write_text(text)
        yield FIXED


def preparing(folder: Path, url: str, *keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await pilot.pause()
        app.post_message(UploadFolder(str(folder)))
        for _ in range(200):  # the pane mounts lazily, then checks the account and runs the preflight
            await pilot.pause(0.05)
            await settle(app)
            panes = app.query(UploadPane)
            if panes and panes.first().plan is not None:
                break
        # a late start-up focus in the Search tab can switch tabs back: settle on the upload pane
        app.action_show_pane("upload")
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
            await pilot.pause()
        app.query_one("#endpoint", Static).update("Hub: http://127.0.0.1:PORT")
        for static in app.screen.query(Static):
            text = str(static.render())
            if url in text:
                static.update(text.replace(url, "http://127.0.0.1:PORT"))
        for widget in app.query(Input):
            widget.cursor_blink = False
            if isinstance(widget, Input):  # the same scroll position whatever the timing: cursor at the end
                widget.cursor_position = len(widget.value)
        app.clear_notifications()
        await pilot.pause()

    return run_before


def make_app(hub, tmp_path: Path) -> MlxtuiApp:
    from mlxtui.services import configure_hub_environment

    configure_hub_environment(hub.url)  # as the CLI does at start-up, on the main thread
    return MlxtuiApp(Context(endpoint=hub.url, token=hub.write_token), probe=False,
                     settings_path=tmp_path / "config.toml")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_upload_preflight(snap_compare, hub, fixed_folder: Path, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(hub, tmp_path), terminal_size=size, run_before=preparing(fixed_folder, hub.url))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_upload_confirmation(snap_compare, hub, fixed_folder: Path, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(hub, tmp_path), terminal_size=size,
                        run_before=preparing(fixed_folder, hub.url, "ctrl+g"))

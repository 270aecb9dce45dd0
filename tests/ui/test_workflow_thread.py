"""Issue 14's thread through the workflow, app side: stale notices clear when their cause does, and Search
shows what an upload put on the Hub it lists."""

from __future__ import annotations

import time

import pytest
from textual.widgets import Input

from mlxtui.services import Context
from mlxtui.ui.app import EndpointBar, MlxtuiApp
from mlxtui.ui.messages import HubChanged
from mlxtui.ui.panes.search import SearchPane

pytestmark = pytest.mark.usefixtures("restore_hub_environment")


async def wait_for(pilot, predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_the_offline_toast_clears_when_the_demo_hub_starts(hub) -> None:
    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9"))
    async with app.run_test(size=(120, 36)) as pilot:
        bar = app.query_one(EndpointBar)
        await wait_for(pilot, lambda: any(n.title == "Offline" for n in app._notifications))
        app._demo_started(hub)  # what the palette's "Start demo Hub" does once its server answers
        await wait_for(pilot, lambda: bar.online is True)
        assert not any(n.title == "Offline" for n in app._notifications)
        assert any(n.title == "Demo" for n in app._notifications)


async def test_search_refreshes_after_an_upload_to_the_hub_it_shows(fresh_hub) -> None:
    from huggingface_hub import HfApi

    app = MlxtuiApp(Context(endpoint=fresh_hub.url, token=fresh_hub.write_token), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        search = app.query_one(SearchPane)
        search.query_one("#search-query", Input).value = "zz-fresh"
        search.start_search()
        await wait_for(pilot, lambda: "zz-fresh" in str(search.query_one("#search-status").render())
                       and not search.workers)
        assert not any(h.repo_id == "alice/zz-fresh-model" for h in search._hits)
        api = HfApi(endpoint=fresh_hub.url, token=fresh_hub.write_token)
        api.create_repo("alice/zz-fresh-model")
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="alice/zz-fresh-model")
        app.post_message(HubChanged("alice/zz-fresh-model"))
        await wait_for(pilot, lambda: any(h.repo_id == "alice/zz-fresh-model" for h in search._hits))


async def test_model_fields_complete_as_you_type(hub, make_tiny_model) -> None:
    """Convert's source completes Hub repo ids and local folders; → accepts the suggestion."""
    from mlxtui.ui.panes.convert import ConvertPane

    folder = make_tiny_model("tiny-completion")
    app = MlxtuiApp(Context(endpoint=hub.url), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: bool(app.query(ConvertPane)))
        app.action_show_pane("convert")
        await pilot.pause()
        source = app.query_one("#convert-source", Input)
        source.focus()
        await pilot.pause()
        await pilot.press(*"h2oai/h2o-danube2-tiny-c")
        await wait_for(pilot, lambda: source._suggestion == "h2oai/h2o-danube2-tiny-chat")
        await pilot.press("right")
        assert source.value == "h2oai/h2o-danube2-tiny-chat"
        source.value = ""
        await pilot.press(*str(folder)[:-4])
        await wait_for(pilot, lambda: source._suggestion == str(folder))
        await pilot.press("right")
        assert source.value == str(folder)

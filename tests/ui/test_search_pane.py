"""The Search pane through the pilot against the demo Hub: debounce, stale results, paging, sort, memory, Enter."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select, Static

from mlxtui.services import Context
from mlxtui.settings import load_settings
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.inspect import InspectPane
from mlxtui.ui.panes.search import DEBOUNCE_S, SearchPane
from mlxtui.ui.switcher import PaneSwitcher


def make_app(hub, tmp_path: Path) -> MlxtuiApp:
    ctx = Context(endpoint=hub.url, token=hub.write_token)
    return MlxtuiApp(ctx, probe=False, settings_path=tmp_path / "config.toml")


async def settle(pilot) -> None:
    """Let the debounce fire, then wait for every worker (never a blind sleep for results)."""
    await pilot.pause(DEBOUNCE_S + 0.1)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def rows(app: MlxtuiApp) -> list[str]:
    table = app.query_one("#search-results", DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


def search_requests(hub) -> int:
    return sum(1 for r in hub.requests if r.method == "GET" and r.path == "/api/models")


async def test_typing_fast_sends_one_search(fresh_hub, tmp_path: Path) -> None:
    app = make_app(fresh_hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_show_pane("search")
        await pilot.pause()
        fresh_hub.clear_requests()
        await pilot.press(*"danube2-tiny")
        await settle(pilot)
        assert search_requests(fresh_hub) == 1
        assert rows(app) and all("danube2-tiny" in r for r in rows(app))
        assert "h2oai/h2o-danube2-tiny-chat" in rows(app)


async def test_old_query_never_replaces_a_newer_one(fresh_hub, tmp_path: Path) -> None:
    app = make_app(fresh_hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(SearchPane)
        query = app.query_one("#search-query", Input)
        fresh_hub.faults.slow(1.0, 1, path_prefix="/api/models", method="GET")  # the first search is slow
        query.value = "llama"
        pane.start_search()
        await pilot.pause()
        query.value = "qwen"
        pane.start_search()
        await settle(pilot)
        await pilot.pause(1.2)  # the slow answer for "llama" arrives after "qwen" was shown
        await pilot.pause()
        assert rows(app) and all("qwen" in r.lower() for r in rows(app))
        assert "qwen" in str(app.query_one("#search-status", Static).render())


async def test_more_rows_load_near_the_end(fresh_hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_hub.page_size = 4
    monkeypatch.setattr(SearchPane, "PAGE_SIZE", 4)
    monkeypatch.setattr("mlxtui.ui.panes.search.LOAD_MORE_MARGIN", 1)
    app = make_app(fresh_hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_show_pane("search")
        await pilot.pause()
        await pilot.press(*"tiny", "enter")
        await settle(pilot)
        assert len(rows(app)) == 4  # one page, not everything
        fresh_hub.clear_requests()
        await pilot.press("down", "down", "down")
        await settle(pilot)
        assert len(rows(app)) == 8
        assert search_requests(fresh_hub) == 1
        assert len(set(rows(app))) == 8


async def test_sort_filters_and_memory(hub, tmp_path: Path) -> None:
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_show_pane("search")
        await pilot.pause()
        await pilot.press(*"tiny", "enter")
        await settle(pilot)
        await pilot.press("s")  # downloads -> likes
        await settle(pilot)
        assert app.query_one("#search-sort", Select).value == "likes"
        table = app.query_one("#search-results", DataTable)
        likes = [int(str(table.get_cell(key, "likes"))) for key in rows(app)[:2]]
        assert rows(app)[0] == "meta-llama/Llama-3.2-tiny-Instruct" and likes[0] >= likes[1]
        await pilot.press("f", *"mlx-community")
        await settle(pilot)
        assert rows(app) and all(r.startswith("mlx-community/") for r in rows(app))
    saved, problems = load_settings(tmp_path / "config.toml")
    assert not problems
    assert (saved.search.query, saved.search.sort, saved.search.author) == ("tiny", "likes", "mlx-community")
    # A new app starts with the remembered query and filters.
    ctx = Context(endpoint=hub.url, token=hub.write_token, settings=saved)
    again = MlxtuiApp(ctx, probe=False, settings_path=tmp_path / "config.toml")
    async with again.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert again.query_one("#search-query", Input).value == "tiny"
        assert again.query_one("#search-author", Input).value == "mlx-community"
        assert again.query_one("#search-sort", Select).value == "likes"


async def test_badges_for_mlx_and_gated(hub, tmp_path: Path) -> None:
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_show_pane("search")
        await pilot.press(*"tiny", "enter")
        await settle(pilot)
        table = app.query_one("#search-results", DataTable)
        assert str(table.get_cell("mlx-community/h2o-danube2-tiny-chat-4bit", "mlx")) == "MLX"
        assert str(table.get_cell("meta-llama/Llama-3.2-tiny-Instruct", "lock")) == "🔒"
        assert str(table.get_cell("h2oai/h2o-danube2-tiny-chat", "lock")) == ""
        assert str(table.get_cell("h2oai/h2o-danube2-tiny-chat", "params")) == "557.7k"  # from safetensors


async def test_enter_opens_inspect(hub, tmp_path: Path) -> None:
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_show_pane("search")
        await pilot.press(*"h2o-danube2-tiny-chat", "enter")
        await settle(pilot)
        assert app.focused is app.query_one("#search-results", DataTable)
        await pilot.press("enter")
        await settle(pilot)
        assert app.query_one("#panes", PaneSwitcher).active == "inspect"
        pane = app.query_one(InspectPane)
        assert pane.report is not None and pane.report.repo_id == rows(app)[0]


async def test_offline_search_says_so_in_the_pane(tmp_path: Path) -> None:
    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False, settings_path=tmp_path / "c.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_show_pane("search")
        await pilot.press(*"x", "enter")
        await settle(pilot)
        assert "Can't reach" in str(app.query_one("#search-status", Static).render())


async def test_rate_limit_is_shown_and_retried(fresh_hub, tmp_path: Path) -> None:
    fresh_hub.faults.rate_limit(1, path_prefix="/api/models", method="GET", retry_after=0)
    app = make_app(fresh_hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_show_pane("search")
        await pilot.press(*"danube", "enter")
        await settle(pilot)
        assert any("rate limited, retrying in" in n.message for n in app._notifications)
        assert "h2oai/h2o-danube2-tiny-chat" in rows(app)


async def test_built_after_the_first_frame_typing_and_keys_wait_for_it(fresh_hub, tmp_path: Path, monkeypatch) -> None:
    """As in a terminal: the first frame has only the search box; text typed before the rest is mounted
    searches once it is, and the pane's keys (`s`, `f`) do nothing until then instead of failing."""
    monkeypatch.setattr(SearchPane, "BUILD_LATER", True)
    app = make_app(fresh_hub, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(SearchPane)
        assert not pane.ready() and not app.query("#search-results")  # the first frame: the box alone
        assert app.query_one("#search-query", Input)
        assert pane.check_action("cycle_sort", ()) is False and pane.check_action("refresh", ()) is True
        fresh_hub.clear_requests()
        app.query_one("#search-query", Input).value = "danube2-tiny"  # typed in the first instant
        pane.start_search()  # Enter, or the Hub found online: waits for the filters
        while not pane.ready():
            await pilot.pause(0.01)
        await settle(pilot)
        assert search_requests(fresh_hub) == 1  # the text typed meanwhile is searched once, not again
        ids = [key.value for key in app.query_one("#search-results", DataTable).rows]  # repo ids (cut at 80 columns)
        assert ids and all("danube2-tiny" in repo for repo in ids)
        assert str(app.query_one("#search-sort", Select).value) == "downloads"
        await pilot.press("escape", "s")  # from the results, `s` now cycles the sort
        await settle(pilot)
        assert str(app.query_one("#search-sort", Select).value) == "likes"

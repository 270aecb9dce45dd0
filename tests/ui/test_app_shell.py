"""The app shell through the pilot: panes by key, palette, help, endpoint and demo badges, size notice."""

from __future__ import annotations


from mlxtui.services import Context
from mlxtui.ui.app import EndpointBar, MlxtuiApp
from mlxtui.ui.keys import PANES
from mlxtui.ui.screens.help import HelpScreen
from mlxtui.ui.switcher import PaneSwitcher


def make_app(**kwargs) -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False, **kwargs)


async def test_digit_keys_switch_panes() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        tabs = app.query_one("#panes", PaneSwitcher)
        await pilot.pause()
        app.set_focus(None)
        for n, (pane, _title) in reversed(list(enumerate(PANES, start=1))):
            await pilot.press(str(n))
            await pilot.pause()
            assert tabs.active == pane
            app.set_focus(None)


async def test_empty_search_box_has_focus_at_start_and_a_digit_typed_there_is_text() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.focused is app.query_one("#search-query")
        await pilot.press("4")
        await pilot.pause()
        assert app.query_one("#panes", PaneSwitcher).active == "search"
        assert app.query_one("#search-query").value == "4"


async def test_alt_digits_are_not_bound() -> None:
    """Terminals send alt+digit as ESC+digit or a symbol that reads as typing: the app does not pretend."""
    from mlxtui.ui.keys import app_bindings

    assert not [b.key for b in app_bindings() if "alt+" in b.key]


async def test_help_screen_lists_keys_of_every_pane() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        app.set_focus(None)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-table")
        sections = {str(table.get_row_at(i)[0]) for i in range(table.row_count)}
        assert {"Everywhere", *(title for _, title in PANES)} <= sections
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_palette_goes_to_a_pane() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Go to Chat")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#panes", PaneSwitcher).active == "chat"


async def test_endpoint_and_demo_badge_are_visible() -> None:
    ctx = Context(endpoint="http://127.0.0.1:9", demo=True)
    app = MlxtuiApp(ctx, probe=False)
    async with app.run_test(size=(120, 36)):
        bar = app.query_one(EndpointBar)
        assert "127.0.0.1:9" in str(bar.query_one("#endpoint").render())
        assert bar.query_one("#demo-badge").display is True


async def test_unreachable_hub_is_reported_offline_quickly() -> None:
    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9"))
    async with app.run_test(size=(120, 36)) as pilot:
        bar = app.query_one(EndpointBar)
        def told() -> bool:
            return any("working offline" in n.message for n in app._notifications)

        for _ in range(400):  # the probe starts after the first frame; a refused connect answers at once
            if bar.online is not None and told():  # the notice is a message: it lands a moment after the bar
                break
            await pilot.pause(0.05)
        assert bar.online is False
        assert told()


async def test_too_small_terminal_shows_a_notice_not_a_crash() -> None:
    app = make_app()
    async with app.run_test(size=(50, 15)) as pilot:
        await pilot.pause()
        assert app.has_class("-too-small")
        assert "needs at least" in str(app.query_one("#too-small").render())
        await pilot.resize_terminal(120, 36)
        await pilot.pause()
        assert not app.has_class("-too-small")


async def test_switching_panes_moves_focus_into_the_new_pane_and_never_into_a_text_field() -> None:
    from mlxtui.ui.focus import is_text_field

    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        for pane in ["inspect", "convert", "chat", "card", "upload", "library", "lab", "cluster", "search"]:
            app.action_show_pane(pane)
            for _ in range(50):
                await pilot.pause(0.02)
                focused = app.focused
                if focused is not None and app.query_one(f"#{pane}-pane") in (focused, *focused.ancestors):
                    break
            assert app.query_one("#panes", PaneSwitcher).active == pane
            focused = app.focused
            assert focused is not None and app.query_one(f"#{pane}-pane") in (focused, *focused.ancestors), (pane, focused)
            assert not is_text_field(focused), (pane, focused)


async def test_escape_leaves_a_field_for_the_panes_home_so_digits_switch_panes() -> None:
    from mlxtui.ui.focus import home_widget

    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        for pane, digit in [("inspect", "3"), ("convert", "4"), ("chat", "5"), ("card", "6"), ("upload", "7"),
                            ("lab", "9"), ("cluster", "1"), ("search", "2")]:
            app.action_show_pane(pane)
            for _ in range(50):
                await pilot.pause(0.02)
                if app.focused is not None and app.query_one(f"#{pane}-pane") in (app.focused, *app.focused.ancestors):
                    break
            await pilot.press("slash")  # into the pane's main field
            await pilot.pause()
            assert type(app.focused).__name__ in ("Input", "TextArea"), (pane, app.focused)
            await pilot.press("escape")
            await pilot.pause()
            assert app.focused is home_widget(app.query_one(f"#{pane}-pane")), (pane, app.focused)
            await pilot.press(digit)
            await pilot.pause()
            wanted = {"1": "search", "2": "inspect", "3": "convert", "4": "chat", "5": "card", "6": "upload",
                      "7": "library", "9": "cluster"}[digit]
            assert app.query_one("#panes", PaneSwitcher).active == wanted, (pane, digit)


async def test_the_top_bar_carries_the_model_in_work() -> None:
    from mlxtui.ui.messages import ConversionFinished, TargetChosen

    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        work = app.query_one("#work")
        assert not work.display
        app.post_message(ConversionFinished("/models/danube-4bit", "h2oai/danube"))
        app.post_message(TargetChosen("alice/danube-4bit"))
        await pilot.pause()
        assert work.display
        assert str(work.render()) == "h2oai/danube → /models/danube-4bit → alice/danube-4bit"

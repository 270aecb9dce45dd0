"""The key policy (docs/keys.md), the same in every pane at 80x24: arriving never lands in a field with text,
digits switch panes from home, / edits the main field, a digit typed there stays text, Escape goes home."""

from __future__ import annotations

import pytest
from textual.widgets import Input, TextArea

from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.focus import edit_widget, holds_text, home_widget, is_text_field
from mlxtui.ui.keys import PANES
from mlxtui.ui.switcher import PaneSwitcher, TabBar

PANE_IDS = [pane for pane, _ in PANES]


def make_app() -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False)


def digit_of(pane: str) -> str:
    return str(PANE_IDS.index(pane) + 1)


async def arrive(pilot, pane: str) -> None:
    """Press the pane's digit and wait until focus is inside it (panes mount after the first frame)."""
    app = pilot.app
    await pilot.press(digit_of(pane))
    for _ in range(100):
        await pilot.pause(0.02)
        found = app.query(f"#{pane}-pane")
        focused = app.focused
        if found and focused is not None and found.first() in (focused, *focused.ancestors):
            return
    raise AssertionError(f"focus never arrived in {pane}: {app.focused!r}")


def text_of(field) -> str:
    return field.value if isinstance(field, Input) else field.text


def set_text(field, text: str) -> None:
    if isinstance(field, Input):
        field.value = text
    else:
        field.text = text


@pytest.mark.parametrize("pane", PANE_IDS)
async def test_the_key_policy_holds_in_every_pane(pane: str) -> None:
    app = make_app()
    other = "library" if pane != "library" else "lab"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("escape")  # out of the first screen's search box
        await arrive(pilot, pane)
        shown = app.query_one(f"#{pane}-pane")
        field = edit_widget(shown)
        if field is not None:
            set_text(field, "keep-me")  # the main field holds text the user typed earlier

        # Arriving (by digit, from another pane) lands on home: never a text field, so no key replaces text.
        await arrive(pilot, other)
        await arrive(pilot, pane)
        assert app.focused is home_widget(shown), (pane, app.focused)
        assert not is_text_field(app.focused) and not holds_text(app.focused)

        if field is None:  # a pane without a text field (Library): / does nothing, focus stays home
            await pilot.press("slash")
            await pilot.pause()
            assert app.focused is home_widget(shown)
        else:
            # / starts editing the main field; a one-line field has its text selected.
            await pilot.press("slash")
            await pilot.pause()
            assert app.focused is field, (pane, app.focused)
            if isinstance(field, Input):
                assert field.selected_text == "keep-me"
            # A digit typed in the field is text, not a pane switch.
            await pilot.press("end", "5")
            await pilot.pause()
            assert app.query_one("#panes", PaneSwitcher).active == pane
            assert text_of(field).endswith("5") and "keep-me" in text_of(field), text_of(field)
            # Escape leaves the field for the pane's home widget.
            await pilot.press("escape")
            await pilot.pause()
            assert app.focused is home_widget(shown), (pane, app.focused)

        # From home, a digit switches panes at once.
        await pilot.press(digit_of(other))
        await pilot.pause()
        assert app.query_one("#panes", PaneSwitcher).active == other


async def test_a_clicked_tab_is_an_arrival_too() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("escape")  # out of the first screen's search box
        await arrive(pilot, "inspect")
        await arrive(pilot, "search")
        bar = app.query_one(TabBar)
        await pilot.click(TabBar, offset=(bar.span_of("inspect").start + 1, 0))
        for _ in range(50):
            await pilot.pause(0.02)
            if app.query_one("#panes", PaneSwitcher).active == "inspect" and app.focused is not None:
                break
        assert app.query_one("#panes", PaneSwitcher).active == "inspect"
        assert app.focused is home_widget(app.query_one("#inspect-pane"))
        await pilot.click(TabBar, offset=(bar.span_of("chat").start, 1))  # the underline is part of the tab too
        await pilot.pause()
        assert app.query_one("#panes", PaneSwitcher).active == "chat"


async def test_the_card_editor_is_left_with_tab_not_filled_with_spaces(tmp_path) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await arrive(pilot, "card")
        editor = app.query_one("#card-editor", TextArea)
        editor.focus()
        await pilot.pause()
        await pilot.press("tab")
        await pilot.pause()
        assert editor.text == ""
        assert app.focused is not editor


def test_esc_digit_is_read_as_escape_then_the_digit() -> None:
    """What terminals send for alt+2, and tmux for Escape then 2 within its escape-time."""
    from textual._xterm_parser import XTermParser

    from mlxtui.ui.escdigits import read_esc_digit_as_escape_then_digit

    assert read_esc_digit_as_escape_then_digit()
    keys = [(event.key) for event in XTermParser().feed("\x1b2") if hasattr(event, "key")]
    assert keys == ["escape", "2"]


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_help_shows_keys_words_and_ids_without_cutting(size: tuple[int, int]) -> None:
    from mlxtui.ui.screens.help import HelpScreen

    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-table")
        await pilot.pause()
        assert table.virtual_size.width <= table.scrollable_content_region.width, "the id column is cut"


async def test_back_from_a_too_small_terminal_focus_returns_home_and_no_other_pane_shows() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await arrive(pilot, "chat")
        await arrive(pilot, "upload")
        await pilot.resize_terminal(50, 15)
        await pilot.pause()
        assert app.has_class("-too-small")
        await pilot.resize_terminal(80, 24)
        for _ in range(50):
            await pilot.pause(0.02)
            if app.focused is not None:
                break
        assert app.focused is home_widget(app.query_one("#upload-pane"))
        assert not app.query_one("#chat-pane").display or not app.query_one("#chat").display
        shown = app.export_screenshot()
        assert "Preflight" in shown and "sampling" not in shown  # Upload, and nothing of Chat's


async def test_ctrl_l_in_chat_selects_the_model_field_so_typing_replaces_the_old_path() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await arrive(pilot, "chat")
        field = app.query_one("#chat-model", Input)
        field.value = "/old/path/model-4bit"
        await pilot.press("ctrl+l", "x")
        await pilot.pause()
        assert app.focused is field and field.value == "x"


async def test_focus_taken_by_a_pane_not_on_screen_comes_back_to_the_pane_on_screen() -> None:
    """A worker finishing in another pane (or a late focus after a fast switch) must not pull the user away,
    nor leave the keys going to a widget nobody sees."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await arrive(pilot, "search")
        app.query_one("#chat-prompt", Input).focus()  # Chat is hidden
        for _ in range(50):
            await pilot.pause(0.02)
            if app.focused is not None and app.query_one("#search-pane") in app.focused.ancestors:
                break
        assert app.query_one("#panes", PaneSwitcher).active == "search"
        assert app.focused is home_widget(app.query_one("#search-pane"))

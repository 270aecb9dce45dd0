"""The footer (KeyBar): the keys that work now, on one line at any width, and a click presses a key."""

from __future__ import annotations

from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.screens.help import HelpScreen
from mlxtui.ui.widgets.keybar import KeyBar


def make_app() -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False)


async def test_wide_footer_names_every_key_and_the_palette() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("escape")
        app.action_show_pane("chat")
        await pilot.pause()
        bar = app.query_one(KeyBar)
        text = str(bar.render())
        assert [k.description for k in bar.keys] == ["Prompt", "System", "Settings", "Model", "Quit", "Edit", "Help",
                                                      "palette"]
        assert "^q Quit" in text and text.rstrip().endswith("^p palette") and len(text) <= bar.size.width


async def test_narrow_footer_keeps_the_panes_words_and_shortens_the_apps_own_keys() -> None:
    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("escape")
        for pane in ("lab", "chat"):
            app.action_show_pane(pane)
            await pilot.pause()
            bar = app.query_one(KeyBar)
            text = str(bar.render()).rstrip()
            assert len(text) <= 60, (pane, text)
            assert text.endswith("^q / ?") and "Quit" not in text, (pane, text)  # the app's keys: in Help
            assert "palette" not in text
        assert "^r Prompt ^y System ^t Settings ^l Model" in text  # the pane's own keys keep their words


async def test_a_click_on_a_key_presses_it() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("escape")
        await pilot.pause()
        bar = app.query_one(KeyBar)
        bar.render()
        help_key = next(k for k in bar.keys if k.description == "Help")
        await pilot.click(KeyBar, offset=(help_key.start + 1, 0))
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)

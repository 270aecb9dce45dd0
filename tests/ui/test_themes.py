"""Themes: four built-ins, a user folder, broken files reported once with a fallback, the choice remembered."""

from __future__ import annotations

from pathlib import Path

from mlxtui import paths
from mlxtui.services import Context
from mlxtui.settings import Settings, load_settings
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.themes import DEFAULT_THEME, load_themes

BUILT_IN = {"mlxtui-dark", "mlxtui-light", "mlxtui-high-contrast", "mlxtui-16"}


def test_built_in_themes_all_load() -> None:
    themes, problems = load_themes([paths.builtin_themes_dir()])
    assert problems == []
    assert {t.name for t in themes} == BUILT_IN
    assert next(t for t in themes if t.name == "mlxtui-16").ansi is True
    assert next(t for t in themes if t.name == "mlxtui-light").dark is False


def user_themes() -> Path:
    folder = paths.config_dir() / "themes"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_broken_user_theme_gives_one_notice_and_the_default_theme() -> None:
    (user_themes() / "broken.toml").write_text('name = "broken"\nprimary = "not-a-colour"\n')
    (user_themes() / "garbage.toml").write_text("name = = =\n")
    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9", settings=Settings(theme="broken")), probe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == DEFAULT_THEME
        messages = [n.message for n in app._notifications]
        skipped = [m for m in messages if "theme files were skipped" in m]
        assert len(skipped) == 1 and "broken.toml" in skipped[0] and "garbage.toml" in skipped[0]
        assert any("'broken' was not found" in m for m in messages)


async def test_user_theme_folder_adds_themes() -> None:
    (user_themes() / "mine.toml").write_text('name = "mine"\nprimary = "#112233"\ndark = true\n')
    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9", settings=Settings(theme="mine")), probe=False)
    async with app.run_test(size=(80, 24)):
        assert app.theme == "mine"
        assert BUILT_IN <= set(app.available_themes)


async def test_chosen_theme_is_remembered_in_settings() -> None:
    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = "mlxtui-high-contrast"
        await pilot.pause()
    settings, problems = load_settings()
    assert problems == []
    assert settings.theme == "mlxtui-high-contrast"


async def test_keymap_from_settings_remaps_a_binding() -> None:
    settings = Settings(keymap={"app.help": "f2"})
    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9", settings=settings), probe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.set_focus(None)
        await pilot.press("f2")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"

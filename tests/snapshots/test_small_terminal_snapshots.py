"""Every pane at 80x24 and 60x20 as a user arrives in it by digit (issue 14: 80x24 is first-class), plus Inspect
in the 16-colour theme. Port, temporary folders and the cursor blink are made stable."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Static, TextArea

from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.keys import PANES

SIZES = [(80, 24), (60, 20)]
PANE_IDS = [pane for pane, _ in PANES]


@pytest.fixture(autouse=True)
def fixed_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same memory and free disk on every machine, so Inspect's figures are stable."""
    monkeypatch.setattr("mlxtui.services.inspect.machine_memory_bytes", lambda: 32 * 10**9)
    monkeypatch.setattr("mlxtui.services.inspect.free_disk", lambda path: 500 * 10**9)


def make_app(hub, tmp_path: Path, theme: str | None = None) -> MlxtuiApp:
    ctx = Context(endpoint=hub.url, token=hub.write_token)
    if theme:
        ctx.settings.theme = theme
    return MlxtuiApp(ctx, probe=False, settings_path=tmp_path / "config.toml")


async def stable(pilot, tmp_path: Path) -> None:
    """Hide what changes between runs: the port, temporary folders, the blinking cursor."""
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    app.query_one("#endpoint", Static).update("Hub: http://127.0.0.1:PORT")
    home = str(tmp_path)
    for widget in app.query(Static):
        text = str(widget.render())
        if home in text:
            widget.update(text.replace(home, "~"))
    for widget in [*app.query(Input), *app.query(TextArea)]:
        widget.cursor_blink = False
    await pilot.pause()


def arriving(pane: str, tmp_path: Path, repo: str | None = None):
    """Press the pane's digit as a user would (after leaving the first screen's search box)."""

    async def run_before(pilot) -> None:
        app = pilot.app
        await pilot.pause()
        await pilot.press("escape")
        for _ in range(100):
            await pilot.pause(0.02)
            if app.query(f"#{pane}-pane"):
                break
        await pilot.press(str(PANE_IDS.index(pane) + 1))
        await pilot.pause()
        if repo is not None:
            app.query_one("#inspect-pane").show_model(repo)
            await app.workers.wait_for_complete()
        await stable(pilot, tmp_path)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("pane", PANE_IDS)
def test_pane_fits(snap_compare, hub, tmp_path: Path, pane: str, size: tuple[int, int]) -> None:
    repo = "h2oai/h2o-danube2-tiny-chat" if pane == "inspect" else None
    assert snap_compare(make_app(hub, tmp_path), terminal_size=size, run_before=arriving(pane, tmp_path, repo))


@pytest.mark.parametrize("size", [(80, 24), (120, 30)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_inspect_in_16_colours(snap_compare, hub, tmp_path: Path, size: tuple[int, int]) -> None:
    """At 120 columns the config.json column and its divider show (under 100 the report takes the width)."""
    assert snap_compare(make_app(hub, tmp_path, theme="mlxtui-16"), terminal_size=size,
                        run_before=arriving("inspect", tmp_path, "Qwen/Qwen2-tiny"))


@pytest.mark.parametrize("theme", ["mlxtui-dark", "mlxtui-16"])
async def test_dividers_stay_visible_in_16_colours(theme: str, tmp_path: Path) -> None:
    """On TERM=xterm the colours are reduced to the 16 ANSI ones: a divider must not become the background's."""
    from rich.color import Color, ColorSystem

    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False, settings_path=tmp_path / "c.toml")
    app.ctx.settings.theme = theme
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = theme
        await pilot.pause()
        variables = app.get_css_variables()

        def ansi(name: str) -> int | None:
            value = variables[name]
            if value.startswith("ansi_"):
                return Color.parse(value.removeprefix("ansi_")).number
            return Color.parse(value[:7]).downgrade(ColorSystem.STANDARD).number

        background = ansi("background")
        background = 0 if background is None else background  # the terminal's default: dark themes on black
        assert ansi("divider") not in (background, None)

"""The footer: the keys that work now, drawn as one line of text.

Textual's Footer is a widget per key and recomposes them all whenever the bindings change (focus moves, a
reply starts or ends). On a slow CPU that is tens of milliseconds, spent exactly when speed is felt: the
first frame and the first token of a reply. This draws the same keys (the screen's active bindings with
`show`, one per action, the palette key on the right) as one Text, redrawn in place; a click on a key
presses it, as on Textual's Footer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.text import Text

from textual import events
from textual.widget import Widget

if TYPE_CHECKING:
    from textual.screen import Screen

__all__ = ["KeyBar", "ShownKey"]


@dataclass(frozen=True)
class ShownKey:
    """One key as the bar shows it, and the columns it takes."""

    key: str
    display: str
    description: str
    enabled: bool
    tooltip: str
    start: int = 0
    end: int = 0
    #: the app's own key (quit, help, edit): shown without its description when the line is too narrow
    app_key: bool = False


class KeyBar(Widget, can_focus=False):
    """One line of "key description" pairs for the focused widget's bindings; the palette key docked right."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--palette"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        & > .keybar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .keybar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .keybar--palette {
            color: $foreground 20%;
        }
    }
    """

    def __init__(self, *, show_palette: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.show_palette = show_palette
        self._keys: list[ShownKey] = []

    @property
    def keys(self) -> list[ShownKey]:
        """The keys drawn at the last render, left to right (the palette key last)."""
        return list(self._keys)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if self.is_attached and screen is self.screen:
            self.refresh()

    def _collect(self) -> tuple[list[ShownKey], ShownKey | None]:
        """The screen's active bindings that are shown, one per action (the first), as Footer picks them."""
        active = self.screen.active_bindings
        seen: set[str] = set()
        shown: list[ShownKey] = []
        palette_binding = self.app.COMMAND_PALETTE_BINDING

        def shown_key(key: str) -> ShownKey:
            node, binding, enabled, tooltip = active[key]
            return ShownKey(binding.key, self.app.get_key_display(binding), binding.description, enabled,
                            tooltip or binding.tooltip or binding.description, app_key=node is self.app)

        for key, (_node, binding, _enabled, _tooltip) in active.items():
            if not binding.show or binding.action in seen or key == palette_binding:
                continue
            seen.add(binding.action)
            shown.append(shown_key(key))
        palette = None
        if self.show_palette and self.app.ENABLE_COMMAND_PALETTE and palette_binding in active:
            palette = shown_key(palette_binding)
        return shown, palette

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keybar--key", partial=True)
        description_style = self.get_component_rich_style("keybar--description", partial=True)
        shown, palette = self._collect()
        width = self.size.width
        # Too long for the line (a pane with many keys at 60 columns): the app's own keys lose their words.
        full = sum(len(i.display) + (len(i.description) + 1 if i.description else 0) + 1 for i in shown)
        terse = bool(width) and full > width
        text = Text(no_wrap=True, overflow="crop", end="")
        placed: list[ShownKey] = []
        for item in shown:
            start = len(text)
            text.append(item.display, key_style)
            if item.description and not (terse and item.app_key):
                text.append(" " + item.description, description_style)
            if not item.enabled:
                text.stylize("dim", start)
            placed.append(replace(item, start=start, end=len(text)))
            text.append(" ")
        if palette is not None and width and len(text) + len(palette.display) + len(palette.description) + 3 <= width:
            tail = Text(no_wrap=True, end="")
            tail.append("▏", self.get_component_rich_style("keybar--palette", partial=True))
            tail.append(palette.display, key_style)
            tail.append(" " + palette.description, description_style)
            gap = width - len(text) - len(tail)
            text.append(" " * gap)
            start = len(text)
            text.append_text(tail)
            placed.append(replace(palette, start=start + 1, end=len(text)))
        self._keys = placed
        return text

    def _key_at(self, x: int) -> ShownKey | None:
        return next((item for item in self._keys if item.start <= x < item.end), None)

    def on_click(self, event: events.Click) -> None:
        item = self._key_at(event.x)
        if item is None:
            return
        event.stop()
        if item.enabled:
            self.app.simulate_key(item.key)
        else:
            self.app.bell()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        item = self._key_at(event.x)
        self.tooltip = item.tooltip if item is not None else None


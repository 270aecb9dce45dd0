"""The pane switcher: a tab bar drawn as two lines of text over a ContentSwitcher of pane boxes.

Textual's TabbedContent makes a widget per tab (a Tab and its label, a scroll container, an underline) and
manages them on every switch; measured on a pty, it alone cost about 40 ms of the first frame (bench/startup.py).
Here the tab bar is one widget that draws its labels and underline, and each pane sits in a plain box
named after it (`#search`, `#chat`, ...) whose content the app mounts after the first frame.

The pane on screen changes only when the user asks (keys, a click on a tab, the palette, workflow messages):
a background pane that takes focus (a worker finishing, a deferred focus after a fast switch over SSH) hands
it back to the pane on screen instead of pulling the user away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text

from textual import events
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import ContentSwitcher

__all__ = ["PaneBox", "PaneSwitcher", "TabBar", "tab_layout"]


class PaneBox(Container):
    """Holds one pane; its id is the pane's name."""

    DEFAULT_CSS = "PaneBox { height: 1fr; padding: 0; }"


@dataclass(frozen=True)
class TabSpan:
    pane: str
    start: int  # first cell of the label (after the padding)
    end: int  # the cell after the label


def tab_layout(titles: Sequence[tuple[str, str, str]], width: int) -> tuple[list[str], list[TabSpan]]:
    """Labels and their cells for `width`: "n Title" padded on both sides, then on the left only, then
    short titles, so that all tabs stay on one line down to 60 columns. `titles`: (pane, title, short)."""
    attempts = [(False, 1, 1), (False, 1, 0), (True, 1, 0), (True, 0, 0)]
    for short, left, right in attempts:
        labels = [f"{n} {s if short else t}" for n, (_, t, s) in enumerate(titles, start=1)]
        if sum(len(label) + left + right for label in labels) <= width or (short, left, right) == attempts[-1]:
            break
    spans, x = [], 0
    for (pane, _, _), label in zip(titles, labels):
        spans.append(TabSpan(pane, x + left, x + left + len(label)))
        x += left + len(label) + right
    return labels, spans


class TabBar(Widget, can_focus=False):
    """The panes' titles on one line, the one on screen underlined; a click switches (through the app)."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"tabbar--tab", "tabbar--active", "tabbar--bar", "tabbar--highlight"}
    DEFAULT_CSS = """
    TabBar {
        height: 2;
        & > .tabbar--tab { color: $foreground 50%; }
        & > .tabbar--active { color: $foreground; }
        & > .tabbar--bar { color: $foreground 10%; }
        & > .tabbar--highlight { color: $block-cursor-background; }
        &:ansi {
            & > .tabbar--tab { text-style: dim; }
            & > .tabbar--active { text-style: not dim bold; }
            & > .tabbar--bar { color: $border-blurred; }
        }
    }
    """

    active: reactive[str] = reactive("")

    class Clicked(Message):
        """A tab was clicked."""

        def __init__(self, pane: str) -> None:
            super().__init__()
            self.pane = pane

    def __init__(self, titles: Sequence[tuple[str, str, str]], active: str) -> None:
        super().__init__()
        self.titles = list(titles)
        self.set_reactive(TabBar.active, active)
        self._spans: list[TabSpan] = []

    def span_of(self, pane: str) -> TabSpan:
        """The cells of `pane`'s label at the present width."""
        return next(span for span in tab_layout(self.titles, self.size.width)[1] if span.pane == pane)

    def render(self) -> Text:
        width = self.size.width
        labels, self._spans = tab_layout(self.titles, width)
        tab = self.get_component_rich_style("tabbar--tab", partial=True)
        active = self.get_component_rich_style("tabbar--active", partial=True)
        top = Text(no_wrap=True, overflow="crop", end="")
        for label, span in zip(labels, self._spans):
            top.append(" " * (span.start - len(top)))
            top.append(label, active if span.pane == self.active else tab)
        shown = next((s for s in self._spans if s.pane == self.active), None)
        bar = Text(no_wrap=True, overflow="crop", end="")
        dim = self.get_component_rich_style("tabbar--bar", partial=True)
        if shown is None:
            bar.append("━" * width, dim)
        else:
            before, after = max(0, shown.start - 1), max(0, width - shown.end - 1)
            bar.append("━" * before + ("╸" if shown.start else ""), dim)
            bar.append("━" * (shown.end - shown.start), self.get_component_rich_style("tabbar--highlight", partial=True))
            bar.append(("╺" if shown.end < width else "") + "━" * after, dim)
        return Text("\n", end="").join([top, bar])

    def on_click(self, event: events.Click) -> None:
        span = next((s for s in self._spans if s.start - 1 <= event.x <= s.end), None)
        if span is not None:
            event.stop()
            self.post_message(self.Clicked(span.pane))


class PaneSwitcher(Vertical):
    """A TabBar over a ContentSwitcher of PaneBoxes (yield the boxes inside `with PaneSwitcher(...)`)."""

    DEFAULT_CSS = """
    PaneSwitcher { height: 1fr; }
    PaneSwitcher > ContentSwitcher { height: 1fr; }
    """

    def __init__(self, titles: Sequence[tuple[str, str, str]], *, initial: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self._titles = list(titles)
        self._initial = initial
        self._boxes: list[Widget] = []

    def compose_add_child(self, widget: Widget) -> None:
        self._boxes.append(widget)

    def compose(self) -> ComposeResult:
        yield TabBar(self._titles, self._initial)
        yield ContentSwitcher(*self._boxes, initial=self._initial)

    @property
    def active(self) -> str | None:
        """The pane on screen."""
        return self.query_one(ContentSwitcher).current

    @active.setter
    def active(self, pane: str) -> None:
        self.query_one(ContentSwitcher).current = pane
        self.query_one(TabBar).active = pane

    def box(self, name: str) -> Widget | None:
        """The box of pane `name`, found without a DOM query (the footer asks on every redraw)."""
        return next((box for box in self._boxes if box.id == name), None)

    def pane(self, name: str) -> Widget | None:
        """The pane in box `name` (None until it is mounted)."""
        box = self.box(name)
        return box.children[0] if box is not None and box.children else None

    def _shown_box(self) -> Widget | None:
        return self.box(self.active) if self.active else None

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """Focus landed in a pane not on screen: give it back to the pane on screen (after this refresh)."""
        shown = self._shown_box()
        if shown is not None and shown not in event.widget.ancestors:
            self.call_after_refresh(self._refocus_active)

    def _refocus_active(self) -> None:
        focused, shown = self.app.focused, self._shown_box()
        if shown is None or (focused is not None and shown in focused.ancestors):
            return
        self.app.set_focus(None)
        pane, refocus = self.pane(self.active or ""), getattr(self.app, "focus_pane_home", None)
        if pane is not None and refocus is not None:
            refocus(pane)

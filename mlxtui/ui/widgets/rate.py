"""Token-rate readout: the running turn's figures, refreshed on a timer, and a sparkline of past turns."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from mlxtui.services.events import ChatStats

__all__ = ["RateReadout", "RateFigures", "format_stats"]

#: readout refreshes per second while a reply streams (a few a second reads calmly and costs nothing)
REFRESH_HZ = 4


def format_stats(stats: ChatStats | None, context: tuple[int, int | None] | None = None) -> str:
    """The readout's lines; `context` is (tokens used, context length)."""
    if stats is None:
        return "[dim]no reply yet[/]"
    lines = [
        f"gen    [b]{stats.generation_tps:8.1f}[/] tok/s",
        f"prompt {stats.prompt_tps:8.1f} tok/s",
        f"first  {stats.ttft_s * 1000:8.0f} ms",
        f"tokens {stats.generation_tokens:8d}",
        f"peak   {stats.peak_memory_gb:8.3f} GB",
    ]
    extra = []
    if context and context[1]:
        extra.append(f"ctx {context[0]:,}/{context[1]:,}")
    if stats.cached_tokens:
        extra.append(f"{stats.cached_tokens:,} cached")
    lines.append(" · ".join(extra))
    ending = _ENDINGS.get(stats.finish_reason or "")
    if ending:
        lines.append(ending)
    return "\n".join(lines)


# How a finished reply ended; a streaming reply has no finish reason and shows no such line.
_ENDINGS = {
    "stop": "[green]✓ done[/]",
    "length": "[yellow]✓ done: max tokens reached[/]",
    "cancelled": "[yellow]stopped by you[/]",
}


class RateFigures(Widget):
    """The figures: a fixed-height widget, so a redraw is a repaint and never a layout of the screen."""

    DEFAULT_CSS = "RateFigures { height: 7; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = format_stats(None)

    def render(self) -> Text:
        return Text.from_markup(self.text)

    def show(self, text: str) -> None:
        self.text = text
        self.refresh()


class RateReadout(Vertical):
    """Shows `stats` (set as often as you like; drawn REFRESH_HZ times a second) and per-turn history."""

    DEFAULT_CSS = """
    RateReadout { height: auto; }
    RateReadout > #rate-history-label { color: $text-muted; }
    RateReadout > Sparkline { height: 1; margin-bottom: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stats: ChatStats | None = None
        self.context: tuple[int, int | None] | None = None
        self._drawn: object = None
        self._history: list[float] = []

    def compose(self) -> ComposeResult:
        yield RateFigures(id="rate-figures")
        yield Static("gen tok/s by turn", id="rate-history-label")
        yield Sparkline([], id="rate-history")

    def on_mount(self) -> None:
        self.set_interval(1 / REFRESH_HZ, self.refresh_figures)

    def refresh_figures(self) -> None:
        """Redraw the figures if they changed since the last tick."""
        key = (self.stats, self.context)
        if key != self._drawn:
            self._drawn = key
            self.query_one(RateFigures).show(format_stats(self.stats, self.context))

    def end_turn(self, stats: ChatStats) -> None:
        """A reply finished: show its final figures now and add it to the history."""
        self.stats = stats
        self._history.append(stats.generation_tps)
        self.query_one(Sparkline).data = list(self._history)
        self.refresh_figures()

    def set_history(self, figures: list[float]) -> None:
        """Replace the per-turn history (a reopened conversation)."""
        self._history = list(figures)
        self.query_one(Sparkline).data = list(self._history)

    def reset(self) -> None:
        self.stats, self.context = None, None
        self.set_history([])
        self.refresh_figures()

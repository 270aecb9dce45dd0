"""Token-rate readout: the running turn's figures, refreshed on a timer, and a sparkline of past turns.

While a reply streams, the figures are drawn along with the reply's own screen updates (`draw_along`):
each screen update costs the event loop a few milliseconds whatever it shows, CPU the model's thread
would rather have. The timer only draws figures that no such update has carried for a while.

A rate is shown only when it rests on enough tokens and time to mean something (`rate_or_none`, see
docs/chat.md); otherwise "—", and the turn is left out of the sparkline so it cannot flatten the others.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from mlxtui.services.chat_sampling import rate_or_none
from mlxtui.services.events import ChatStats

__all__ = ["RateReadout", "RateFigures", "RateHistory", "format_stats"]

#: readout refreshes per second while a reply streams (a few a second reads calmly and costs nothing)
REFRESH_HZ = 4
#: the timer draws figures when no reply's screen update has come to carry them for this long
STALE_S = 2 / REFRESH_HZ


def format_stats(stats: ChatStats | None, context: tuple[int, int | None] | None = None) -> str:
    """The readout's lines; `context` is (tokens used, context length)."""
    if stats is None:
        return "[dim]no reply yet[/]"
    gen = rate_or_none(stats.generation_tokens, stats.generation_tps)
    prompt = rate_or_none(stats.prompt_tokens, stats.prompt_tps)
    lines = [
        f"gen    [b]{_rate(gen)}[/] tok/s",
        f"prompt {_rate(prompt)} tok/s",
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


def _rate(value: float | None) -> str:
    return f"{value:8.1f}" if value is not None else f"{'—':>8}"


def honest_rate(stats: ChatStats | dict[str, Any]) -> float | None:
    """A turn's generation rate when it means something (a ChatStats or its saved dict), else None."""
    if isinstance(stats, dict):
        tokens, tps = stats.get("generation_tokens"), stats.get("generation_tps")
        if not isinstance(tokens, int) or not isinstance(tps, (int, float)):
            return None
        return rate_or_none(tokens, float(tps))
    return rate_or_none(stats.generation_tokens, stats.generation_tps)


def _stats_from(saved: dict[str, Any]) -> ChatStats | None:
    """A saved turn's figures, keeping only well-typed fields (the file may have been edited by hand)."""
    fields: dict[str, Any] = {}
    for name, default in ChatStats().__dict__.items():
        value = saved.get(name, default)
        if isinstance(default, (int, float)) and not isinstance(value, bool) and isinstance(value, (int, float)):
            fields[name] = type(default)(value)
        elif name == "finish_reason" and (value is None or isinstance(value, str)):
            fields[name] = value
    return ChatStats(**fields)


# How a finished reply ended; a streaming reply has no finish reason and shows no such line. Each fits the
# side panel's 23 columns at 80x24 ("✓ done: max tokens reached" ended in an ellipsis there).
_ENDINGS = {
    "stop": "[green]✓ done[/]",
    "length": "[yellow]✓ max tokens reached[/]",
    "cancelled": "[yellow]stopped by you[/]",
}


class RateFigures(Widget):
    """The figures: a fixed-height widget, so a redraw is a repaint and never a layout of the screen."""

    # One line per figure, never wrapped: a wrapped line (a narrow side panel, "ctx … · N cached") would
    # push the last one, how the reply ended, out of the fixed height.
    DEFAULT_CSS = "RateFigures { height: 7; text-wrap: nowrap; text-overflow: ellipsis; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = format_stats(None)

    def render(self) -> Text:
        return Text.from_markup(self.text)

    def show(self, text: str) -> None:
        self.text = text
        self.refresh()


class RateHistory(Sparkline):
    """One bar per turn's generation rate, from zero. Textual's Sparkline scales between the data's own
    minimum and maximum: 408 and 426 tok/s were drawn as the lowest bar and the highest."""

    BARS = "▁▂▃▄▅▆▇█"

    def render(self) -> Text:
        data = list(self.data or [])
        width = self.size.width
        _, base = self.background_colors
        if not data:  # a baseline, as Sparkline draws it
            muted = base + self.get_component_styles("sparkline--min-color").color
            return Text(self.BARS[0] * width, style=Style(color=muted.rich_color))
        top = max(data)
        cells = []
        for column in range(width):  # as Sparkline does: turns spread over the width, or the most per column
            start = column * len(data) // width
            value = max(data[start : max(start + 1, (column + 1) * len(data) // width)])
            cells.append(self.BARS[round(value / top * (len(self.BARS) - 1)) if top > 0 else 0])
        color = base + self.get_component_styles("sparkline--max-color").color
        return Text("".join(cells), style=Style(color=color.rich_color))


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
        self._drawn_at = 0.0  # monotonic() of the last draw
        self._along_at = 0.0  # monotonic() of the last screen update a reply's text asked for
        self._history: list[float] = []

    def compose(self) -> ComposeResult:
        yield RateFigures(id="rate-figures")
        yield Static("gen tok/s by turn", id="rate-history-label")
        yield RateHistory([], id="rate-history")

    def on_mount(self) -> None:
        self.set_interval(1 / REFRESH_HZ, self._tick)

    def _tick(self) -> None:
        # While a reply's text keeps being drawn, its updates carry the figures: a draw of the timer's own
        # would be a screen update more. Figures no such update has carried for STALE_S are drawn here.
        if monotonic() - max(self._drawn_at, self._along_at) >= STALE_S:
            self.refresh_figures()

    def draw_along(self) -> None:
        """The screen is about to be updated anyway (a reply's text is being drawn): draw the figures in the
        same update, at most REFRESH_HZ times a second."""
        self._along_at = now = monotonic()
        if now - self._drawn_at >= 1 / REFRESH_HZ:
            self.refresh_figures()

    def refresh_figures(self) -> None:
        """Redraw the figures now if they changed since they were last drawn."""
        key = (self.stats, self.context)
        if key != self._drawn:
            self._drawn, self._drawn_at = key, monotonic()
            self.query_one(RateFigures).show(format_stats(self.stats, self.context))

    def end_turn(self, stats: ChatStats) -> None:
        """A reply finished: show its final figures now and add its rate to the history (when it has one)."""
        self.stats = stats
        rate = honest_rate(stats)
        if rate is not None:
            self._history.append(rate)
            self.query_one(Sparkline).data = list(self._history)
        self.refresh_figures()

    @property
    def history(self) -> list[float]:
        """The generation rates in the sparkline, one per turn that has a meaningful one."""
        return list(self._history)

    def set_history(self, turns: list[Any]) -> None:
        """Replace the per-turn history (a reopened conversation): each turn's stats (ChatStats or saved
        dict); the last one's figures are shown."""
        self._history = [r for r in map(honest_rate, turns) if r is not None]
        self.query_one(Sparkline).data = list(self._history)
        last = turns[-1] if turns else None
        if isinstance(last, dict):
            last = _stats_from(last)
        self.stats = last
        self.refresh_figures()

    def reset(self) -> None:
        self.context = None
        self.set_history([])

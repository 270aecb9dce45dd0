"""An assistant reply in the chat log: streamed Markdown whose cost per token stays constant.

A reply is one widget of lines (`ReplyMarkdown`): its finished pieces, each drawn once, and the live part
still streaming, drawn again at each flush, all with Rich's Markdown, so a reply looks the same while it
streams and once it is done. Model output is shown terminal-safe (`mlxtui.format.printable`: control
characters as ^[ and the like); `Reply.text` keeps the exact text for saving and export.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from mlxtui.format import printable
from mlxtui.ui.widgets.laid_out_once import LaidOutOnce, LogText

__all__ = ["Reply", "ReplyMarkdown", "ChatTurn", "user_message"]


class Reply(LaidOutOnce, Vertical):
    """An assistant reply, streamed into one `ReplyMarkdown`.

    Two things keep the cost of a token constant however long the reply or the conversation gets: text
    reaches the screen at most FLUSH_HZ times a second, whatever the token rate; and once the live part is
    long, it is finished at a paragraph break and its lines kept (drawn once, off the event loop), so each
    flush draws a bounded amount of Markdown.

    Each update (drawing the live part, layout, paint) costs the event loop milliseconds on a slow machine,
    CPU the model's thread would rather have: the flush interval stretches so that the event loop's CPU use
    while streaming stays near CPU_BUDGET of one core.

    Textual's Markdown widget streamed here before: a container with a widget per block, whose first block
    took a mount of its own (so the first words showed in a plain preview first, swapped out at the second
    flush), and which looked different from the finished reply drawn with Rich. One widget of lines costs
    each flush less layout and paint, and the swap is gone.
    """

    FLUSH_HZ = 10
    CPU_BUDGET = 0.025
    SOFT, HARD, HUGE = 1_500, 4_000, 8_000  # finish a segment at a blank line / a newline / a space beyond these

    def __init__(self, text: str = "", *, classes: str = "reply") -> None:
        super().__init__(classes=classes)
        self._parts: list[str] = [text] if text else []
        self._pending: list[str] = []
        self._segment = ""
        self._last_flush = 0.0
        self._last_cpu = time.thread_time() + ReplyMarkdown.cpu_off_loop
        self._interval = 1 / self.FLUSH_HZ
        self._body = ReplyMarkdown(printable(text))
        self._detached = False
        #: perf_counter when text first / last reached the screen's widgets (bench/chat.py measures with these)
        self.first_shown: float | None = None
        self.last_shown: float | None = None

    @property
    def text(self) -> str:
        """Everything written so far (flushed or not), exactly as the model wrote it."""
        return "".join(self._parts)

    @property
    def shown(self) -> str:
        """The Markdown source on screen now: the finished pieces and the live part (terminal-safe)."""
        return self._body.text + self._body.live

    def compose(self) -> ComposeResult:
        yield self._body  # a reopened reply holds all its text as finished pieces; nothing will be appended

    async def write(self, fragment: str) -> None:
        """Queue text; it reaches the screen within 1/FLUSH_HZ s (terminal-safe; `text` keeps it exact)."""
        self._parts.append(fragment)
        self._pending.append(printable(fragment))
        if self.flush_due():
            now = time.monotonic()
            # The event loop's CPU since the last flush is, mostly, what that flush cost to show. Before the
            # first text it is whatever the loop did meanwhile (a model loading, for a reply mounted ahead):
            # counted, it held the second flush back a whole second.
            cpu = time.thread_time() + ReplyMarkdown.cpu_off_loop
            spent, self._last_cpu = cpu - self._last_cpu, cpu
            if self.first_shown is not None:
                self._interval = min(1.0, max(1 / self.FLUSH_HZ, 0.5 * self._interval + 0.5 * spent / self.CPU_BUDGET))
            self._last_flush = now
            await self._flush()

    def flush_due(self) -> bool:
        """The next `write` draws its text (and what is pending) on screen."""
        return time.monotonic() - self._last_flush >= self._interval

    def detach(self) -> None:
        """The log is being cleared under this reply (ctrl+n, another chat): keep its text, draw nothing more."""
        self._detached = True

    @property
    def detached(self) -> bool:
        return self._detached

    async def _flush(self) -> None:
        if not self._pending or self._detached or not self.is_attached:
            return  # nothing new, or a reply no longer (or never) on screen
        fragment = "".join(self._pending)
        self._pending.clear()
        seg = self._segment
        candidate = seg + fragment
        split = -1
        if len(candidate) > self.SOFT and candidate.count("```") % 2 == 0:
            split = candidate.rfind("\n\n", max(0, len(seg) - 1))
            split = split + 2 if split >= 0 else -1
            if split < 0 and len(candidate) > self.HARD:
                split = candidate.rfind("\n", len(seg))
                split = split + 1 if split >= 0 else -1
            if split < 0 and len(candidate) > self.HUGE:
                split = candidate.rfind(" ", len(seg))
                split = split + 1 if split >= 0 else -1
        if split <= len(seg) or split >= len(candidate):
            self._segment = candidate
            self._body.live = candidate
        else:
            self._segment = candidate[split:]
            await self._body.add(candidate[:split], live=self._segment)  # one redraw for both
        self.last_shown = time.perf_counter()
        if self.first_shown is None:
            self.first_shown = self.last_shown

    async def stop(self) -> None:
        """Write what is pending, end the stream and finish the last segment."""
        if self._detached or not self.is_attached:
            return  # not on screen (its conversation was closed): the text is in self.text all the same
        await self._flush()
        segment, self._segment = self._segment, ""
        await self._body.add(segment, live="")


class ReplyMarkdown(LaidOutOnce, Widget):
    """A reply's lines: its finished pieces, each drawn once (per width) with Rich's Markdown and kept, and
    the live part after them, drawn again when it changes.

    One widget however many pieces: Textual arranges every widget of the log on each layout, so a long
    reply costs no more to lay out than a short one. A Static would also render its whole Markdown again
    whenever its container (the growing reply) changes size, i.e. on every flush.
    """

    DEFAULT_CSS = "ReplyMarkdown { height: auto; }"
    #: While a reply streams, its height grows STEP lines at a time (blank below the text until filled):
    #: most flushes then redraw the reply alone, without a layout of the whole screen.
    STEP = 6

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.pieces: list[str] = [text] if text.strip() else []
        self._live = ""
        self._width = 0
        self._strips: list[Strip] = []
        self._live_strips: list[Strip] | None = None  # None: to be drawn at the next layout

    @property
    def text(self) -> str:
        """The finished pieces."""
        return "".join(self.pieces)

    @property
    def live(self) -> str:
        """The part still streaming (drawn after the pieces)."""
        return self._live

    @live.setter
    def live(self, text: str) -> None:
        if text != self._live:
            self._live, self._live_strips = text, None
            self._redraw()

    def _height(self, width: int) -> int:
        """Lines to lay out: while a part is live, rounded up to a step of STEP lines."""
        pieces, live = self._draw(width)
        lines = len(pieces) + len(live)
        return -(-lines // self.STEP) * self.STEP if self._live.strip() else lines

    def _redraw(self) -> None:
        """Draw the change; lay the screen out again only if it changed this widget's height."""
        width = self.size.width
        self.refresh(layout=not width or width != self._width or self._height(width) != self.size.height)

    #: CPU seconds spent drawing pieces off the event loop, for Reply's budget (it only sees the loop's thread)
    cpu_off_loop = 0.0

    @staticmethod
    def render_piece(piece: str, width: int, console: Any, style: Any) -> list[Strip]:
        """Rich's Markdown for one piece as lines (safe to call off the event loop: it only reads)."""
        from rich.markdown import Markdown as RichMarkdown

        options = console.options.update_width(width).update(height=None)
        lines = console.render_lines(RichMarkdown(piece.strip() or " "), options, style=style, pad=True)
        return [Strip(line, width) for line in lines]

    @classmethod
    def _render_off_loop(cls, piece: str, width: int, console: Any, style: Any) -> list[Strip]:
        start = time.thread_time()
        strips = cls.render_piece(piece, width, console, style)
        cls.cpu_off_loop += time.thread_time() - start
        return strips

    def _joined(self, strips: list[Strip], width: int) -> list[Strip]:
        """`strips` to follow the pieces drawn so far: after a paragraph break, unless they are the first."""
        return [Strip.blank(width, self.rich_style), *strips] if self._strips else strips

    def _draw(self, width: int) -> tuple[list[Strip], list[Strip]]:
        """The pieces' lines and the live part's, drawing whatever is not drawn yet at this width."""
        if width != self._width:
            self._width, self._strips, self._live_strips = width, [], None
            for piece in self.pieces:
                self._strips += self._joined(self.render_piece(piece, width, self.app.console, self.rich_style), width)
        if self._live_strips is None:
            live = self._live
            self._live_strips = [] if not live.strip() else self._joined(
                self.render_piece(live, width, self.app.console, self.rich_style), width
            )
        return self._strips, self._live_strips

    def _lines(self, width: int) -> list[Strip]:
        pieces, live = self._draw(width)
        return pieces + live

    async def add(self, piece: str, *, live: str | None = None) -> None:
        """Append a finished piece (and set the live part: `live`, if given): only that piece is drawn, on a
        worker thread (Rich's Markdown with highlighted code takes tens of milliseconds the event loop should
        spend elsewhere)."""
        if piece.strip():
            width = self._width
            if width:
                strips = await asyncio.to_thread(self._render_off_loop, piece, width, self.app.console, self.rich_style)
            self.pieces.append(piece)
            if width and width == self._width:
                self._strips += self._joined(strips, width)
            else:
                self._width = 0  # the width changed meanwhile: draw everything again at the next layout
            self._live_strips = None  # its paragraph break depends on what comes before it
            if live is not None:
                self._live = live
            self._redraw()
        elif live is not None:
            self.live = live

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._restyle)

    def _restyle(self, _theme: Any) -> None:
        """Lines drawn in the old theme's colours are drawn again (the text itself never changes)."""
        self._width = 0
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self._height(width) if width else 0

    def render_line(self, y: int) -> Strip:
        # Indexed in place: joining the two lists here was a copy of the whole reply for every line painted.
        pieces, live = self._draw(self.size.width)
        if y < len(pieces):
            return pieces[y]
        y -= len(pieces)
        return live[y] if y < len(live) else Strip.blank(self.size.width, self.rich_style)


def user_message(text: str) -> Static:
    """A user's message in the log, shown as plain text with control characters made visible."""
    return LogText(Text(printable(text)), classes="user")


@dataclass
class ChatTurn:
    """A sent message and its reply widget, put into the log together and only once."""

    message: Static
    reply: Reply
    drawn: bool = False
    mounted: asyncio.Event = field(default_factory=asyncio.Event)
    #: mounted ahead, hidden (ChatLog): drawing it shows it with `text` as the message
    premounted: bool = False
    text: str = ""
    #: the message was sent from the message box, where it stays until the turn is drawn
    in_box: bool = False

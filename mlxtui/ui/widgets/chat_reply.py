"""An assistant reply in the chat log: streamed Markdown whose cost per token stays constant.

Model output is shown terminal-safe (`mlxtui.format.printable`: control characters as ^[ and the like);
`Reply.text` keeps the exact text for saving and export.
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
from textual.widgets import Markdown, Static

from mlxtui.format import printable
from mlxtui.ui.widgets.laid_out_once import LaidOutOnce, LiveMarkdown, LogText

__all__ = ["Reply", "FrozenMarkdown", "ChatTurn", "user_message"]


class Reply(LaidOutOnce, Vertical):
    """An assistant reply, streamed by appending to a Markdown widget (`Markdown.append`, awaited).

    Two things keep the cost of a token constant however long the reply or the conversation gets:
    text reaches the Markdown at most FLUSH_HZ times a second, whatever the token rate; and once the live
    segment is long, it is finished at a paragraph break and moved into the reply's FrozenMarkdown (lines
    drawn once), while a fresh Markdown takes the stream. Textual lays out every widget of the log on each
    change, and a Markdown document is a widget per block, so this keeps a long reply cheap to lay out.

    Each update (append, layout, paint) costs the event loop tens of milliseconds on a slow machine, CPU
    the model's thread would rather have: the flush interval stretches so that the event loop's CPU use
    while streaming stays near CPU_BUDGET of one core.
    """

    FLUSH_HZ = 10
    CPU_BUDGET = 0.05
    SOFT, HARD, HUGE = 1_500, 4_000, 8_000  # finish a segment at a blank line / a newline / a space beyond these

    def __init__(self, text: str = "", *, classes: str = "reply") -> None:
        super().__init__(classes=classes)
        self._parts: list[str] = [text] if text else []
        self._pending: list[str] = []
        self._segment = ""
        self._last_flush = 0.0
        self._last_cpu = time.thread_time() + FrozenMarkdown.cpu_off_loop
        self._interval = 1 / self.FLUSH_HZ
        # A reply about to stream brings its (empty) live Markdown along: it is laid out with the turn, so
        # the first text needs no mount of its own before it shows.
        self._current: Markdown | None = None if text else LiveMarkdown()
        self._frozen = FrozenMarkdown(printable(text))
        # The first text of a streamed reply shows here, a one-widget update, instead of waiting for the
        # Markdown to mount its first block (tens of ms on a slow CPU): that happens with the next flush.
        self._preview: Static | None = None if text else LogText("", classes="reply-preview", markup=False)
        self._previewed = ""  # text shown only in the preview so far
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
        """The Markdown source on screen now: the frozen pieces and the live segment (terminal-safe)."""
        live = self._current.source if self._current is not None else ""
        return self._frozen.text + live + self._previewed

    def compose(self) -> ComposeResult:
        yield self._frozen  # a reopened reply holds all its text here; nothing will be appended
        if self._current is not None:
            yield self._current
        if self._preview is not None:
            yield self._preview

    async def write(self, fragment: str) -> None:
        """Queue text; it reaches the screen within 1/FLUSH_HZ s (terminal-safe; `text` keeps it exact)."""
        self._parts.append(fragment)
        self._pending.append(printable(fragment))
        if self.flush_due():
            now = time.monotonic()
            # The event loop's CPU since the last flush is, mostly, what that flush cost to show. Before the
            # first text it is whatever the loop did meanwhile (a model loading, for a reply mounted ahead):
            # counted, it held the second flush back a whole second.
            cpu = time.thread_time() + FrozenMarkdown.cpu_off_loop
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
        if not (self._pending or self._previewed) or self._detached or not self.is_attached:
            return  # nothing new, or a reply no longer (or never) on screen
        fragment = "".join(self._pending)
        self._pending.clear()
        if self._preview is not None:
            if self.first_shown is None and fragment:
                self._previewed = fragment  # the very first text: shown at once, as plain text
                self._preview.update(Text(fragment))
                self.first_shown = self.last_shown = time.perf_counter()
                return
            fragment, self._previewed = self._previewed + fragment, ""
            preview, self._preview = self._preview, None
            await preview.remove()  # the Markdown below takes the text over from here
        if self._current is None:
            self._current = LiveMarkdown()
            await self.mount(self._current)
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
            await self._append(fragment)
            return
        await self._freeze(candidate[:split])
        self._segment = candidate[split:]
        self._current = LiveMarkdown()
        await self.mount(self._current)
        await self._append(self._segment)

    async def _append(self, fragment: str) -> None:
        """Append to the live Markdown and wait until it is in place.

        Awaited here rather than handed to `Markdown.get_stream`'s background task: that task, once
        stopped or cancelled (Esc, a new chat), could leave the next reply's text queued off screen.
        """
        if self._current is not None and fragment:
            await self._current.append(fragment)
            self.last_shown = time.perf_counter()
            if self.first_shown is None:
                self.first_shown = self.last_shown

    async def _freeze(self, text: str) -> None:
        """Move `text` (the live Markdown's whole source) to the frozen lines and drop the live Markdown."""
        if self._current is not None:
            live, self._current = self._current, None
            await self._frozen.add(text)
            self.set_class(bool(self._frozen.pieces), "-has-frozen")
            await live.remove()

    async def stop(self) -> None:
        """Write what is pending, end the stream and freeze the last segment."""
        if self._detached or not self.is_attached:
            return  # not on screen (its conversation was closed): the text is in self.text all the same
        await self._flush()
        await self._freeze(self._segment)
        self._segment = ""


class FrozenMarkdown(LaidOutOnce, Widget):
    """The finished pieces of a reply, each drawn once (per width) with Rich's Markdown and kept as lines.

    One widget however many pieces: Textual arranges every widget of the log on each layout, so a long
    reply costs no more to lay out than a short one. A Static would also render its whole Markdown again
    whenever its container (the growing reply) changes size, i.e. on every flush.
    """

    DEFAULT_CSS = "FrozenMarkdown { height: auto; }"

    def __init__(self, text: str = "") -> None:
        super().__init__(classes="frozen")
        self.pieces: list[str] = [text] if text.strip() else []
        self._width = 0
        self._strips: list[Strip] = []

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    #: CPU seconds spent drawing pieces off the event loop, for Reply's budget (it only sees the loop's thread)
    cpu_off_loop = 0.0

    @classmethod
    def render_piece(cls, piece: str, width: int, console: Any, style: Any) -> list[Strip]:
        """Rich's Markdown for one piece as lines (safe to call off the event loop: it only reads)."""
        from rich.markdown import Markdown as RichMarkdown

        start = time.thread_time()
        options = console.options.update_width(width).update(height=None)
        lines = console.render_lines(RichMarkdown(piece.strip() or " "), options, style=style, pad=True)
        strips = [Strip(line, width) for line in lines]
        cls.cpu_off_loop += time.thread_time() - start
        return strips

    def _render_piece(self, piece: str, width: int) -> list[Strip]:
        strips = self.render_piece(piece, width, self.app.console, self.rich_style)
        return self._joined(strips, width)

    def _joined(self, strips: list[Strip], width: int) -> list[Strip]:
        if self._strips:
            strips = [Strip.blank(width, self.rich_style), *strips]  # the paragraph break where pieces meet
        return strips

    def _lines(self, width: int) -> list[Strip]:
        if width != self._width:
            self._width, self._strips = width, []
            for piece in self.pieces:
                self._strips += self._render_piece(piece, width)
        return self._strips

    async def add(self, piece: str) -> None:
        """Append a finished piece: only that piece is rendered, on a worker thread (Rich's Markdown with
        highlighted code takes tens of milliseconds the event loop should spend elsewhere)."""
        if not piece.strip():
            return
        width = self._width
        if width:
            strips = await asyncio.to_thread(self.render_piece, piece, width, self.app.console, self.rich_style)
        self.pieces.append(piece)
        if width and width == self._width:
            self._strips += self._joined(strips, width)
        else:
            self._width = 0  # the width changed meanwhile: draw everything again at the next layout
        self.refresh(layout=True)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, self._restyle)

    def _restyle(self, _theme: Any) -> None:
        """Lines drawn in the old theme's colours are drawn again (the text itself never changes)."""
        self._width = 0
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines(width)) if width else 0

    def render_line(self, y: int) -> Strip:
        lines = self._lines(self.size.width)
        return lines[y] if y < len(lines) else Strip.blank(self.size.width, self.rich_style)


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

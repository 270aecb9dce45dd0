"""Chat with an MLX model (or an OpenAI-compatible endpoint): streamed Markdown replies, live token rates.

Replies are appended with `Markdown.get_stream` (never re-rendered per token); the rate readout redraws
on its own timer. The model runs on ChatService's MLX thread, so typing, scrolling and switching panes
stay responsive while it generates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.geometry import Size
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Input, Label, Markdown, OptionList, ProgressBar, Static, TextArea
from textual.widgets.option_list import Option

from mlxtui.ui.failures import ReportsFailures
from mlxtui.services.chat import ChatService, SamplingSettings
from mlxtui.services.conversations import Conversation, ConversationStore
from mlxtui.services.errors import MlxtuiError
from mlxtui.services.events import ChatStats, LoadProgress, ModelLoaded, Notice, PromptRendered, TokenDelta
from mlxtui.services.openai_chat import OpenAIChatService, is_endpoint_url
from mlxtui.ui.widgets.rate import RateReadout
from mlxtui.ui.panes import pane_css

__all__ = ["ChatPane", "Reply", "FrozenMarkdown", "PromptScreen", "OpenConversationScreen"]

#: (field of SamplingSettings, label, kind) for the settings panel
_FIELDS: list[tuple[str, str, type]] = [
    ("temperature", "temp", float),
    ("top_p", "top_p", float),
    ("min_p", "min_p", float),
    ("top_k", "top_k", int),
    ("repetition_penalty", "rep pen", float),
    ("max_tokens", "max tok", int),
    ("seed", "seed", int),
]
PROMPT_PLACEHOLDER = "Message — Enter sends, Esc stops"
READING_PLACEHOLDER = "Reading your message… (Esc stops)"
#: how long a sent turn may wait for the first token before it is drawn anyway (drawing competes with
#: the model for the CPU, and under this delay the wait is not noticeable)
TURN_DRAW_DELAY_S = 0.25


@dataclass
class _Turn:
    """A sent message and its reply widget, put into the log together and only once."""

    message: Static
    reply: "Reply"
    drawn: bool = False
    mounted: asyncio.Event = field(default_factory=asyncio.Event)


FOLD_NOTICE = (
    "This model's chat template does not support a system role: the system prompt was put in front of "
    "your first message instead."
)


class Reply(Vertical):
    """An assistant reply, streamed by appending to a Markdown widget (`Markdown.get_stream`).

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
        self._stream: Any = None
        self._current: Markdown | None = None
        self._frozen = FrozenMarkdown(text)
        self._detached = False

    @property
    def text(self) -> str:
        """Everything written so far (flushed or not)."""
        return "".join(self._parts)

    def compose(self) -> ComposeResult:
        yield self._frozen  # a reopened reply holds all its text here; nothing will be appended

    async def write(self, fragment: str) -> None:
        """Queue text; it reaches the screen within 1/FLUSH_HZ s."""
        self._parts.append(fragment)
        self._pending.append(fragment)
        now = time.monotonic()
        if now - self._last_flush >= self._interval:
            # The event loop's CPU since the last flush is, mostly, what that flush cost to show.
            cpu = time.thread_time() + FrozenMarkdown.cpu_off_loop
            spent, self._last_cpu = cpu - self._last_cpu, cpu
            self._interval = min(1.0, max(1 / self.FLUSH_HZ, 0.5 * self._interval + 0.5 * spent / self.CPU_BUDGET))
            self._last_flush = now
            await self._flush()

    def detach(self) -> None:
        """The log is being cleared under this reply (ctrl+n, another chat): keep its text, draw nothing more."""
        self._detached = True

    @property
    def detached(self) -> bool:
        return self._detached

    async def _flush(self) -> None:
        if not self._pending or self._detached or not self.is_attached:
            return  # nothing new, or a reply no longer (or never) on screen
        # Follow the text only when the reader is already at the bottom (scrolling up stops following).
        log = self.parent
        if isinstance(log, VerticalScroll) and (log.is_vertical_scroll_end or log.max_scroll_y == 0):
            log.scroll_end(animate=False)
        fragment = "".join(self._pending)
        self._pending.clear()
        if self._current is None:
            self._current = Markdown()
            await self.mount(self._current)
            self._stream = Markdown.get_stream(self._current)
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
            await self._stream.write(fragment)
            return
        await self._freeze(candidate[:split])
        self._segment = candidate[split:]
        self._current = Markdown()
        await self.mount(self._current)
        self._stream = Markdown.get_stream(self._current)
        await self._stream.write(self._segment)

    async def _freeze(self, text: str) -> None:
        """Move `text` (the live Markdown's whole source) to the frozen lines and drop the live Markdown."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
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


class FrozenMarkdown(Widget):
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

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines(width)) if width else 0

    def render_line(self, y: int) -> Strip:
        lines = self._lines(self.size.width)
        return lines[y] if y < len(lines) else Strip.blank(self.size.width, self.rich_style)


class PromptScreen(ModalScreen[None]):
    """The exact prompt the template rendered for the last turn."""

    BINDINGS = [Binding("escape,ctrl+r", "dismiss", "Close", id="chat.prompt.close")]

    def __init__(self, text: str, title: str) -> None:
        super().__init__()
        self.text, self.title_text = text, title

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-body"):
            yield Label(self.title_text, id="prompt-title")
            yield TextArea(self.text, read_only=True, soft_wrap=True, show_line_numbers=False, id="prompt-text")
            yield Label("[dim]Esc closes[/]")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class OpenConversationScreen(ModalScreen[str | None]):
    """Pick a saved conversation; returns its id."""

    BINDINGS = [Binding("escape", "cancel", "Close", id="chat.open.close")]

    def __init__(self, conversations: list[Conversation]) -> None:
        super().__init__()
        self.conversations = conversations

    def compose(self) -> ComposeResult:
        with Vertical(id="open-body"):
            yield Label("Saved conversations (Enter opens, Esc closes)", id="open-title")
            yield OptionList(
                *[Option(f"{c.display_title}  [dim]{c.model.rstrip('/').split('/')[-1]} · {c.updated_at[:16]}[/]", id=c.id) for c in self.conversations],
                id="open-list",
            )

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        option_list.highlighted = 0
        option_list.focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChatPane(ReportsFailures, Vertical):
    """Load a model, chat with it, watch its token rates."""

    DEFAULT_CSS = pane_css(__file__)
    SCOPED_CSS = False  # the stylesheet names the pane in its own selectors

    BINDINGS = [
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+r", "show_prompt", "Prompt", id="chat.prompt"),
        Binding("ctrl+n", "new_conversation", "New chat", id="chat.new"),
        Binding("ctrl+o", "open_conversation", "Open chat", id="chat.open"),
        Binding("ctrl+s", "export", "Export .md", id="chat.export"),
        Binding("ctrl+t", "toggle_settings", "Settings", id="chat.settings"),
        Binding("ctrl+l", "focus_model", "Model", id="chat.model"),
    ]

    generating: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.local: ChatService | None = None
        self.service: ChatService | OpenAIChatService | None = None
        self.model_name = ""
        self.context_length: int | None = None
        self.conversation = Conversation()
        self.store = ConversationStore()
        self.last_prompt: PromptRendered | None = None
        self._fold_told = False
        self._context_used = 0
        self._sent_at = 0.0
        self._turn: _Turn | None = None  # the turn being answered, if any
        #: seconds from Enter to the first reply text handled by the pane (end-to-end time to first token)
        self.first_text_s: float | None = None

    # -- layout -----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-top"):
            yield Input(placeholder="MLX folder, repo id, or http://host:port (OpenAI-compatible) — Enter loads", id="chat-model", compact=True)
            yield Static("no model", id="chat-status")
        yield ProgressBar(total=100, show_eta=False, id="chat-load")
        with Horizontal(id="chat-main"):
            with VerticalScroll(id="chat-log"):
                yield Static(
                    "Load a model above (ctrl+l), then type below. Esc stops a reply, ctrl+r shows the exact prompt, "
                    "ctrl+t the sampling settings, ctrl+o reopens a saved chat.",
                    id="chat-welcome",
                )
            with VerticalScroll(id="chat-side"):
                yield RateReadout(id="chat-rate")
                yield Label("system prompt", classes="side-label")
                yield Input(placeholder="(none)", id="chat-system", compact=True)
                yield Label("sampling", classes="side-label")
                for name, label, kind in _FIELDS:
                    with Horizontal(classes="setting"):
                        yield Label(label, classes="setting-label")
                        yield Input(
                            id=f"chat-set-{name}",
                            type="integer" if kind is int else "number",
                            placeholder="random" if name == "seed" else "",
                            compact=True,
                        )
        yield Input(placeholder=PROMPT_PLACEHOLDER, id="chat-prompt", compact=True)

    def on_mount(self) -> None:
        ctx = getattr(self.app, "ctx", None)
        if ctx is not None:
            self.query_one("#chat-system", Input).value = ctx.settings.chat.system_prompt
        self._show_sampling(SamplingSettings(max_tokens=ctx.settings.chat.max_tokens if ctx else 512))
        self.query_one("#chat-load").display = False

    def on_show(self) -> None:
        # The app focuses a pane's first input (the model field); once a model is loaded the prompt matters more.
        if self.service is not None:
            self.call_after_refresh(self.query_one("#chat-prompt", Input).focus)

    def on_unmount(self) -> None:
        if self.local is not None:
            self.local.close()

    # -- the contract with the app ----------------------------------------------------------------------

    def open_model(self, path: str) -> None:
        """Load `path` (an MLX folder or repo id, or an endpoint URL)."""
        self.query_one("#chat-model", Input).value = path
        self.load_model(path)

    # -- sampling settings ------------------------------------------------------------------------------

    def _show_sampling(self, sampling: SamplingSettings) -> None:
        for name, _, _ in _FIELDS:
            value = getattr(sampling, name)
            self.query_one(f"#chat-set-{name}", Input).value = "" if value is None else str(value)

    def sampling(self) -> SamplingSettings:
        """The settings as typed in the panel; blanks keep the model's defaults."""
        base = self.local.info.sampling if (self.service is self.local and self.local and self.local.info) else SamplingSettings()
        values: dict[str, Any] = {}
        for name, label, kind in _FIELDS:
            raw = self.query_one(f"#chat-set-{name}", Input).value.strip()
            if raw:
                try:
                    values[name] = kind(float(raw)) if kind is int else float(raw)
                except ValueError:
                    raise MlxtuiError(f"The {label} setting {raw!r} is not a number.") from None
            elif name == "seed":
                values[name] = None
        return replace(base, **values).validate()  # type: ignore[arg-type]

    # -- loading ----------------------------------------------------------------------------------------

    @on(Input.Submitted, "#chat-model")
    def _model_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.load_model(event.value.strip())
        else:
            self.notify("Type an MLX folder, a repo id or an http:// endpoint.", severity="warning")

    def _status(self, text: str) -> None:
        self.query_one("#chat-status", Static).update(Text(text))

    @work(exclusive=True, group="chat-load", exit_on_error=False)
    async def load_model(self, source: str) -> None:
        """Load a model (or point at an endpoint), showing progress; errors become notifications."""
        if self.generating and self.service:
            self.service.stop()
        if is_endpoint_url(source):
            self.service = OpenAIChatService(source)
            self.model_name, self.context_length = source, None
            self.conversation.model = source
            self._status(f"endpoint {source}")
            self._add_notice(f"Chatting through the OpenAI-compatible endpoint {source}; rates are measured here.")
            self.query_one("#chat-prompt", Input).focus()
            return
        if self.local is None:
            self.local = ChatService(self.app.ctx)  # type: ignore[attr-defined]
        bar = self.query_one("#chat-load", ProgressBar)
        bar.update(progress=0)
        bar.display = True
        self._status(f"loading {source}…")
        try:
            async for event in self.local.load(source):
                match event:
                    case LoadProgress(stage=stage, fraction=fraction):
                        if fraction is not None:
                            bar.update(progress=fraction * 100)
                        self._status(stage)
                    case ModelLoaded() as info:
                        self.service = self.local
                        self.model_name, self.context_length = info.name, info.context_length
                        self.conversation.model = info.path
                        self._show_sampling(info.sampling)  # type: ignore[arg-type]
                        mode = "chat template" if info.has_chat_template else "completion mode"
                        ctx_text = f"ctx {info.context_length:,}" if info.context_length else "ctx ?"
                        self._status(f"{info.name} · {info.model_type} · {ctx_text} · {mode}")
                    case Notice(text=text):
                        self._add_notice(text)
            self.query_one("#chat-prompt", Input).focus()
        except MlxtuiError as error:
            self._status("load failed" if self.service is None else f"{self.model_name} (still loaded)")
            self.notify(str(error), title="Could not load the model", severity="error", timeout=12)
        finally:
            bar.display = False

    # -- the log ----------------------------------------------------------------------------------------

    @property
    def log_view(self) -> VerticalScroll:
        return self.query_one("#chat-log", VerticalScroll)

    def _add_notice(self, text: str) -> None:
        self.log_view.mount(Static(Text(text), classes="notice"))

    # -- sending and streaming ---------------------------------------------------------------------------

    @on(Input.Submitted, "#chat-prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.send(event.value)

    def send(self, text: str) -> bool:
        """Send a user turn; returns False (with a notice) when it cannot be sent now."""
        sent_at = time.perf_counter()
        if self.service is None:
            self.notify("Load a model first (ctrl+l).", severity="warning")
            return False
        if self.generating:
            self.notify("Still answering: Esc stops the reply.", severity="warning")
            return False
        if not text.strip():
            self.notify("The message is empty: type something to send.", severity="warning")
            return False
        try:
            sampling = self.sampling()
        except MlxtuiError as error:
            self.notify(str(error), severity="error")
            return False
        conversation = self.conversation
        conversation.messages.append({"role": "user", "content": text})
        conversation.system = self.query_one("#chat-system", Input).value
        conversation.sampling = asdict(sampling)
        # The model starts reading the prompt before anything is drawn: drawing the message and making
        # room for the reply happen while it works, not before.
        try:
            events = self.service.reply(conversation.turns(), conversation.system.strip() or None, sampling)
        except MlxtuiError as error:
            conversation.messages.pop()
            self.notify(str(error), title="Chat", severity="error", timeout=12)
            return False
        first = asyncio.ensure_future(anext(events, None))
        self._sent_at, self.first_text_s = sent_at, None
        # Until the first token the model has the CPU to itself: clearing the box is the only drawing (a
        # repaint of one line); the turn goes into the log with the first token, or after
        # TURN_DRAW_DELAY_S when reading the prompt takes longer than that.
        prompt = self.query_one("#chat-prompt", Input)
        prompt.value, prompt.placeholder = "", READING_PLACEHOLDER
        turn = self._turn = _Turn(Static(Text(text), classes="user"), Reply())
        self.set_timer(TURN_DRAW_DELAY_S, partial(self._draw_turn, turn))
        self.generating = True
        self._run_reply(conversation, events, first, turn)
        return True

    async def _draw_turn(self, turn: _Turn) -> None:
        """Put the user's message and the (empty) reply into the log, once."""
        if turn.drawn:
            await turn.mounted.wait()  # drawn by the other caller (timer or first token); wait for it to finish
            return
        turn.drawn = True
        if turn.reply.detached:
            # ctrl+n or another chat opened before the first token: this turn belongs to a log no longer shown
            turn.mounted.set()
            return
        # One mount for both: one layout pass of the log.
        mounting = self.log_view.mount(turn.message, turn.reply)
        self.query("#chat-welcome").remove()
        await mounting
        turn.mounted.set()
        self.log_view.scroll_end(animate=False)

    @work(exclusive=True, group="chat", exit_on_error=False)
    async def _run_reply(
        self,
        conversation: Conversation,
        events: AsyncIterator[object],
        first: asyncio.Future[object | None],
        turn: _Turn,
    ) -> None:
        """Stream one reply into `turn`; `events` and its first step were started by send()."""
        log = self.log_view
        reply = turn.reply
        rate = self.query_one(RateReadout)
        got_text = False
        stats: ChatStats | None = None
        # `conversation` is this reply's own: ctrl+n during the reply starts a new one.

        async def handle(event: object) -> None:
            nonlocal got_text, stats
            match event:
                case TokenDelta(text=text):
                    if not got_text:
                        got_text = True
                        self.first_text_s = time.perf_counter() - self._sent_at
                        await self._draw_turn(turn)
                        self.query_one("#chat-prompt", Input).placeholder = PROMPT_PLACEHOLDER  # read: now writing
                        # The footer shows "esc Stop" from now on; redrawn here rather than at Enter, where
                        # it would compete with the model reading the prompt.
                        self.refresh_bindings()
                    await reply.write(text)
                case ChatStats():
                    stats = event
                    rate.stats = event
                    rate.context = (self._context_used + event.generation_tokens, self.context_length)
                case PromptRendered() as rendered:
                    self.last_prompt = rendered
                    self._context_used = rendered.prompt_tokens + rendered.cached_tokens
                    if rendered.system_folded and not self._fold_told:
                        self._fold_told = True
                        await self._draw_turn(turn)
                        await log.mount(Static(Text(FOLD_NOTICE), classes="notice"), before=reply)
                case Notice(text=text):
                    await self._draw_turn(turn)
                    await log.mount(Static(Text(text), classes="notice"), before=reply)

        try:
            async with aclosing(events):
                event = await first
                while event is not None:
                    await handle(event)
                    event = await anext(events, None)
        except MlxtuiError as error:
            self.notify(str(error), title="Chat", severity="error", timeout=12)
        finally:
            if not first.done():
                first.cancel()
                await asyncio.gather(first, return_exceptions=True)
                await events.aclose()
            self.generating = False  # first: whatever happens below, the pane takes the next message
            self.query_one("#chat-prompt", Input).placeholder = PROMPT_PLACEHOLDER
            await self._draw_turn(turn)  # an error before the first token: the message still shows, with the error
            following = log.is_vertical_scroll_end or log.max_scroll_y == 0
            await reply.stop()
            if following:
                log.scroll_end(animate=False)
            self.refresh_bindings()
            if self._turn is turn:
                self._turn = None
            text = reply.text
            if got_text or stats is not None:
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if stats is not None:
                    message["stats"] = asdict(stats)
                    if conversation is self.conversation:
                        rate.end_turn(stats)
                conversation.messages.append(message)
                self._save(conversation)
            else:
                # Nothing came back (an error before the first token): the question can be asked again.
                conversation.messages.pop()
                if reply.is_attached:
                    await reply.remove()

    def _save(self, conversation: Conversation) -> None:
        try:
            self.store.save(conversation)
        except OSError as error:
            self.notify(f"The conversation was not saved: {error}", severity="error")

    # -- actions ----------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating  # otherwise Esc means what it means elsewhere
        return True

    def action_stop(self) -> None:
        """Stop the reply now; what was written so far stays."""
        if self.service is not None:
            self.service.stop()

    def action_show_prompt(self) -> None:
        if self.last_prompt is None:
            self.notify("No prompt yet: send a message first.", severity="information")
            return
        p = self.last_prompt
        title = f"Rendered prompt: {p.prompt_tokens + p.cached_tokens} tokens ({p.cached_tokens} reused from the cache)"
        if p.system_folded:
            title += " · system folded into the first turn"
        if p.completion_mode:
            title += " · completion mode"
        self.app.push_screen(PromptScreen(p.text, title))

    def action_new_conversation(self) -> None:
        if self.generating and self.service:
            self.service.stop()
        self.conversation = Conversation(model=self.conversation.model)
        self.last_prompt, self._fold_told, self._context_used = None, False, 0
        if self._turn is not None:
            self._turn.reply.detach()  # its last tokens may still arrive: they must not touch the cleared log
        self.log_view.remove_children()
        self.query_one(RateReadout).reset()
        self.query_one("#chat-prompt", Input).focus()

    def action_open_conversation(self) -> None:
        conversations = self.store.list()
        if not conversations:
            self.notify("No saved conversations yet.", severity="information")
            return

        def opened(conv_id: str | None) -> None:
            if conv_id:
                self.open_conversation(conv_id)

        self.app.push_screen(OpenConversationScreen(conversations), opened)

    def open_conversation(self, conv_id: str) -> None:
        """Show a saved conversation and continue it (with its model, when that is not the loaded one)."""
        try:
            conv = self.store.load(conv_id)
        except MlxtuiError as error:
            self.notify(str(error), severity="error")
            return
        self.action_new_conversation()
        self.conversation = conv
        self.query_one("#chat-system", Input).value = conv.system
        if conv.sampling:
            try:
                self._show_sampling(SamplingSettings(**conv.sampling))
            except TypeError:
                pass
        log = self.log_view
        history = []
        for m in conv.messages:
            if m["role"] == "user":
                log.mount(Static(Text(m["content"]), classes="user"))
            else:
                log.mount(Reply(m["content"]))
                if m.get("stats"):
                    history.append(float(m["stats"].get("generation_tps", 0.0)))
        rate = self.query_one(RateReadout)
        rate.set_history(history)
        last = next((m["stats"] for m in reversed(conv.messages) if m.get("stats")), None)
        if last:
            rate.stats = ChatStats(**{k: v for k, v in last.items() if k in ChatStats.__dataclass_fields__})
            rate.refresh_figures()
        log.scroll_end(animate=False)
        if conv.model and (self.service is None or (self.local and self.local.info and self.local.info.path != conv.model)):
            self.query_one("#chat-model", Input).value = conv.model
            self.notify(f"Reopened “{conv.display_title}”; Enter in the model field loads {conv.model}.")

    def action_export(self) -> None:
        if not self.conversation.messages:
            self.notify("Nothing to export yet.", severity="information")
            return
        try:
            self.store.save(self.conversation)
            path = self.store.export_markdown(self.conversation)
        except OSError as error:
            self.notify(f"Export failed: {error}", severity="error")
            return
        self.notify(f"Exported to {path}", title="Markdown")

    def action_toggle_settings(self) -> None:
        side = self.query_one("#chat-side")
        side.display = not side.display

    def action_focus_model(self) -> None:
        self.query_one("#chat-model", Input).focus()

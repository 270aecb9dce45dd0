"""Chat with an MLX model (or an OpenAI-compatible endpoint): streamed Markdown replies, live token rates.

Replies are appended to a `Reply` (ui/widgets/chat_reply.py; never re-rendered per token); the rate readout
redraws on its own timer. The model runs on ChatService's MLX thread, so typing, scrolling and switching
panes stay responsive while it generates. The conversation (services/conversations.py) owns the turns: a
reply is appended and saved before the pane takes the next message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import asdict
from functools import cached_property, partial
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Input, Label, ProgressBar, Static, TextArea
from textual.worker import Worker

from mlxtui.format import printable
from mlxtui.services.chat import ChatService
from mlxtui.services.chat_sampling import SamplingSettings
from mlxtui.services.conversations import Conversation, ConversationStore
from mlxtui.services.errors import CancelledByUser, MlxtuiError
from mlxtui.services.events import ChatStats, LoadProgress, ModelLoaded, Notice, PromptRendered, TokenDelta
from mlxtui.services.openai_chat import OpenAIChatService, is_endpoint_url
from mlxtui.services.workflow import folder_to_open, short_path
from mlxtui.ui.failures import ReportsFailures
from mlxtui.ui.focus import PaneFocus
from mlxtui.ui.panes import pane_css
from mlxtui.ui.panes.chat_saved import SavedConversations
from mlxtui.ui.screens.chat_open import OpenConversationScreen
from mlxtui.ui.screens.chat_prompt import PromptScreen
from mlxtui.ui.widgets.chat_log import ChatLog
from mlxtui.ui.widgets.chat_reply import ChatTurn, Reply, ReplyMarkdown
from mlxtui.ui.widgets.chat_sampling import SamplingPanel
from mlxtui.ui.widgets.message_box import PROMPT_PLACEHOLDER, QUEUED_PLACEHOLDER, READING_PLACEHOLDER, MessageBox
from mlxtui.ui.widgets.model_suggester import ModelSuggester
from mlxtui.ui.widgets.rate import RateReadout

__all__ = ["ChatPane", "Reply", "ReplyMarkdown", "PromptScreen", "OpenConversationScreen", "FOLD_NOTICE"]

#: how long a sent turn may wait for the first token before it is drawn anyway (drawing competes with
#: the model for the CPU, and under this delay the wait is not noticeable)
TURN_DRAW_DELAY_S = 0.25
SYSTEM_LABEL = "System prompt (ctrl+y) — sent before every turn"

FOLD_NOTICE = (
    "This model's chat template does not support a system role: the system prompt was put in front of "
    "your first message instead."
)


class ChatPane(SavedConversations, ReportsFailures, PaneFocus, Vertical):
    """Load a model, chat with it, watch its token rates."""

    HOME = "#chat-log"  # arriving: the conversation (arrows scroll it); / edits the message, ctrl+l the model

    DEFAULT_CSS = pane_css(__file__)
    SCOPED_CSS = False  # the stylesheet names the pane in its own selectors

    BINDINGS = [
        Binding("escape", "stop", "Stop", id="chat.stop"),
        Binding("ctrl+r", "show_prompt", "Prompt", id="chat.prompt"),
        # ctrl+n/o/s are in the welcome text and Help, not the footer: the footer's keys fit 80 columns
        Binding("ctrl+n", "new_conversation", "New chat", id="chat.new", show=False),
        Binding("ctrl+o", "open_conversation", "Open chat", id="chat.open", show=False),
        Binding("ctrl+s", "export", "Export .md", id="chat.export", show=False),
        Binding("ctrl+y", "focus_system", "System", id="chat.system"),
        Binding("ctrl+t", "toggle_settings", "Settings", id="chat.settings"),
        Binding("ctrl+l", "focus_model", "Model", id="chat.model"),
    ]

    #: from Enter until the reply is saved: no other message is taken (no repaint: it took the CPU from the prefill)
    generating: reactive[bool] = reactive(False, repaint=False)
    #: a model is loading or downloading (Esc cancels)
    loading: reactive[bool] = reactive(False, repaint=False)

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
        self._turn: ChatTurn | None = None  # the turn being answered, if any
        self._answering = False  # tokens may still come (the reply's stream is open)
        self._queued = False  # Enter was pressed while loading or finishing: send the box when ready
        self._load_worker: Worker[None] | None = None
        self._load_seq = 0  # which load is the latest: a replaced load's cleanup must not end the new one
        #: seconds from Enter to the first reply text handled by the pane (end-to-end time to first token)
        self.first_text_s: float | None = None

    # -- layout -----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-top"):
            yield Input(placeholder="MLX folder, repo id, or http://host:port (OpenAI-compatible) — Enter loads", id="chat-model", compact=True,
                        suggester=ModelSuggester(lambda: self.app.ctx))  # type: ignore[attr-defined]  # completes as you type
            yield Static("no model", id="chat-status")
        yield ProgressBar(total=100, show_eta=False, id="chat-load")
        with Horizontal(id="chat-main"):
            with ChatLog(id="chat-log"):
                yield Static(
                    "Load a model above (ctrl+l), then type below. Esc stops a reply, ctrl+r shows the exact prompt, "
                    "ctrl+y edits the system prompt, ctrl+t shows the sampling settings, ctrl+o reopens a saved chat.",
                    id="chat-welcome",
                )
            with VerticalScroll(id="chat-side"):
                yield RateReadout(id="chat-rate")
                yield SamplingPanel(id="chat-sampling")
        yield Label(SYSTEM_LABEL, id="chat-system-label")
        yield TextArea(id="chat-system", soft_wrap=True, show_line_numbers=False, compact=True, placeholder="(none)")
        yield MessageBox(placeholder=PROMPT_PLACEHOLDER, id="chat-prompt", compact=True)

    def on_mount(self) -> None:
        ctx = getattr(self.app, "ctx", None)
        if ctx is not None:
            self.system_area.text = ctx.settings.chat.system_prompt
        self._show_sampling(SamplingSettings(max_tokens=ctx.settings.chat.max_tokens if ctx else 512))
        self.query_one("#chat-load").display = False
        self.log_view.busy = lambda: self.generating  # no turn is mounted ahead while one is answered

    def on_show(self) -> None:
        if self.service is not None or self.loading:
            self.call_after_refresh(self.prompt_box.focus)
        elif not self.query_one("#chat-model", Input).value:
            self._prefill_model()

    @work(exclusive=True, group="chat-prefill", exit_on_error=False)
    async def _prefill_model(self) -> None:
        """Reached with no model: the model in work (else the newest conversion) waits in the field; ctrl+l, Enter."""
        folder = await asyncio.to_thread(folder_to_open, getattr(self.app, "work", None), self.app.ctx)  # type: ignore[attr-defined]
        if folder and not self.query_one("#chat-model", Input).value and self.service is None and not self.loading:
            self.query_one("#chat-model", Input).value = short_path(folder)

    def on_unmount(self) -> None:
        if self.local is not None:
            self.local.close()  # stops a reply or load first

    # The pane's own widgets, found once: Enter and the first token use them, and each DOM query there was
    # time between the message and the model starting, or between the first token and the screen.
    @cached_property
    def prompt_box(self) -> MessageBox:
        return self.query_one("#chat-prompt", MessageBox)

    @cached_property
    def system_area(self) -> TextArea:
        return self.query_one("#chat-system", TextArea)

    # -- the contract with the app ----------------------------------------------------------------------

    def open_model(self, path: str) -> None:
        """Load `path` (an MLX folder or repo id, or an endpoint URL); typing goes to the message box meanwhile."""
        self.query_one("#chat-model", Input).value = short_path(path)  # ~ for the home folder; loads the same
        self.load_model(path)
        self.call_after_refresh(self.prompt_box.focus)

    # -- sampling settings ------------------------------------------------------------------------------

    def _show_sampling(self, sampling: SamplingSettings) -> None:
        self.sampling_panel.show(sampling)

    def sampling(self) -> SamplingSettings:
        """The settings as typed in the panel; blanks keep the model's defaults."""
        base = self.local.info.sampling if (self.service is self.local and self.local and self.local.info) else SamplingSettings()
        return self.sampling_panel.read(base)  # type: ignore[arg-type]

    @cached_property
    def sampling_panel(self) -> SamplingPanel:
        return self.query_one(SamplingPanel)

    # -- loading ----------------------------------------------------------------------------------------

    @on(Input.Submitted, "#chat-model")
    def _model_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.load_model(event.value.strip())
            self.prompt_box.focus()
        else:
            self.notify("Type an MLX folder, a repo id or an http:// endpoint.", severity="warning")

    def _status(self, text: str) -> None:
        self.query_one("#chat-status", Static).update(Text(printable(text, newlines=False)))

    def load_model(self, source: str) -> None:
        """Load a model (or point at an endpoint), showing progress; Esc cancels; errors become notifications."""
        if self.generating and self.service:
            self.service.stop()
        self.loading = True
        self._load_seq += 1
        self._load_worker = self._load(source, self._load_seq)

    @work(exclusive=True, group="chat-load", exit_on_error=False)
    async def _load(self, source: str, seq: int) -> None:
        bar = self.query_one("#chat-load", ProgressBar)
        try:
            if is_endpoint_url(source):
                from mlxtui.services.cluster_chat import endpoint_service  # a cluster from Hosts, else plain

                self.service, where = endpoint_service(source)
                self.model_name, self.context_length = source, None
                self._switch_conversation(source, source)
                self._status(f"endpoint {source}{where}")
                self.log_view.add_notice(f"Chatting through the OpenAI-compatible endpoint {source}; rates are measured here.")
                return
            if self.local is None:
                self.local = ChatService(self.app.ctx)  # type: ignore[attr-defined]
            bar.update(progress=0)
            bar.display = True
            self._status(f"loading {source}…")
            async with aclosing(self.local.load(source)) as events:
                async for event in events:
                    match event:
                        case LoadProgress(stage=stage, fraction=fraction):
                            if fraction is not None:
                                bar.update(progress=fraction * 100)
                            self._status(stage)
                        case ModelLoaded() as info:
                            self._loaded(info)
                        case Notice(text=text):
                            self.log_view.add_notice(text)
        except MlxtuiError as error:
            self._load_failed(error)
        except asyncio.CancelledError:
            if seq == self._load_seq:  # Esc, not a newer load taking over
                self._load_failed(CancelledByUser("Loading was cancelled."))
            raise
        finally:
            if seq == self._load_seq:
                bar.display = False
                self.loading = False
                self.refresh_bindings()
        self._send_queued()

    def _loaded(self, info: ModelLoaded) -> None:
        self.service = self.local
        self.model_name, self.context_length = info.name, info.context_length
        self._switch_conversation(info.path, info.name)
        self._show_sampling(info.sampling)  # type: ignore[arg-type]
        mode = "chat template" if info.has_chat_template else "completion mode"
        ctx_text = f"ctx {info.context_length:,}" if info.context_length else "ctx ?"
        self._status(f"{info.name} · {info.model_type} · {ctx_text} · {mode}")

    def _load_failed(self, error: MlxtuiError) -> None:
        still = f"{self.model_name} (still loaded)" if self.service is not None else None
        self._status(still or ("load cancelled" if isinstance(error, CancelledByUser) else "load failed"))
        if not isinstance(error, CancelledByUser):
            self.notify(str(error), title="Could not load the model", severity="error", timeout=12)
        if self._queued:
            self._queued = False
            self.prompt_box.placeholder = PROMPT_PLACEHOLDER
            if self.service is None:
                self.notify("Your message is still in the box: load a model, then press Enter.", severity="warning")

    def worker_failed(self, worker: Worker[Any], message: str) -> None:
        """The app's failure policy reports the error; here the pane leaves its spinner and busy states."""
        self.query_one("#chat-load").display = False
        self.loading = False
        if worker.group == "chat" and self.generating:
            self.generating = self._answering = False
        self.refresh_bindings()

    def _switch_conversation(self, path: str, name: str) -> None:
        """A different model starts a new conversation (the old one is already saved and listed)."""
        conv = self.conversation
        if conv.model == path or not conv.messages:
            conv.model, conv.model_name = path, name
            if not conv.messages:
                return
        else:
            self.action_new_conversation()
            self.conversation.model, self.conversation.model_name = path, name
            self.log_view.add_notice(
                f"Now chatting with {name}: a new conversation. The previous one is saved; ctrl+o reopens it "
                f"to continue with {name}."
            )

    # -- the log ----------------------------------------------------------------------------------------

    @cached_property
    def log_view(self) -> ChatLog:
        return self.query_one("#chat-log", ChatLog)

    # -- sending and streaming ---------------------------------------------------------------------------

    @on(Input.Submitted, "#chat-prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.send(event.value)

    def _send_queued(self) -> None:
        """Send what is in the message box if Enter was pressed while the model loaded or a reply ended."""
        if not self._queued or self.loading or self.generating:
            return
        self._queued = False
        self.prompt_box.placeholder = PROMPT_PLACEHOLDER
        if self.prompt_box.value.strip():
            self.send(self.prompt_box.value)

    def send(self, text: str) -> bool:
        """Send a user turn; returns False (with a notice, the text left in the box) when it cannot go now.

        While a model loads, or a reply is being saved, Enter is remembered: the box is sent when ready.
        """
        sent_at = time.perf_counter()
        if self.loading or (self.generating and not self._answering):
            self._queued = True
            self.prompt_box.placeholder = QUEUED_PLACEHOLDER
            return False
        if self.service is None:
            self.notify("Load a model first (ctrl+l).", severity="warning")
            return False
        if self.generating:
            self.notify("Still answering: Esc stops the reply (your message stays in the box).", severity="warning")
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
        if conversation.messages and conversation.messages[-1]["role"] == "user":
            # A reopened file that ends with an unanswered message (saved by an older mlxtui): this one replaces it.
            conversation.drop_unanswered()
        conversation.add_user(text)
        conversation.system = self.system_area.text
        conversation.sampling = asdict(sampling)
        # The model starts reading the prompt before anything is drawn: drawing the message and making
        # room for the reply happen while it works, not before.
        try:
            events = self.service.reply(conversation.turns(), conversation.system.strip() or None, sampling)
        except MlxtuiError as error:
            conversation.drop_unanswered()
            self.notify(str(error), title="Chat", severity="error", timeout=12)
            return False
        first = asyncio.ensure_future(anext(events, None))
        self._sent_at, self.first_text_s = sent_at, None
        # Until the first token nothing is drawn: a screen update here (even clearing the box) took the CPU
        # and the GIL from the model reading the prompt. The message leaves the box and goes into the log
        # with the first token, or after TURN_DRAW_DELAY_S when reading the prompt takes longer than that.
        turn = self._turn = self.log_view.take(text)
        turn.in_box = self.prompt_box.value == text
        self.prompt_box.hold_blink()  # a blink is a screen update too
        self.set_timer(TURN_DRAW_DELAY_S, partial(self._draw_turn, turn))
        self.generating = self._answering = True
        self._run_reply(conversation, events, first, turn)
        return True

    async def _draw_turn(self, turn: ChatTurn) -> None:
        """Put the user's message and the (empty) reply into the log, once."""
        if turn.drawn:
            await turn.mounted.wait()  # drawn by the other caller (timer or first token); wait for it to finish
            return
        turn.drawn = True
        if turn.in_box:
            self.prompt_box.take_sent(turn.text)
        self.prompt_box.placeholder = READING_PLACEHOLDER  # until the first token (or the end of the turn)
        if turn.reply.detached:
            # ctrl+n or another chat opened before the first token: this turn belongs to a log no longer shown
            turn.mounted.set()
            return
        # One mount for both: one layout pass of the log.
        mounting = self.log_view.draw(turn)  # shown if mounted ahead, else mounted now
        if self.log_view.children and self.log_view.children[0].id == "chat-welcome":  # no DOM query
            self.log_view.children[0].remove()
        await mounting
        turn.mounted.set()
        self.log_view.scroll_end(animate=False)

    @work(group="chat", exit_on_error=False)
    async def _run_reply(
        self,
        conversation: Conversation,
        events: AsyncIterator[object],
        first: asyncio.Future[object | None],
        turn: ChatTurn,
    ) -> None:
        """Stream one reply into `turn`; `events` and its first step were started by send().

        `conversation` is this reply's own: ctrl+n or another model during the reply starts a new one, and
        the reply still ends up (complete) in the conversation it answers.
        """
        log = self.log_view
        reply = turn.reply
        rate = self.query_one(RateReadout)
        got_text = False
        stats: ChatStats | None = None

        async def handle(event: object) -> None:
            nonlocal got_text, stats
            match event:
                case TokenDelta(text=text):
                    if not got_text:
                        got_text = True
                        self.first_text_s = time.perf_counter() - self._sent_at
                        await self._draw_turn(turn)
                        self.prompt_box.placeholder = PROMPT_PLACEHOLDER  # read: now writing
                        # The footer shows "esc Stop" from now on; redrawn here rather than at Enter, where
                        # it would compete with the model reading the prompt.
                        self.refresh_bindings()
                        self.prompt_box.rest_cursor(True)
                    if not reply.flush_due():
                        await reply.write(text)  # kept for the next flush
                        return
                    # The text, and the figures with it (those of the last batch, 1/15 s old at most), in one
                    # screen update: drawing the text can take the event loop several turns (a finished piece
                    # is drawn on a worker thread), and the screen would otherwise be updated in between.
                    with self.app.batch_update():
                        if conversation is self.conversation:
                            rate.draw_along()
                        await reply.write(text)
                    self.screen.check_idle()  # the screen's update waited for the batch: it is due now
                case ChatStats():
                    stats = event
                    if conversation is self.conversation:
                        rate.stats = event
                        rate.context = (self._context_used + event.generation_tokens, self.context_length)
                case PromptRendered() as rendered:
                    self.last_prompt = rendered
                    self._context_used = rendered.prompt_tokens + rendered.cached_tokens
                    if rendered.system_folded and not self._fold_told:
                        self._fold_told = True
                        await self._draw_turn(turn)
                        if not reply.detached:
                            await log.add_notice(FOLD_NOTICE, before=reply)
                case Notice(text=text):
                    await self._draw_turn(turn)
                    if not reply.detached:
                        await log.add_notice(text, before=reply)

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
            self._answering = False  # no more tokens; Enter from now on is sent once the turn is saved
            await self._end_turn(conversation, turn, got_text, stats)

    async def _end_turn(self, conversation: Conversation, turn: ChatTurn, got_text: bool, stats: ChatStats | None) -> None:
        """Append the reply to its conversation, draw the rest of it and save, then take messages again."""
        reply = turn.reply
        # The turn is appended first, on the event loop and in order, whatever happens on screen after.
        unanswered = None
        if got_text or stats is not None:
            conversation.end_reply(reply.text, asdict(stats) if stats else None, self.model_name)
        else:
            unanswered = conversation.drop_unanswered()  # nothing came back: the question can be asked again
        try:
            await self._draw_turn(turn)  # an error before the first token: the message still shows, with the error
            await reply.stop()
            if stats is not None and conversation is self.conversation:
                self.query_one(RateReadout).end_turn(stats)
            if unanswered is not None:
                await self._take_back(turn, conversation, unanswered)
            if conversation.messages:
                await self.store.save_async(conversation)
        except asyncio.CancelledError:
            self._save_now(conversation)  # the app is quitting: the turn is written here and now
            raise
        except (OSError, MlxtuiError) as error:
            self.notify(f"The conversation was not saved: {error}", severity="error")
        finally:
            if self._turn is turn:
                self._turn = None
            self.generating = False
            if self.is_attached:
                self.prompt_box.placeholder = PROMPT_PLACEHOLDER
                self.prompt_box.rest_cursor(False)
                self.refresh_bindings()
                self._send_queued()
                self.call_after_refresh(self.log_view.prepare)  # the next turn, mounted ahead (chat_log.py)

    async def _take_back(self, turn: ChatTurn, conversation: Conversation, text: str) -> None:
        """A message that got no reply leaves the log and goes back into the box (unless you typed anew)."""
        for widget in (turn.reply, turn.message):
            if widget.is_attached:
                await widget.remove()
        if conversation is self.conversation and not self.prompt_box.value:
            self.prompt_box.value = text

    def _save_now(self, conversation: Conversation) -> None:
        if conversation.messages:
            try:
                self.store.save(conversation)
            except (OSError, MlxtuiError):
                pass  # quitting: there is no one left to tell

    # -- actions ----------------------------------------------------------------------------------------

    def takes_escape(self) -> bool:
        """Escape stops a reply or cancels a load, even from the message box (the app asks before leaving a field)."""
        return self._answering or self.loading

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.takes_escape()  # otherwise Esc means what it means elsewhere
        return True

    def action_stop(self) -> None:
        """Stop the reply now (what was written so far stays), or cancel a load or download."""
        if self.loading and self._load_worker is not None:
            self._load_worker.cancel()
            return
        if self.service is not None:
            self.service.stop()

    def action_show_prompt(self) -> None:
        if self.last_prompt is None:
            self.notify("No prompt yet: send a message first.", severity="information")
            return
        self.app.push_screen(PromptScreen.of(self.last_prompt))

    def action_new_conversation(self) -> None:
        if self._answering and self.service:
            self.service.stop()
        old = self.conversation
        self.conversation = Conversation(model=old.model, model_name=old.model_name)
        self.last_prompt, self._fold_told, self._context_used = None, False, 0
        if self._turn is not None:
            self._turn.reply.detach()  # its last tokens may still arrive: they must not touch the cleared log
        self.log_view.clear()
        self.query_one(RateReadout).reset()
        self.prompt_box.focus()

    def action_toggle_settings(self) -> None:
        self.query_one("#chat-side").display ^= True

    def action_focus_system(self) -> None:
        self.system_area.focus()

    def edit_target(self) -> str:
        """`/` edits the message once a model is loaded (or loading), else the model field."""
        return "#chat-prompt" if (self.service is not None or self.loading) else "#chat-model"

    def action_focus_model(self) -> None:
        """ctrl+l: the model field with its text selected, so typing replaces the old path (never appends)."""
        field = self.query_one("#chat-model", Input)
        self.app.set_focus(field)
        field.select_all()

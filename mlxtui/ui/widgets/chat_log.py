"""The chat's log: the conversation's messages, replies and notices, with the next turn mounted ahead.

Mounting a turn (the user's message, and a reply with its Markdown) takes 7-20 ms of the event loop on a
slow CPU. Done at the first token, that is time the reader waits for the reply to start; done at Enter, it
competes with the model reading the prompt. So the log keeps the next turn mounted, hidden, from a moment
when nothing else happens (after a reply, a new chat, opening the pane), and the first token only shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text

from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.widget import AwaitMount, Widget

from mlxtui.format import printable
from mlxtui.ui.widgets.chat_reply import ChatTurn, Reply, user_message
from mlxtui.ui.widgets.laid_out_once import LaidOutOnce, LogText

__all__ = ["ChatLog"]


class ChatLog(LaidOutOnce, VerticalScroll):
    """A VerticalScroll of `.user`, `.reply` and `.notice` widgets, plus one turn kept ahead at its end, hidden
    (`display` off: showing it then changes no class, so no style is computed again at the first token)."""

    def __init__(self, *children: Widget, id: str | None = None) -> None:
        super().__init__(*children, id=id)
        self._spare: ChatTurn | None = None
        self._preparing = False
        self._following = True
        #: while this says so, no turn is mounted ahead (a reply is being answered: it would compete with it)
        self.busy: Callable[[], bool] = lambda: False

    def on_mount(self) -> None:
        self.call_after_refresh(self.prepare)

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        # The log keeps the end of the conversation in view unless the reader has scrolled up: whenever a
        # layout changes what it holds, it follows to the new end once that layout is on screen. Asked for
        # by each flush instead, the scroll came before the flush's own layout whenever the screen was
        # updated while the text was drawn: the newest lines stayed below the view until the next flush.
        changed = virtual_size != self.virtual_size or size != self.size
        updated = super()._size_updated(size, virtual_size, container_size, layout)
        if changed and self._following:
            self.scroll_end(animate=False)
        return updated

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # Following stops when the view moves up short of the end (the reader scrolled) and starts again at
        # the end. Decided here, from the scrolling itself: checking at each flush whether the view was at the
        # end raced the layout (the text had grown, the scroll to it had not happened yet).
        if new >= self.max_scroll_y:
            self._following = True
        elif new < old:
            self._following = False

    @property
    def kept_ahead(self) -> ChatTurn | None:
        """The hidden turn mounted ahead, if there is one now."""
        spare = self._spare
        return spare if spare is not None and spare.reply.parent is self else None

    def add(self, *widgets: Widget, before: Widget | None = None) -> AwaitMount:
        """Mount at the end of the conversation (ahead of the hidden turn), or before `before`."""
        spare = self.kept_ahead
        return self.mount(*widgets, before=before or (spare.message if spare is not None else None))

    def add_notice(self, text: str, *, before: Widget | None = None) -> AwaitMount:
        """A notice in the conversation (a model switch, a folded system prompt), terminal-safe."""
        return self.add(LogText(Text(printable(text)), classes="notice"), before=before)

    def add_messages(self, messages: list[dict[str, Any]]) -> None:
        """Draw a saved conversation's messages (a reopened chat)."""
        self.add(*(user_message(m["content"]) if m["role"] == "user" else Reply(m["content"]) for m in messages))

    def clear(self) -> None:
        """Remove everything, then mount a new hidden turn once that is done."""
        self._spare = None
        self.remove_children()
        self.call_after_refresh(self.prepare)

    async def prepare(self) -> None:
        """Mount a hidden turn at the end, unless one is there (call when nothing else is being drawn)."""
        if self.kept_ahead is not None or self._preparing or not self.is_attached or self.busy():
            return
        self._preparing = True
        try:
            turn = ChatTurn(user_message(""), Reply(), premounted=True)
            turn.message.display = turn.reply.display = False
            await self.mount(turn.message, turn.reply)
            if turn.reply.parent is not self:
                return  # cleared meanwhile
            if self.children[-1] is turn.reply:
                self._spare = turn
            else:  # a turn sent meanwhile was mounted after it: kept, it would show above that turn
                await self.remove_children([turn.message, turn.reply])
        finally:
            self._preparing = False

    def take(self, text: str) -> ChatTurn:
        """The turn for a message being sent: the one kept ahead if there is one (still hidden), else new."""
        spare, self._spare = self.kept_ahead, None
        if spare is None:
            return ChatTurn(user_message(text), Reply(), text=text)
        spare.text = text
        return spare

    async def draw(self, turn: ChatTurn) -> None:
        """Put the turn's message and reply on screen: shown if it was mounted ahead, else mounted now."""
        if turn.premounted and turn.reply.parent is self:
            turn.message.update(Text(printable(turn.text)))
            turn.message.display = turn.reply.display = True
            return
        await self.add(turn.message, turn.reply)

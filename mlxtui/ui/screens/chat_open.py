"""Pick a saved conversation to reopen (ctrl+o in Chat)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from mlxtui.format import printable
from mlxtui.services.conversations import Conversation

__all__ = ["OpenConversationScreen"]


class OpenConversationScreen(ModalScreen[str | None]):
    """Pick a saved conversation; returns its id."""

    BINDINGS = [Binding("escape", "cancel", "Close", id="chat.open.close")]

    def __init__(self, conversations: list[Conversation]) -> None:
        super().__init__()
        self.conversations = conversations

    def compose(self) -> ComposeResult:
        with Vertical(id="open-body"):
            yield Label("Saved conversations (Enter opens, Esc closes)", id="open-title")
            yield OptionList(*[Option(self._label(c), id=c.id) for c in self.conversations], id="open-list")

    @staticmethod
    def _label(conv: Conversation) -> Text:
        """Title, model and date; the texts are the user's and the model's, so never read as markup."""
        label = Text(printable(conv.display_title, newlines=False))
        label.append(f"  {printable(conv.display_model, newlines=False)} · {conv.updated_at[:16]}", style="dim")
        return label

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        option_list.highlighted = 0
        option_list.focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)

"""The exact prompt the chat template rendered for the last turn (ctrl+r in Chat)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, TextArea

from mlxtui.format import printable
from mlxtui.services.events import PromptRendered

__all__ = ["PromptScreen"]


class PromptScreen(ModalScreen[None]):
    """The exact prompt the template rendered for the last turn."""

    BINDINGS = [Binding("escape,ctrl+r", "dismiss", "Close", id="chat.prompt.close")]

    def __init__(self, text: str, title: str) -> None:
        super().__init__()
        #: the exact prompt; shown terminal-safe (earlier replies in it may hold control characters)
        self.text, self.title_text = text, title

    @classmethod
    def of(cls, p: PromptRendered) -> PromptScreen:
        """The screen for a rendered prompt, titled with its token counts and how it was made."""
        title = f"Rendered prompt: {p.prompt_tokens + p.cached_tokens} tokens ({p.cached_tokens} reused from the cache)"
        if p.system_folded:
            title += " · system folded into the first turn"
        if p.completion_mode:
            title += " · completion mode"
        return cls(p.text, title)

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-body"):
            yield Label(self.title_text, id="prompt-title", markup=False)
            yield TextArea(printable(self.text), read_only=True, soft_wrap=True, show_line_numbers=False, id="prompt-text")
            yield Label("[dim]Esc closes[/]")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)

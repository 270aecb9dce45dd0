"""A yes/no question as a modal dialog: ConfirmDialog(title, body) -> True when confirmed."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

__all__ = ["ConfirmDialog"]


class ConfirmDialog(ModalScreen[bool]):
    """Ask before something risky or irreversible. Focus starts on the safe answer; Escape says no."""

    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; }
    ConfirmDialog > #confirm-box {
        width: 64; max-width: 90%; height: auto;
        background: $surface; border: thick $warning; padding: 1 2;
    }
    ConfirmDialog.-danger > #confirm-box { border: thick $error; }
    ConfirmDialog #confirm-title { text-style: bold; margin-bottom: 1; }
    ConfirmDialog #confirm-body { margin-bottom: 1; }
    ConfirmDialog #confirm-buttons { height: auto; align-horizontal: right; }
    ConfirmDialog #confirm-buttons Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("escape", "answer(False)", "No", id="confirm.no"),
        Binding("y", "answer(True)", "Yes", id="confirm.yes", show=False),
    ]

    def __init__(self, title: str, body: str, *, confirm: str = "Yes", cancel: str = "Cancel", danger: bool = False) -> None:
        super().__init__(classes="-danger" if danger else None)
        self.title_text = title
        self.body_text = body
        self.confirm_label = confirm
        self.cancel_label = cancel

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.title_text, id="confirm-title", markup=False)
            yield Static(self.body_text, id="confirm-body", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button(self.cancel_label, id="confirm-cancel")
                yield Button(self.confirm_label, id="confirm-ok", variant="error" if self.has_class("-danger") else "warning")

    def on_mount(self) -> None:
        self.query_one("#confirm-cancel", Button).focus()

    @on(Button.Pressed, "#confirm-ok")
    def _ok(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-cancel")
    def _cancel(self) -> None:
        self.dismiss(False)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

"""Edit the model card (placeholder until the pane lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class CardPane(Vertical):
    """Edit the model card."""

    def compose(self) -> ComposeResult:
        yield Static("Edit the model card")

    def open_folder(self, path: str, source: str | None = None) -> None:
        self.query_one(Static).update(f"Card for {path}")

"""Chat with an MLX model (placeholder until the pane lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class ChatPane(Vertical):
    """Chat with an MLX model."""

    def compose(self) -> ComposeResult:
        yield Static("Chat with an MLX model")

    def open_model(self, path: str) -> None:
        self.query_one(Static).update(f"Chat with {path}")

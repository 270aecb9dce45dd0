"""Local library of MLX models (placeholder until the pane lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class LibraryPane(Vertical):
    """Local library of MLX models."""

    def compose(self) -> ComposeResult:
        yield Static("Local library of MLX models")


"""Convert to MLX (placeholder until the pane lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class ConvertPane(Vertical):
    """Convert to MLX."""

    def compose(self) -> ComposeResult:
        yield Static("Convert to MLX")

    def prefill(self, source: str, revision: str | None = None, report: dict | None = None) -> None:
        self.query_one(Static).update(f"Convert {source}")

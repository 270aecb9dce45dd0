"""Upload to the Hub (placeholder until the pane lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class UploadPane(Vertical):
    """Upload to the Hub."""

    def compose(self) -> ComposeResult:
        yield Static("Upload to the Hub")

    def open_folder(self, path: str) -> None:
        self.query_one(Static).update(f"Upload {path}")

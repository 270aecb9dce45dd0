"""Search the Hub (placeholder until the pane lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class SearchPane(Vertical):
    """Search the Hub."""

    def compose(self) -> ComposeResult:
        yield Static("Search the Hub")


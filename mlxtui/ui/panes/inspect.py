"""Inspect a model's config.json before downloading (placeholder until the pane lands)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static


class InspectPane(Vertical):
    """Inspect a model's config.json before downloading."""

    def compose(self) -> ComposeResult:
        yield Static("Inspect a model's config.json before downloading")

    def show_model(self, repo_id: str, revision: str | None = None) -> None:
        self.query_one(Static).update(f"Inspect {repo_id}")

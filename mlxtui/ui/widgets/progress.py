"""Progress rows for conversion jobs: a stage name, a bar and a detail line (bytes, rate, ETA, layer...)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

__all__ = ["ProgressRow", "human_duration"]


def human_duration(seconds: float | None) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class ProgressRow(Horizontal):
    """One line: `label`, a bar, and a detail text. Hidden until `set(done, total, detail)` first updates it."""

    DEFAULT_CSS = """
    ProgressRow { height: 1; }
    ProgressRow > .progress-label { width: 10; color: $text-muted; }
    ProgressRow > ProgressBar { width: 32; }
    ProgressRow > ProgressBar > Bar { width: 24; }
    ProgressRow > .progress-detail { width: 1fr; color: $text-muted; }
    ProgressRow.-done > .progress-label { color: $success; }
    ProgressRow.-active > .progress-label { color: $accent; text-style: bold; }
    """

    def __init__(self, label: str, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.label = label

    def on_mount(self) -> None:
        self.display = False  # shown by the first set()

    def compose(self) -> ComposeResult:
        yield Static(self.label, classes="progress-label")
        yield ProgressBar(total=100, show_eta=False, show_percentage=True)
        yield Static("", classes="progress-detail")

    def set(self, done: float, total: float | None, detail: str = "") -> None:
        """Move the bar (total None: indeterminate) and replace the detail text."""
        self.display = True
        bar = self.query_one(ProgressBar)
        bar.update(total=total if total else None, progress=done)
        self.query_one(".progress-detail", Static).update(detail)
        finished = bool(total) and done >= (total or 0)
        self.set_class(finished, "-done")
        self.set_class(not finished, "-active")

    def reset(self) -> None:
        """Back to empty and idle."""
        bar = self.query_one(ProgressBar)
        bar.update(total=100, progress=0)
        self.query_one(".progress-detail", Static).update("")
        self.remove_class("-done", "-active")
        self.display = False

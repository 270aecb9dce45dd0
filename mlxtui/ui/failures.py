"""The one failure policy for workers: a worker that dies is reported by the app, loudly, never silently.

Textual delivers `Worker.StateChanged` only to the widget that started the worker, so every pane mixes in
`ReportsFailures`, which hands a failed worker to `MlxtuiApp.worker_failed`: one notification with a message a
person can act on, the traceback in the log file, and the pane's own `worker_failed(worker, message)` (when it
has one) to take down its spinner or "Reading…" line.
"""

from __future__ import annotations

from textual.worker import Worker, WorkerState

__all__ = ["ReportsFailures"]


class ReportsFailures:
    """Mixin for panes (and any widget that starts workers)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            report = getattr(self.app, "worker_failed", None)  # type: ignore[attr-defined]
            if report is not None:
                report(event.worker, self)

"""Byte progress of an upload, taken from huggingface_hub's own progress hooks.

huggingface_hub has no upload callback. Its plain-LFS path reads the module attribute
`huggingface_hub.utils.tqdm.tqdm`; its Xet path creates a `XetUploadProgressReporter`. Both are private, so
`progress_hook` replaces them only when the installed huggingface_hub is the major version this code is written
for (`hubclient.installed_major() == HF_HUB_MAJOR`); with any other version the upload runs without byte
progress (the stages are still reported). The replacement is process-wide, hence `UPLOAD_LOCK`.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Iterator

from mlxtui.services.errors import CancelledByUser
from mlxtui.services.events import UploadProgress
from mlxtui.services.hubclient import HF_HUB_MAJOR, installed_major

__all__ = ["UPLOAD_LOCK", "ProgressSink", "progress_hook", "hooks_supported", "NOTHING_PUBLISHED"]

#: huggingface_hub's progress hooks are process-wide: one upload at a time
UPLOAD_LOCK = threading.Lock()
NOTHING_PUBLISHED = "Upload cancelled; nothing was published."


def hooks_supported() -> bool:
    """Whether huggingface_hub's private progress hooks are the ones this module knows."""
    return installed_major() == HF_HUB_MAJOR


class ProgressSink:
    """Counts bytes the LFS path reads from files (huggingface_hub has no upload callback; see hub-protocol.md)."""

    def __init__(self, emit: Callable[[Any], None], files_total: int, bytes_total: int, cancel: threading.Event) -> None:
        self.emit = emit
        self.files_total = files_total
        self.bytes_total = bytes_total
        self.cancel = cancel
        self.files_done = 0
        self.bytes_done = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        if self.cancel.is_set():
            raise CancelledByUser(NOTHING_PUBLISHED, hint="Run it again to resume.")
        with self._lock:
            self.bytes_done += n
            now = time.monotonic()
            due = now - self._last >= 0.2
            if due:
                self._last = now
        if due:
            self.report()

    def file_done(self, size: int = 0) -> None:
        with self._lock:
            self.files_done += 1
            self.bytes_done += size
        self.report()

    def report(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.emit(
            UploadProgress(
                self.files_done, self.files_total, min(self.bytes_done, self.bytes_total), self.bytes_total,
                self.bytes_done / elapsed,
            )
        )


class _Bar:
    """Stands in for huggingface_hub.utils.tqdm.tqdm while an upload runs; feeds the active sink."""

    sink: ProgressSink | None = None

    def __init__(self, *args: Any, total: float | None = None, **kwargs: Any) -> None:
        self.total = total or 0
        self.n = 0
        self._closed = False

    def update(self, n: float | None = 1) -> None:
        n = int(n or 0)
        self.n += n
        if self.sink is not None:
            self.sink.add(n)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.sink is not None and self.total and self.n >= self.total:
                self.sink.file_done()

    def __enter__(self) -> "_Bar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Callable[..., None]:  # refresh, set_description, ... are no-ops
        return lambda *a, **k: None


class _XetReporter:
    """Stands in for huggingface_hub's XetUploadProgressReporter (the real Hub's Xet path): same two calls,
    reports go to the active sink instead of terminal bars. Never raises: progress must not break an upload."""

    sink: ProgressSink | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._done_bytes = 0
        self._finished: set[str] = set()

    def update_progress(self, group_report: Any, item_reports: Any = None) -> None:
        sink = self.sink
        if sink is None:
            return
        try:
            completed = int(getattr(group_report, "total_bytes_completed", 0) or 0)
            increment = max(0, completed - self._done_bytes)
            self._done_bytes = max(self._done_bytes, completed)
            items = item_reports.values() if isinstance(item_reports, dict) else (item_reports or [])
            for item in items:
                name = getattr(item, "item_name", None)
                if name and name not in self._finished and item.bytes_completed == item.total_bytes:
                    self._finished.add(name)
                    sink.file_done()
        except Exception:  # noqa: BLE001 - a report we don't understand only costs the readout
            return
        if increment:
            sink.add(increment)

    def reset_for_next_commit(self) -> None:
        self._done_bytes = 0

    def close(self) -> None:
        return None


@contextmanager
def progress_hook(sink: ProgressSink) -> Iterator[bool]:
    """Point huggingface_hub's upload progress at `sink` for the duration of one upload; yields whether it could.

    Plain LFS reads the module attribute huggingface_hub.utils.tqdm.tqdm (tqdm_stream_file); Xet creates a
    XetUploadProgressReporter (looked up at each call, and only while progress bars are enabled). Both are
    private: with a huggingface_hub of another major version nothing is replaced and no bytes are reported.
    Call it with UPLOAD_LOCK held.
    """
    if not hooks_supported():
        yield False
        return
    import huggingface_hub.constants as constants
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    module = importlib.import_module("huggingface_hub.utils.tqdm")  # the module, not the class it exports
    original = module.tqdm
    bar = type("_SinkBar", (_Bar,), {"sink": sink})
    was_disabled = are_progress_bars_disabled()
    module.tqdm = bar  # type: ignore[attr-defined]
    xet_module = None
    xet_original = None
    if not constants.HF_HUB_DISABLE_XET:
        try:
            import huggingface_hub.utils._xet_progress_reporting as xet_module  # type: ignore[no-redef]

            xet_original = xet_module.XetUploadProgressReporter
            xet_module.XetUploadProgressReporter = type("_SinkXet", (_XetReporter,), {"sink": sink})  # type: ignore[attr-defined]
        except (ImportError, AttributeError):
            xet_module = None
    if xet_module is None:
        disable_progress_bars()  # the LFS path's other bars would write to the terminal under the TUI
    try:
        yield True
    finally:
        module.tqdm = original  # type: ignore[attr-defined]
        if xet_module is not None:
            xet_module.XetUploadProgressReporter = xet_original  # type: ignore[attr-defined]
        elif not was_disabled:
            enable_progress_bars()


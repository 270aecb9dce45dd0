"""The request log: what reached each origin, so tests can assert "served from cache" or "resumed with Range"."""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

__all__ = ["RequestRecord", "RequestLog", "MAX_ENTRIES"]

#: entries kept per list: a server left running for weeks must not grow without bound
MAX_ENTRIES = 100_000


class RequestRecord(NamedTuple):
    """One request that reached the API origin."""

    method: str
    path: str
    query: str



class RequestLog:
    """Every API request, every CDN request, and every ranged file request (repo file URL path, Range header)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.api: list[RequestRecord] = []
        self.cdn: list[RequestRecord] = []
        self.ranges: list[tuple[str, str]] = []
        self.max_entries = max_entries
        #: every entry ever added (the lists are bounded; this is not): "has anything happened since?"
        self.total = 0
        self._lock = threading.Lock()

    def add(self, entries: list[Any], item: Any) -> None:
        """Append to one of the lists, dropping the oldest entries past max_entries (the lists stay the same objects)."""
        with self._lock:
            self.total += 1
            entries.append(item)
            if len(entries) > self.max_entries:
                del entries[: len(entries) - self.max_entries]

    def clear(self) -> None:
        self.api.clear()
        self.cdn.clear()
        self.ranges.clear()

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        """How many API requests matched."""
        return sum(1 for r in list(self.api) if (method is None or r.method == method) and r.path.startswith(path_prefix))

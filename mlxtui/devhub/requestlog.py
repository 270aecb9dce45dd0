"""The request log: what reached each origin, so tests can assert "served from cache" or "resumed with Range"."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RequestRecord", "RequestLog"]


class RequestRecord(NamedTuple):
    """One request that reached the API origin."""

    method: str
    path: str
    query: str



class RequestLog:
    """Every API request, every CDN request, and every ranged file request (repo file URL path, Range header)."""

    def __init__(self) -> None:
        self.api: list[RequestRecord] = []
        self.cdn: list[RequestRecord] = []
        self.ranges: list[tuple[str, str]] = []

    def clear(self) -> None:
        self.api.clear()
        self.cdn.clear()
        self.ranges.clear()

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        """How many API requests matched."""
        return sum(1 for r in list(self.api) if (method is None or r.method == method) and r.path.startswith(path_prefix))

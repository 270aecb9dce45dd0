"""Faults injected by tests: rate limits, dropped transfers, slow or failing answers, failed commits."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["Fault", "Faults", "FAULT_KINDS"]

FAULT_KINDS = ("rate_limit", "drop_download", "slow", "fail_commit", "drop_upload", "error")


@dataclass
class Fault:
    """One injected fault; `remaining` counts down on each request it hits."""

    kind: str  # "rate_limit" | "drop_download" | "slow" | "fail_commit" | "drop_upload" | "error"
    remaining: int = 1
    method: str | None = None
    path_prefix: str | None = None
    retry_after: int = 0
    delay: float = 0.0
    status: int = 500
    message: str = "Injected failure"

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path_prefix or path.startswith(self.path_prefix)


class Faults:
    """Faults injected on demand by tests: each fires for the next N matching requests, then disappears."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def rate_limit(self, n: int = 1, *, path_prefix: str | None = None, method: str | None = None,
                   retry_after: int = 0) -> Fault:
        """Answer 429 with `Retry-After: retry_after` to the next `n` matching requests."""
        return self.add(Fault("rate_limit", n, method, path_prefix, retry_after=retry_after))

    def drop_download(self, n: int = 1, *, path_prefix: str | None = None) -> Fault:
        """Send half the body of the next `n` file GETs (resolve or CDN; prefix matches the repo file URL), then close."""
        return self.add(Fault("drop_download", n, "GET", path_prefix))

    def slow(self, delay: float, n: int = 1, *, path_prefix: str | None = None, method: str | None = None) -> Fault:
        """Wait `delay` seconds before answering the next `n` matching requests."""
        return self.add(Fault("slow", n, method, path_prefix, delay=delay))

    def error(self, status: int = 500, n: int = 1, *, path_prefix: str | None = None, method: str | None = None,
              message: str = "Injected failure") -> Fault:
        """Answer `status` (with X-Error-Code: Injected) to the next `n` matching requests."""
        return self.add(Fault("error", n, method, path_prefix, status=status, message=message))

    def fail_commit(self, n: int = 1, *, status: int = 500, message: str = "Injected commit failure") -> Fault:
        """Make the next `n` commits fail after validation, just before they would be published."""
        return self.add(Fault("fail_commit", n, "POST", None, status=status, message=message))

    def drop_upload(self, n: int = 1) -> Fault:
        """Read half of the next `n` LFS uploads (PUT), then close the connection without answering."""
        return self.add(Fault("drop_upload", n, "PUT", None))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.remaining > 0]

    def take(self, kind: str, method: str, path: str) -> Fault | None:
        """Consume one hit of the first matching fault of `kind`."""
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

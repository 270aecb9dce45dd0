"""The frozen dataclasses services yield: the contract between services and the UI.

Each service owns a section below. Events are nouns; they carry facts, never widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Notice"]


@dataclass(frozen=True)
class Notice:
    """Something a person should read, e.g. "rate limited, retrying in 3 s"."""

    text: str
    severity: str = "information"  # "information" | "warning" | "error"

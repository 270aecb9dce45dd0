"""Numbers for people: sizes and counts as the Hub shows them, the same in services, panes and subcommands."""

from __future__ import annotations

__all__ = ["human_bytes", "human_count"]


def human_bytes(n: float | None) -> str:
    """1.2 GB style sizes (decimal units, as the Hub shows them)."""
    if n is None:
        return "?"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def human_count(n: int | None, *, digits: int = 2, missing: str = "?") -> str:
    """1.84B / 557.72k style counts; tables use digits=1 and their own mark for an unknown count."""
    if n is None:
        return missing
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.{digits}f}{unit}"
    return str(n)

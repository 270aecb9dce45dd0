"""The lab's reference cache: one folder per (model, text, sequence length), pruned least recently used first.

A reference of a real model is large (next-token log-probabilities for every evaluated token: gigabytes for a
150k vocabulary), so the cache keeps the most recently used references within a byte and a count budget.
The reference in use is never removed, nor one used within the last hour (another lab may be reading it).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "mark_used", "prune"]

#: the cache keeps references within this many bytes in all ...
MAX_BYTES = 8 << 30
#: ... and at most this many of them
MAX_ENTRIES = 6
#: a reference used this recently is kept whatever the budget says
IN_USE_S = 3600.0
_META = "meta.json"
#: touched on each use (meta.json itself is written once and never again)
_USED = ".last-used"


def mark_used(entry: Path) -> None:
    """Record that `entry` was just used (when it exists: a reference not computed yet has nothing to mark)."""
    if not (entry / _META).is_file():
        return
    try:
        (entry / _USED).touch()
    except OSError:
        pass


def _size(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            pass
    return total


def _last_use(folder: Path) -> float:
    for path in (folder / _USED, folder / _META, folder):
        try:
            return path.stat().st_mtime
        except OSError:
            continue
    return 0.0


def prune(root: Path, keep: Path, *, max_bytes: int = MAX_BYTES, max_entries: int = MAX_ENTRIES,
          now: float | None = None) -> list[Path]:
    """Remove the least recently used references of `root` beyond the budget, never `keep` or one in use.
    Returns the removed folders."""
    now = time.time() if now is None else now
    try:
        folders = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.resolve() != keep.resolve()]
    except OSError:
        return []
    total, count = _size(keep), 1
    removed: list[Path] = []
    for folder in sorted(folders, key=_last_use, reverse=True):  # newest use first: they stay
        size = _size(folder)
        in_use = now - _last_use(folder) < IN_USE_S
        if in_use or (count < max_entries and total + size <= max_bytes):
            total, count = total + size, count + 1
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed

"""The lab's reference cache is pruned least recently used first, within its byte and count budgets."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlxtui.services import lab_cache

DAY = 86_400.0
NOW = time.time()


def _entry(root: Path, name: str, size: int, used_days_ago: float) -> Path:
    folder = root / "cache" / name
    folder.mkdir(parents=True)
    (folder / "logprobs.npy").write_bytes(b"\0" * size)
    (folder / "meta.json").write_text("{}")
    when = NOW - used_days_ago * DAY
    os.utime(folder / "meta.json", (when, when))
    return folder


def test_the_oldest_references_go_first_and_the_one_in_use_stays(tmp_path: Path) -> None:
    keep = _entry(tmp_path, "current", 400, used_days_ago=30)  # in use now, however old its file
    newer = _entry(tmp_path, "newer", 300, used_days_ago=1)
    older = _entry(tmp_path, "older", 300, used_days_ago=5)
    oldest = _entry(tmp_path, "oldest", 300, used_days_ago=9)
    removed = lab_cache.prune(tmp_path / "cache", keep, max_bytes=1000, max_entries=10, now=NOW)
    assert removed == [older, oldest]  # 400 + 300 fits; a second 300 would pass 1000
    assert keep.is_dir() and newer.is_dir() and not older.exists() and not oldest.exists()


def test_the_count_budget_and_a_recent_use_are_honoured(tmp_path: Path) -> None:
    keep = _entry(tmp_path, "current", 10, used_days_ago=0)
    recent = _entry(tmp_path, "recent", 10, used_days_ago=0.01)  # used a quarter hour ago: maybe by another lab
    old = [_entry(tmp_path, f"old{i}", 10, used_days_ago=2 + i) for i in range(3)]
    removed = lab_cache.prune(tmp_path / "cache", keep, max_bytes=10**9, max_entries=3, now=NOW)
    assert recent.is_dir() and old[0].is_dir()
    assert removed == old[1:] and not any(p.exists() for p in old[1:])


def test_marking_a_use_keeps_a_reference_from_being_the_oldest(tmp_path: Path) -> None:
    keep = _entry(tmp_path, "current", 10, used_days_ago=0)
    a = _entry(tmp_path, "a", 10, used_days_ago=3)
    b = _entry(tmp_path, "b", 10, used_days_ago=2)
    lab_cache.mark_used(a)  # a lab just reused a's reference
    removed = lab_cache.prune(tmp_path / "cache", keep, max_bytes=10**9, max_entries=2, now=NOW + DAY)
    assert removed == [b] and a.is_dir()

"""One lab at a time: a second lab says it waits and starts when the first ends (issue 15's "one queue")."""

from __future__ import annotations

import fcntl
from contextlib import aclosing
from pathlib import Path

from mlxtui import paths
from mlxtui.services import Context
from mlxtui.services.lab import LabProgress, LabService
from tests.fixtures.trained import TRAINED_MODEL


async def test_a_second_lab_waits_for_the_running_one_then_starts(tmp_path: Path) -> None:
    service = LabService(Context(), cache_root=tmp_path / "cache")
    plan = await service.plan(str(TRAINED_MODEL), "4bit", seq_len=64, max_sequences=2, out_dir=tmp_path / "out")
    lock_path = paths.data_dir() / "lab" / "queue.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as running:  # another lab (any process) holds the queue
        fcntl.flock(running, fcntl.LOCK_EX)
        events = service.run(plan)
        async with aclosing(events):
            first = await anext(events)
            assert isinstance(first, LabProgress) and first.stage == "queued" and "one at a time" in first.message
            fcntl.flock(running, fcntl.LOCK_UN)  # the running lab ends
            after = await anext(events)
        # it started its own work (the reference), then closing it stopped everything
        assert isinstance(after, LabProgress) and after.stage == "reference"
    assert not any((tmp_path / "out").glob("*/config.json"))


async def test_a_waiting_lab_closed_while_queued_leaves_the_queue_and_nothing_behind(tmp_path: Path) -> None:
    service = LabService(Context(), cache_root=tmp_path / "cache")
    plan = await service.plan(str(TRAINED_MODEL), "4bit", seq_len=64, max_sequences=2, out_dir=tmp_path / "out")
    lock_path = paths.data_dir() / "lab" / "queue.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as running:
        fcntl.flock(running, fcntl.LOCK_EX)
        events = service.run(plan)
        async with aclosing(events):
            assert (await anext(events)).stage == "queued"
    with open(lock_path, "a") as again:  # free: the closed lab did not keep the queue
        fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

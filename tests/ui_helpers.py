"""Small helpers shared by the pilot and snapshot tests."""

from __future__ import annotations


async def settle(app) -> None:
    """Wait for the app's workers; an exclusive worker replaced by a newer one counts as done."""
    from textual.worker import WorkerCancelled

    for _ in range(3):
        try:
            await app.workers.wait_for_complete()
            return
        except WorkerCancelled:
            continue

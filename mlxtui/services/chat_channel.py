"""Events from the MLX thread to the event loop, in batches: one wake-up per batch, never one per token."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from mlxtui.services.events import ChatStats, TokenDelta

__all__ = ["Channel", "DONE"]

DONE = object()


class Channel:
    """Events from the MLX thread to the event loop: one wake-up per batch, never one call per token."""

    BATCH_HZ = 15

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[Any] = deque()
        self._wake = asyncio.Event()
        self._pending = False

    def put(self, item: Any) -> None:
        """Called on the MLX thread."""
        self._items.append(item)
        if not self._pending:
            self._pending = True
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:
                pass  # the loop is gone; nobody is listening

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Each batch merges consecutive text and keeps only the newest stats.

        Text comes at most BATCH_HZ times a second: the event loop wakes once per batch instead of once
        per token, which leaves the GIL and the CPU to the model. Until the first text has gone out there
        is no wait at all, so the prompt notice before prefill never holds back the first token.
        """
        last = 0.0
        while True:
            gap = 1 / self.BATCH_HZ - (time.monotonic() - last)
            if gap > 0:
                await asyncio.sleep(gap)
            await self._wake.wait()
            self._wake.clear()
            self._pending = False
            batch: list[Any] = []
            while self._items:
                item = self._items.popleft()
                if isinstance(item, TokenDelta) and batch and isinstance(batch[-1], TokenDelta):
                    batch[-1] = TokenDelta(batch[-1].text + item.text)
                elif isinstance(item, ChatStats) and batch and isinstance(batch[-1], ChatStats):
                    batch[-1] = item
                else:
                    batch.append(item)
            if any(isinstance(item, TokenDelta) for item in batch):
                last = time.monotonic()
            if batch:
                yield batch
            if batch and batch[-1] is DONE:
                return

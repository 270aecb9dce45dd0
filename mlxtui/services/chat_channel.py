"""Events from the MLX thread to the event loop, in batches: one wake-up per batch, never one per token.

The first text is handed over: the MLX thread waits (HANDOVER_WAIT_S at most) until the event loop has
handled it. Woken by the MLX thread, the event loop was queued by the OS on that thread's core, behind the
Python that builds the next token's graph, and then shared the GIL with it while it drew the first text:
about a millisecond of the time to first token. The wait costs generation nothing: the next token is
being computed on MLX's own thread meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from mlxtui.services.events import ChatStats, TokenDelta

__all__ = ["Channel", "DONE", "HANDOVER_WAIT_S"]

DONE = object()
#: the longest a thread waits for the other side to take what it handed over (the first text here, a
#: reply's job in ChatService._run)
HANDOVER_WAIT_S = 0.005


class Channel:
    """Events from the MLX thread to the event loop: one wake-up per batch, never one call per token."""

    BATCH_HZ = 15

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[Any] = deque()
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()  # the last items are in: no batching wait before they go out
        self._pending = False
        self._text_put = False
        self._loop_thread = threading.get_ident()  # made on the loop's thread; a put there never waits
        self._taken = threading.Event()  # set by the event loop each time it has handled a batch

    def put(self, item: Any) -> None:
        """Called on the MLX thread."""
        first_text = not self._text_put and isinstance(item, TokenDelta) and threading.get_ident() != self._loop_thread
        if first_text:
            self._text_put = True
            self._taken.clear()  # before the item is in: the loop may take it at once
        self._items.append(item)
        final = item is DONE or isinstance(item, BaseException) or (isinstance(item, ChatStats) and item.finish_reason)
        if not self._pending or final:
            self._pending = True
            try:
                self._loop.call_soon_threadsafe(self._last_items if final else self._wake.set)
            except RuntimeError:
                return  # the loop is gone; nobody is listening
        if first_text:
            self._taken.wait(HANDOVER_WAIT_S)  # see the module's docstring

    def _last_items(self) -> None:
        self._hurry.set()
        self._wake.set()

    def _merged(self) -> list[Any]:
        """What has come since the last batch: the text in one piece and the newest stats after it, for
        each stretch between other events (a notice, the rendered prompt, the end), which keep their place."""
        batch: list[Any] = []
        text: list[str] = []
        stats: ChatStats | None = None
        while self._items:
            item = self._items.popleft()
            if isinstance(item, TokenDelta):
                text.append(item.text)
                continue
            if isinstance(item, ChatStats):
                stats = item
                continue
            batch += _stretch(text, stats)
            text, stats = [], None
            batch.append(item)
        return batch + _stretch(text, stats)

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Batches of events (see `_merged`): text and stats merged, everything else in its place.

        Text comes at most BATCH_HZ times a second: the event loop wakes once per batch instead of once
        per token, which leaves the GIL and the CPU to the model. Until the first text has gone out there
        is no wait at all, so the prompt notice before prefill never holds back the first token; nor once
        the reply has ended (its last stats, an error or the end), so its last words never wait either.
        """
        last = 0.0
        while True:
            gap = 1 / self.BATCH_HZ - (time.monotonic() - last)
            if gap > 0 and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), gap)
            await self._wake.wait()
            self._wake.clear()
            self._pending = False
            batch = self._merged()
            if any(isinstance(item, TokenDelta) for item in batch):
                last = time.monotonic()
            if batch:
                try:
                    yield batch
                finally:
                    self._taken.set()  # handled (or the reader is gone)
            if batch and batch[-1] is DONE:
                return


def _stretch(text: list[str], stats: ChatStats | None) -> list[Any]:
    return ([TokenDelta("".join(text))] if text else []) + ([stats] if stats is not None else [])

"""The MLX thread -> event loop channel: batches while a reply streams, no wait for its last words."""

from __future__ import annotations

import asyncio
import threading

from mlxtui.services.chat_channel import DONE, Channel
from mlxtui.services.events import ChatStats, TokenDelta


class SlowChannel(Channel):
    BATCH_HZ = 0.001  # a 1,000 s batching gap: any wait for it shows up as a timeout below


async def test_text_is_batched_and_the_last_batch_never_waits_for_the_gap() -> None:
    channel = SlowChannel(asyncio.get_running_loop())
    batches = channel.batches()
    channel.put(TokenDelta("Hello"))
    assert await asyncio.wait_for(anext(batches), 30) == [TokenDelta("Hello")]  # the first text: no wait

    def model_thread() -> None:  # the rest of the reply, as the MLX thread writes it
        for word in (" there", ",", " friend"):
            channel.put(TokenDelta(word))
            channel.put(ChatStats(generation_tokens=2))
        channel.put(ChatStats(generation_tokens=4, finish_reason="stop"))
        channel.put(DONE)

    thread = threading.Thread(target=model_thread)
    thread.start()
    thread.join()
    # Within the 1,000 s gap: only the reply's end (its final stats) lets this batch out now.
    rest: list[object] = []
    while not rest or rest[-1] is not DONE:
        rest += await asyncio.wait_for(anext(batches), 30)
    assert rest == [TokenDelta(" there, friend"), ChatStats(generation_tokens=4, finish_reason="stop"), DONE]


async def test_midstream_text_waits_for_the_gap() -> None:
    channel = SlowChannel(asyncio.get_running_loop())
    batches = channel.batches()
    channel.put(TokenDelta("a"))
    await anext(batches)
    channel.put(TokenDelta("b"))
    channel.put(ChatStats(generation_tokens=2))  # not the end: batched with what follows
    pending = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0.05)
    assert not pending.done()
    channel.put(ChatStats(generation_tokens=2, finish_reason="length"))
    assert await asyncio.wait_for(pending, 30) == [TokenDelta("b"), ChatStats(generation_tokens=2, finish_reason="length")]


async def test_other_events_keep_their_place_between_merged_text() -> None:
    from mlxtui.services.events import Notice

    channel = Channel(asyncio.get_running_loop())
    batches = channel.batches()
    notice = Notice("The conversation is getting long.", "warning")
    for item in (TokenDelta("a"), ChatStats(generation_tokens=1), TokenDelta("b"), notice, TokenDelta("c"),
                 ChatStats(generation_tokens=3), TokenDelta("d"), DONE):
        channel.put(item)
    got: list[object] = []
    while not got or got[-1] is not DONE:
        got += await asyncio.wait_for(anext(batches), 30)
    assert got == [TokenDelta("ab"), ChatStats(generation_tokens=1), notice, TokenDelta("cd"),
                   ChatStats(generation_tokens=3), DONE]


async def test_the_first_text_is_handed_over_until_the_loop_has_handled_it(monkeypatch) -> None:
    """The MLX thread waits after its first text until the event loop has handled that batch (then the loop
    runs on the core the thread leaves, instead of queued behind it); every later put returns at once."""
    from mlxtui.services import chat_channel

    monkeypatch.setattr(chat_channel, "HANDOVER_WAIT_S", 30)  # only the hand-over can end the wait in time
    channel = Channel(asyncio.get_running_loop())
    batches = channel.batches()
    first_put, second_put = threading.Event(), threading.Event()

    def model_thread() -> None:
        channel.put(TokenDelta("Hi"))
        first_put.set()
        channel.put(TokenDelta(" there"))
        second_put.set()
        channel.put(ChatStats(generation_tokens=2, finish_reason="stop"))
        channel.put(DONE)

    thread = threading.Thread(target=model_thread)
    thread.start()
    assert await asyncio.wait_for(anext(batches), 30) == [TokenDelta("Hi")]
    assert not first_put.is_set()  # still waiting: this batch is being handled
    rest: list[object] = []
    while not rest or rest[-1] is not DONE:  # asking for more means the first batch was handled
        rest += await asyncio.wait_for(anext(batches), 30)
    await asyncio.to_thread(thread.join, 30)
    assert first_put.is_set() and second_put.is_set()
    assert rest == [TokenDelta(" there"), ChatStats(generation_tokens=2, finish_reason="stop"), DONE]


async def test_the_hand_over_is_bounded_when_nobody_reads() -> None:
    import time

    from mlxtui.services.chat_channel import HANDOVER_WAIT_S

    channel = Channel(asyncio.get_running_loop())
    took: list[float] = []

    def model_thread() -> None:
        start = time.perf_counter()
        channel.put(TokenDelta("Hi"))  # nobody takes it
        took.append(time.perf_counter() - start)

    await asyncio.to_thread(model_thread)
    assert HANDOVER_WAIT_S * 0.9 <= took[0] < 5.0  # it waited, and not for long

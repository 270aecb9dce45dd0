"""While a reply generates, the GIL switch interval is short and the objects older than the reply are frozen
for the collector (services/gen_mode.py); the process is restored when the last reply ends, however it ends."""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref
from contextlib import aclosing

import pytest

from mlxtui.services import gen_mode
from mlxtui.services.chat import SamplingSettings
from mlxtui.services.errors import ChatError
from tests.services.test_chat import Gate, loaded


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_begin_and_end_nest_and_restore_the_process():
    interval, frozen = sys.getswitchinterval(), gc.get_freeze_count()
    gen_mode.begin()
    gen_mode.begin()  # the next reply starts while the previous one's thread is still finishing
    assert gen_mode.active() and sys.getswitchinterval() == pytest.approx(gen_mode.GENERATION_SWITCH_INTERVAL)
    assert gc.get_freeze_count() > frozen
    gen_mode.end()
    assert gen_mode.active() and gc.get_freeze_count() > frozen  # one reply still generates
    gen_mode.end()
    gen_mode.end()  # one end too many changes nothing
    assert not gen_mode.active() and sys.getswitchinterval() == interval and gc.get_freeze_count() == frozen


async def test_during_a_reply_old_objects_are_frozen_new_garbage_is_still_collected(chat_models):
    gate = Gate(free=3)
    service, _ = await loaded(chat_models["plain"], logits_processors=[gate])
    old = weakref.ref(Node())  # garbage from before the reply, in a cycle
    interval = sys.getswitchinterval()
    events = service.reply([{"role": "user", "content": "Once"}], None, SamplingSettings(max_tokens=50))
    async with aclosing(events):
        while not gate.holding.is_set():
            await asyncio.sleep(0.01)
        assert gen_mode.active() and sys.getswitchinterval() == pytest.approx(gen_mode.GENERATION_SWITCH_INTERVAL)
        new = weakref.ref(Node())
        gc.collect()
        assert new() is None, "garbage made during the reply is collected"
        assert old() is not None, "what existed when the reply started is left alone (frozen)"
        gate.open()
        async for _ in events:
            pass
    await asyncio.to_thread(service.close)  # the MLX thread has ended its job: the process is restored
    assert not gen_mode.active() and sys.getswitchinterval() == interval and gc.get_freeze_count() == 0
    gc.collect()
    assert old() is None, "unfrozen after the reply, the old garbage is collected too"


async def test_a_reply_that_cannot_start_leaves_the_process_as_it_was(chat_models):
    service, _ = await loaded(chat_models["plain"])
    service.close()
    with pytest.raises(ChatError):
        async for _ in service.reply([{"role": "user", "content": "Hi"}], None, SamplingSettings(max_tokens=4)):
            pass
    assert not gen_mode.active() and gc.get_freeze_count() == 0

"""Stop a long-running command in order on SIGINT, SIGTERM or SIGHUP, not only on Ctrl-C.

asyncio.run turns Ctrl-C into a cancelled main task, but SIGTERM (a service manager, `kill`) and SIGHUP (the
terminal or SSH session gone) would kill the process outright, skipping the `finally` blocks that stop what
it started. `run_stoppable` treats all three alike: the task is cancelled, its clean-up runs, and the exit
code says which signal it was (130 for Ctrl-C, else 128 + N, as a shell reports a process killed by N).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Stop", "run_stoppable", "run_to_end", "STOP_SIGNALS"]

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class Stop:
    """Which signal stopped the command (None while none has)."""

    signum: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        return 128 + self.signum if self.signum is not None else 0


async def run_stoppable(main: Callable[[Stop], Awaitable[int]]) -> int:
    """Run `main(stop)` in this task; a stop signal cancels it (its `finally` blocks run) and makes the exit
    code 128 + N. A second signal acts as if no handler were set (Ctrl-C raises KeyboardInterrupt, SIGTERM
    kills): whatever runs outside this process, like the cluster supervisor, must clean up after that too."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stop = Stop()
    installed: list[int] = []

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)  # SIGINT goes back to KeyboardInterrupt, the others to SIG_DFL
        installed.clear()

    def on_signal(signum: int) -> None:
        stop.signum = signum
        remove()
        task.cancel()

    for sig in STOP_SIGNALS:
        # An inherited SIG_IGN for SIGINT is the shell's way of keeping Ctrl-C away from background jobs
        # (`cmd &` in a script): respect it, as CPython and asyncio.run do.
        if sig == signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
            continue
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread, or no such signal here: the default behaviour stays
        installed.append(sig)
    try:
        code = await main(stop)
        return stop.exit_code if stop.signum is not None else code  # the signal came during the clean-up
    except asyncio.CancelledError:
        if stop.signum is None:
            raise
        task.uncancel()
        return stop.exit_code
    finally:
        remove()


async def run_to_end(clean_up: Awaitable[T]) -> T:
    """Await a clean-up to its end even if this task is cancelled meanwhile, e.g. by a stop signal landing
    while a `finally` already stops the cluster (an SSH session that drops closes stdin, which ends chat, and
    sends SIGHUP). `asyncio.shield` alone would leave the clean-up to be cancelled when asyncio.run ends."""
    inner = asyncio.ensure_future(clean_up)
    task = asyncio.current_task()
    while True:
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            if inner.cancelled() or task is None:
                raise
            task.uncancel()  # absorbed: run_stoppable still reports the signal in the exit code

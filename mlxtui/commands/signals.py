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

__all__ = ["Stop", "run_stoppable", "STOP_SIGNALS"]

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
    """Run `main(stop)` in this task; a stop signal cancels it (its `finally` blocks run) and its exit code is
    returned. A second signal acts as if no handler were set (Ctrl-C raises KeyboardInterrupt, SIGTERM kills)."""
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
        return await main(stop)
    except asyncio.CancelledError:
        if stop.signum is None:
            raise
        task.uncancel()
        return stop.exit_code
    finally:
        remove()

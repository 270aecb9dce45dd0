"""How the process runs while a reply is generated: the MLX thread gets the GIL back quickly and never
waits out a full garbage collection.

Generation runs on its own thread, but it needs the GIL briefly between every two evaluations. Two things
made it wait behind the event loop:

- the GIL switch interval: another thread holding the GIL hands it over only after this long (Python's
  default 5 ms). While generating it is 0.2 ms. bench/chat.py, paired ratios of generation tok/s: 0.87-0.88
  at 1 ms, 0.95-0.98 at 0.2 ms, 0.95 at 0.1 ms.
- the collector: a full collection walks every object of the process (a loaded model and a Textual app
  are hundreds of thousands) holding the GIL, 100-160 ms measured here, and the UI's allocations trigger one
  every few replies. While generating, the objects that existed when the reply started are frozen
  (`gc.freeze`): collections still run and free what the reply itself leaves behind, but a full one
  walks only that. They are unfrozen when the last reply ends, so nothing older is kept for good.

`begin()` and `end()` nest (a reply may start while the previous one's thread is still finishing) and may be
called from any thread.
"""

from __future__ import annotations

import gc
import sys
import threading

__all__ = ["GENERATION_SWITCH_INTERVAL", "begin", "end", "active"]

#: sys.setswitchinterval while a reply is generated (Python's default is 0.005)
GENERATION_SWITCH_INTERVAL = 0.0002

_lock = threading.Lock()
_count = 0
_saved_interval = sys.getswitchinterval()


def begin() -> None:
    """A reply starts generating (call before its thread starts, so that its start does not wait either)."""
    global _count, _saved_interval
    with _lock:
        _count += 1
        if _count == 1:
            _saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved_interval, GENERATION_SWITCH_INTERVAL))
            gc.freeze()


def end() -> None:
    """A reply has ended (its thread is done with it); the last one restores the process as it was."""
    global _count
    with _lock:
        if _count == 0:
            return
        _count -= 1
        if _count == 0:
            sys.setswitchinterval(_saved_interval)
            gc.unfreeze()


def active() -> bool:
    """Whether a reply is generating now."""
    return _count > 0

"""`python -m mlxtui.services.cluster_launch ARGS…`: mlx.launch, without its busy loop while ranks are idle.

mlx.launch forwards its own stdin to every rank: each rank's thread waits in
`select(rank outputs, [rank stdin], [], 1.0)`. A pipe with room in it is always writable, so that select
returns at once, every time, and the threads spin: 80-90 % of a core (measured here) for as long as the
cluster waits for a question. mlxtui never sends the ranks anything through mlx.launch (their stdin is only
their lifeline, closed when mlx.launch goes), so this runs mlx.launch's own `main` with a select that waits
for output alone. Everything else is mlx.launch unchanged.
"""

from __future__ import annotations

import select
import sys
from typing import Any

__all__ = ["main", "select_without_writers"]


def select_without_writers(rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> tuple[list, list, list]:
    """`select.select` that ignores the write set: it waits for readable (or exceptional) descriptors only,
    and reports none writable, so nothing is ever written to a rank's stdin."""
    readable, _, exceptional = select.select(rlist, [], xlist, timeout)
    return readable, [], exceptional


def main() -> None:
    from mlx._distributed_utils import launch

    launch.select = select_without_writers  # launch.py imported select's function by name
    sys.argv[0] = "mlx.launch"
    launch.main()


if __name__ == "__main__":
    main()

"""DataTable helpers."""

from __future__ import annotations

from textual.widgets import DataTable

__all__ = ["measure_rows"]


def measure_rows(table: DataTable) -> None:
    """Have `table` size its auto-width columns for rows just added.

    DataTable measures new rows when its own message queue goes idle, and rows added from a worker or
    another widget's handler send it no message: without this nudge the columns can stay as wide as
    their headers until the next key press reaches the table.
    """
    table.call_later(_nothing)


def _nothing() -> None:
    pass

"""Widgets that take the size a layout gave them without asking for another layout of the screen.

Textual keeps a widget's size from a layout in a reactive that asks for a layout of the whole screen
whenever it changes (`Widget.virtual_size`, `layout=True`). So each time a streamed reply grew, the screen
was laid out twice, the second time to the same result: a second screen update 30-40 ms after the first,
6-15 ms of the event loop on a slow CPU, of which the model's thread lost about half (its next token
waited for the GIL or a core). The chat log's widgets take their size as Textual's own scrolling path
does (`layout=False`). Scrollbars appearing still ask for their layout (`show_vertical_scrollbar`).

`tests/ui/test_chat_pane.py` counts the layouts of a flush, so a Textual that renames the hook shows up.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.widgets import Static

__all__ = ["LaidOutOnce", "LogText"]


class LaidOutOnce:
    """Mixin for a Widget subclass (first base): a new size from a layout asks for no second layout."""

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        return super()._size_updated(size, virtual_size, container_size, layout=False)  # type: ignore[misc]


class LogText(LaidOutOnce, Static):
    """Plain text in the chat log: a message or a notice (styled as a Static)."""


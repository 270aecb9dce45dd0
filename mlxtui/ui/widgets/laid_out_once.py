"""Widgets that take the size a layout gave them without asking for another layout of the screen.

Textual keeps a widget's size from a layout in a reactive that asks for a layout of the whole screen
whenever it changes (`Widget.virtual_size`, `layout=True`). So each time a streamed reply grew, the screen
was laid out twice, the second time to the same result: a second screen update 30-40 ms after the first,
6-15 ms of the event loop on a slow CPU, of which the model's thread lost about half (its next token
waited for the GIL or a core). The chat log's widgets take their size as Textual's own scrolling path
does (`layout=False`). Scrollbars appearing still ask for their layout (`show_vertical_scrollbar`).

A widget not yet mounted keeps no refresh of its own either. Markdown fills a new block before mounting
it, and Textual kept that request until the block's first idle moment, after the layout that mounted it
(its parent's, asked for by the mount, which draws the block as it is then): one more layout of the whole
screen for each new paragraph, list or code block of a streamed reply.

`tests/ui/test_chat_pane.py` counts the layouts of a flush, so a Textual that renames the hook shows up.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from textual.geometry import Region, Size
from textual.widget import Widget
from textual.widgets import Markdown, Static

__all__ = ["LaidOutOnce", "LogText", "LiveMarkdown"]


class LaidOutOnce:
    """Mixin for a Widget subclass (first base): a new size from a layout asks for no second layout, and
    a refresh before the widget is mounted is left to the layout that mounts it."""

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        return super()._size_updated(size, virtual_size, container_size, layout=False)  # type: ignore[misc]

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False) -> Any:
        if not recompose and not self._is_mounted:  # type: ignore[attr-defined]
            return self
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)  # type: ignore[misc]


@cache
def laid_out_once(cls: type[Widget]) -> type[Widget]:
    """`cls` with LaidOutOnce, under the same name (stylesheets select Markdown blocks by class name)."""
    return type(cls.__name__, (LaidOutOnce, cls), {"__module__": __name__})


class LogText(LaidOutOnce, Static):
    """Plain text in the chat log: a message, a notice, the first words of a reply (styled as a Static)."""


class LiveMarkdown(LaidOutOnce, Markdown):
    """The Markdown a reply streams into, its blocks laid out once per change too."""

    BLOCKS: dict[str, Any] = {name: laid_out_once(block) for name, block in Markdown.BLOCKS.items()}

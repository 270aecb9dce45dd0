"""One module per pane of the workflow, imported on demand (start-up imports only the first)."""

from __future__ import annotations

import importlib
from pathlib import Path

from textual.widget import Widget

__all__ = ["PANE_CLASSES", "load_pane_class", "pane_css"]

#: pane id -> (module under mlxtui.ui.panes, class name)
PANE_CLASSES: dict[str, tuple[str, str]] = {
    "search": ("search", "SearchPane"),
    "inspect": ("inspect", "InspectPane"),
    "convert": ("convert", "ConvertPane"),
    "chat": ("chat", "ChatPane"),
    "card": ("card", "CardPane"),
    "upload": ("upload", "UploadPane"),
    "library": ("library", "LibraryPane"),
    "lab": ("lab", "LabPane"),
    "cluster": ("cluster", "ClusterPane"),
}


def load_pane_class(pane: str) -> type[Widget]:
    module, name = PANE_CLASSES[pane]
    return getattr(importlib.import_module(f"mlxtui.ui.panes.{module}"), name)


def pane_css(module_file: str) -> str:
    """The stylesheet beside a pane's module, used as its DEFAULT_CSS.

    Parsing every pane's CSS before the first frame costs more than all the rest of start-up; as
    DEFAULT_CSS it is parsed when the pane mounts, right after the first frame.
    """
    return Path(module_file).with_suffix(".tcss").read_text(encoding="utf-8")

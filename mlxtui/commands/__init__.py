"""Scriptable subcommands: one module each, mirroring the panes."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

__all__ = ["COMMANDS", "register_all"]

#: subcommand modules under mlxtui.commands, in the order --help lists them
COMMANDS = ["search", "inspect", "convert", "jobs", "library", "chat", "card", "upload", "lab", "cluster", "devhub"]


def register_all(sub: argparse._SubParsersAction) -> None:
    """Each module defines register(sub); modules are light, heavy imports happen in run()."""
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"mlxtui.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"mlxtui.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)

"""`mlxtui library`: the models on this machine (converted folders and the Hugging Face cache)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json

from mlxtui.format import human_bytes, printable
from mlxtui.services import Context

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `library` subcommand."""
    parser = sub.add_parser(
        "library",
        help="list local models: converted folders and the Hugging Face cache",
        description="Converted folders under the models directory, every folder a conversion job wrote "
        "elsewhere (--mlx-path; shown by its path), and models in the Hugging Face cache, with size, "
        "quantization and source.",
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from mlxtui.services.library import LibraryService

    models = asyncio.run(LibraryService(ctx).list())
    if args.json:
        print(json.dumps([dataclasses.asdict(m) for m in models], indent=2))
        return 0
    if not models:
        print(f"No local models yet (converted folders go to {ctx.settings.models_dir()}).")
        return 0
    # names, labels and sources come from folders and cards written by others: shown, never interpreted
    from mlxtui.services.workflow import short_path

    rows = [(printable(m.name if m.in_models_dir else short_path(m.path), newlines=False), m) for m in models]
    width = max(len(name) for name, _ in rows)
    for name, m in rows:
        where = "folder" if m.kind == "folder" else "cache "
        print(f"{name:<{width}}  {where}  {printable(m.quantization, newlines=False):<10} "
              f"{human_bytes(m.size_bytes):>9}  {printable(m.source or '-', newlines=False)}")
    return 0

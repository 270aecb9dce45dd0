"""`mlxtui library`: the models on this machine (converted folders and the Hugging Face cache)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json

from mlxtui.format import human_bytes
from mlxtui.services import Context

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `library` subcommand."""
    parser = sub.add_parser(
        "library",
        help="list local models: converted folders and the Hugging Face cache",
        description="Converted folders under the models directory and models in the Hugging Face cache, "
        "with size, quantization and source.",
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
    width = max(len(m.name) for m in models)
    for m in models:
        where = "folder" if m.kind == "folder" else "cache "
        print(f"{m.name:<{width}}  {where}  {m.quantization:<10} {human_bytes(m.size_bytes):>9}  {m.source or '-'}")
    return 0

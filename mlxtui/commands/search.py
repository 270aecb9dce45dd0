"""`mlxtui search QUERY`: search the Hub from the shell, as a table or JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict

from mlxtui.format import human_count, printable
from mlxtui.services import Context

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `search` subcommand."""
    parser = sub.add_parser(
        "search",
        help="search the Hub for models",
        description="Search the Hub for models. Prints repo id, downloads, likes, last update, parameters, "
        "an MLX badge and a lock for gated or private repos.",
    )
    parser.add_argument("query", nargs="?", default="", help="text the repo id contains")
    parser.add_argument("--author", metavar="A", default="", help="only repos of this user or org (e.g. mlx-community)")
    parser.add_argument("--filter", metavar="TAG", action="append", default=[],
                        help="only repos with this tag (repeatable), e.g. mlx, library:transformers, text-generation")
    parser.add_argument("--sort", choices=["downloads", "likes", "trending", "updated"], default="downloads")
    parser.add_argument("--limit", metavar="N", type=int, default=20, help="at most N results (default 20)")
    parser.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    parser.set_defaults(func=run)


def _count(n: int | None) -> str:
    return human_count(n, digits=1, missing="-")


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Print up to --limit hits; exit 1 with a one-line reason when the search fails."""
    from mlxtui.services.errors import InvalidInputError
    from mlxtui.services.events import Notice, SearchHit
    from mlxtui.services.hub import HubService, SearchQuery

    if args.limit < 1:
        raise InvalidInputError("--limit must be at least 1.")
    query = SearchQuery(text=args.query, author=args.author, filters=tuple(args.filter), sort=args.sort)

    async def collect() -> list[SearchHit]:
        cursor = HubService(ctx).search(query, page_size=min(args.limit, 100))
        hits: list[SearchHit] = []
        while len(hits) < args.limit and not cursor.done:
            async for event in cursor.next_page(min(100, args.limit - len(hits))):
                if isinstance(event, Notice):
                    print(f"mlxtui: {printable(event.text, newlines=False)}", file=sys.stderr)
                else:
                    hits.extend(event.hits)
        return hits[: args.limit]

    hits = asyncio.run(collect())
    if args.json:
        print(json.dumps([asdict(h) for h in hits], indent=2))
        return 0
    if not hits:
        print("No models found.", file=sys.stderr)
        return 0
    # repo ids come from the Hub: shown with control characters visible, never sent to the terminal
    names = {h.repo_id: printable(h.repo_id, newlines=False) for h in hits}
    width = max(len(n) for n in names.values())
    print(f"{'repo id':<{width}}  {'downloads':>9}  {'likes':>6}  {'updated':<10}  {'params':>7}  flags")
    for h in hits:
        flags = " ".join(f for f, on in (("MLX", h.mlx), ("gated", h.gated), ("private", h.private)) if on)
        print(f"{names[h.repo_id]:<{width}}  {_count(h.downloads):>9}  {_count(h.likes):>6}  "
              f"{printable((h.last_modified or '-')[:10], newlines=False):<10}  {_count(h.parameters):>7}  {flags}")
    return 0

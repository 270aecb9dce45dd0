"""`mlxtui card PATH [--from REPO] [--check]`: write or update README.md of an MLX folder, or lint it."""

from __future__ import annotations

import argparse
import asyncio
import sys

from mlxtui.services import Context

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `card` subcommand."""
    parser = sub.add_parser(
        "card",
        help="write or check the model card (README.md) of an MLX folder",
        description="Build README.md for a converted MLX folder from the original model's card and "
        "mlxtui-provenance.json: the original's license, language, tags, datasets and pipeline_tag are kept, "
        "library_name: mlx, base_model and the mlx tag are set, and a body with the conversion details and "
        "mlx-lm usage is written when the card has none. A body you edited is kept; only metadata is merged. "
        "With --check, nothing is written: the card is linted and the exit status is 1 when it has errors.",
    )
    parser.add_argument("path", metavar="PATH", help="the MLX model folder")
    parser.add_argument("--from", dest="source", metavar="REPO", help="the original model (default: from mlxtui-provenance.json)")
    parser.add_argument("--repo", metavar="REPO_ID", help="the repo id it will be uploaded to: the title, the usage "
                        "snippet and links follow it, also in a card you edited (default: the folder name)")
    parser.add_argument("--check", action="store_true", help="lint only; exit 1 on errors")
    parser.add_argument("--regenerate", action="store_true", help="rewrite the body even when it has text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    return asyncio.run(_run(args, ctx))


async def _run(args: argparse.Namespace, ctx: Context) -> int:
    from mlxtui.format import printable
    from mlxtui.services.card import CardService, read_provenance

    service = CardService(ctx)
    folder = service.check_folder(args.path)
    source = args.source or (read_provenance(folder) or {}).get("source")
    if args.check:
        text = service.read_card(folder)
        if text is None:
            print(f"{folder}/README.md: missing (run `mlxtui card {args.path}` to write one)", file=sys.stderr)
            return 1
        problems, notes = await service.lint(text, source)
        for note in notes:
            print(f"note: {printable(note, newlines=False)}", file=sys.stderr)
        for problem in problems:
            print(f"README.md: {printable(problem, newlines=False)}")
        errors = [p for p in problems if p.severity == "error"]
        if not problems:
            print("README.md: ok")
        return 1 if errors else 0
    if args.repo:
        from mlxtui.services.modelfolder import validate_repo_id

        args.repo = validate_repo_id(args.repo, namespaced=True)
    existing = service.read_card(folder)
    changes: list[str] = []
    text, notes = await service.build(
        folder, source=source, existing=existing, repo_id=args.repo, regenerate_body=args.regenerate, changes=changes
    )
    for note in notes:
        print(f"note: {printable(note, newlines=False)}", file=sys.stderr)
    for change in changes:
        print(f"README.md: changed the {printable(change, newlines=False)}")
    if text == existing:
        print(f"{folder}/README.md: already up to date")
    else:
        path = service.save(folder, text)
        print(f"{path}: {'updated' if existing is not None else 'written'}")
    problems, _ = await service.lint(text, source)
    for problem in problems:
        print(f"README.md: {printable(problem, newlines=False)}")
    return 0

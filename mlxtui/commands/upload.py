"""`mlxtui upload PATH REPO_ID [--private] [--yes]`: preflight, confirm, upload, verify."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from mlxtui.format import human_bytes
from mlxtui.services import Context

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `upload` subcommand."""
    parser = sub.add_parser(
        "upload",
        help="upload an MLX folder to the Hub (preflight, confirm, resumable, verified)",
        description="Check the folder (README.md lint-clean, config.json, weights consistent with the index, no "
        "stray or secret files, no token-like text), show what will be sent where, then upload it with "
        "huggingface_hub. Running it again after an interruption sends only what the server lacks; afterwards "
        "the remote files are compared with the local ones. The token comes from HF_TOKEN or `hf auth login`.",
    )
    parser.add_argument("path", metavar="PATH", help="the MLX model folder")
    parser.add_argument("repo_id", metavar="REPO_ID", help="owner/name (a bare name goes to your own namespace)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--yes", "-y", action="store_true", help="don't ask for confirmation")
    parser.set_defaults(func=run)




def run(args: argparse.Namespace, ctx: Context) -> int:
    return asyncio.run(_run(args, ctx))


async def _run(args: argparse.Namespace, ctx: Context) -> int:
    from mlxtui.services.events import UploadFinished, UploadProgress, UploadStage
    from mlxtui.services.upload import UploadService

    service = UploadService(ctx)
    plan = await service.preflight(args.path, args.repo_id, private=args.private)
    marks = {"ok": "✓", "warning": "!", "error": "✗"}
    print("Preflight:")
    for check in plan.checks:
        print(f"  {marks[check.status]} {check.name}: {check.detail}")
    if not plan.ok:
        print("mlxtui: upload refused: fix the problems marked ✗ and run it again.", file=sys.stderr)
        return 1
    print(f"\nEndpoint:   {plan.endpoint}\nRepo:       {plan.repo_id} ({'private' if plan.private else 'public'})")
    print(f"Files:      {len(plan.files)}, {human_bytes(plan.total_bytes)}")
    for f in plan.files:
        print(f"  {f.path:<48} {human_bytes(f.size):>10}")
    if not args.yes:
        if not sys.stdin.isatty():
            print("mlxtui: not a terminal: pass --yes to upload without confirmation.", file=sys.stderr)
            return 1
        answer = input(f"Upload to {plan.url}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("Nothing was sent.")
            return 1
    last = 0.0
    async for event in service.upload(plan):
        match event:
            case UploadStage(text=text):
                print(text)
            case UploadProgress() as p:
                now = time.monotonic()
                if now - last >= 1.0 or p.bytes_done == p.bytes_total:
                    last = now
                    print(f"  {p.files_done}/{p.files_total} files, {human_bytes(p.bytes_done)} / {human_bytes(p.bytes_total)}, "
                          f"{human_bytes(p.bytes_per_second)}/s", file=sys.stderr)
            case UploadFinished() as done:
                print(f"Verified {done.verified_files} files ({done.sent_files} sent, {done.skipped_files} already there).")
                print(done.url)
    return 0

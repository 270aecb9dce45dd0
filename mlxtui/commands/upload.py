"""`mlxtui upload PATH REPO_ID [--private|--public] [--exclude P] [--delete-others] [--yes] [--json]`: preflight,
confirm, upload, verify."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
import threading
import time

from mlxtui.format import human_bytes, printable
from mlxtui.services import Context

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `upload` subcommand."""
    parser = sub.add_parser(
        "upload",
        help="upload an MLX folder to the Hub (preflight, confirm, resumable, verified)",
        description="Check the folder (README.md lint-clean, config.json, weights consistent with the index; no "
        "link leaving the folder; no credential files; no private key or token in any file but the tensors), "
        "show what will be sent where and what changes on the Hub, then upload it with huggingface_hub in one "
        "commit that also deletes remote files mlx-lm would load and the folder lacks. Running it again after "
        "an interruption sends only what the server lacks; afterwards the remote files and the visibility are "
        "compared with the local ones. The token comes from HF_TOKEN or `hf auth login`.",
    )
    parser.add_argument("path", metavar="PATH", help="the MLX model folder")
    parser.add_argument("repo_id", metavar="REPO_ID", help="owner/name (a bare name goes to your own namespace)")
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument("--private", dest="private", action="store_const", const=True, default=None,
                            help="make the repo private (an existing public repo is made private before sending)")
    visibility.add_argument("--public", dest="private", action="store_const", const=False,
                            help="make the repo public (an existing private repo is made public before sending)")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATH",
                        help="a file or folder (relative to PATH) not to send or read; repeatable")
    parser.add_argument("--delete-others", action="store_true",
                        help="also delete remote files the folder lacks that mlx-lm would not load (kept otherwise)")
    parser.add_argument("--yes", "-y", action="store_true", help="don't ask for confirmation")
    parser.add_argument("--json", action="store_true",
                        help="print the verified result as one JSON object on stdout (everything else goes to stderr)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    if not getattr(args, "json", False):
        return asyncio.run(_run(args, ctx))
    # stdout holds only the result: the checklist, the plan and the stages go to stderr
    results: list[dict] = []
    with contextlib.redirect_stdout(sys.stderr):
        code = asyncio.run(_run(args, ctx, results))
    if results:
        print(json.dumps(results[-1], indent=2))
    return code


def _visibility(plan) -> str:  # type: ignore[no-untyped-def]
    if plan.visibility_change:
        return f"{plan.visibility_change} (changed before any file is sent)"
    return "private" if plan.private else "PUBLIC (anyone can download it)"


def _show_plan(plan) -> None:  # type: ignore[no-untyped-def]
    exists = "exists: files already there are skipped" if plan.repo_exists else "will be created"
    print(f"\nEndpoint:   {printable(plan.endpoint, newlines=False)}")
    print(f"Repo:       {plan.repo_id} ({'private' if plan.private else 'public'}); {exists}")
    print(f"Visibility: {_visibility(plan)}")
    print(f"Files:      {len(plan.files)}, {human_bytes(plan.total_bytes)}")
    for f in plan.files:
        print(f"  {printable(f.path, newlines=False):<48} {human_bytes(f.size):>10}")
    if plan.deletions:
        print(f"Deleted on the Hub in the same commit ({len(plan.deletions)}):")
        for path in plan.deletions:
            print(f"  - {printable(path, newlines=False)}")
    if plan.remote_keep and not plan.delete_others:
        print(f"Kept on the Hub (not in the folder; --delete-others deletes them): "
              f"{printable(', '.join(plan.remote_keep), newlines=False)}")


async def _run(args: argparse.Namespace, ctx: Context, results: list[dict] | None = None) -> int:
    from mlxtui.services.errors import CancelledByUser
    from mlxtui.services.events import Notice, UploadFinished, UploadProgress, UploadStage
    from mlxtui.services.upload import UploadService, finished_summary

    service = UploadService(ctx)
    plan = await service.preflight(args.path, args.repo_id, private=args.private, exclude=args.exclude,
                                   delete_others=args.delete_others)
    marks = {"ok": "✓", "warning": "!", "error": "✗"}
    print("Preflight:")
    for check in plan.checks:
        print(f"  {marks[check.status]} {check.name}: {printable(check.detail, newlines=False)}")
    if not plan.ok:
        print("mlxtui: upload refused: fix the problems marked ✗ (or --exclude a file) and run it again.",
              file=sys.stderr)
        return 1
    _show_plan(plan)
    if not args.yes:
        if not sys.stdin.isatty():
            print("mlxtui: not a terminal: pass --yes to upload without confirmation.", file=sys.stderr)
            return 1
        answer = input(f"Upload to {plan.url}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("Nothing was sent.")
            return 1
    # Ctrl-C asks the upload to stop; the service then says truthfully what reached the Hub
    cancel = threading.Event()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, cancel.set)
    except (NotImplementedError, RuntimeError):
        pass  # not the main thread (tests) or no signals here: Ctrl-C interrupts as usual
    last = 0.0
    try:
        async for event in service.upload(plan, cancel=cancel):
            match event:
                case UploadStage(text=text):
                    print(printable(text, newlines=False))
                case Notice(text=text):
                    print(f"  {printable(text, newlines=False)}", file=sys.stderr)
                case UploadProgress() as p:
                    now = time.monotonic()
                    if now - last >= 1.0 or p.bytes_done == p.bytes_total:
                        last = now
                        print(f"  {p.files_done}/{p.files_total} files, {human_bytes(p.bytes_done)} / "
                              f"{human_bytes(p.bytes_total)}, {human_bytes(p.bytes_per_second)}/s", file=sys.stderr)
                case UploadFinished() as done:
                    print("Verified " + finished_summary(done))
                    print(done.url)
                    if results is not None:
                        results.append({**dataclasses.asdict(done), "summary": "Verified " + finished_summary(done)})
    except CancelledByUser as error:
        print(f"mlxtui: {error}", file=sys.stderr)
        return 130
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass
    return 0


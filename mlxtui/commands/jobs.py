"""`mlxtui jobs`: conversion jobs, running and finished; follow or cancel one."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from mlxtui.format import printable
from mlxtui.services import Context

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `jobs` subcommand."""
    parser = sub.add_parser(
        "jobs",
        help="list conversion jobs (running and finished); follow or cancel one",
        description="Conversion jobs live in the data folder and outlive mlxtui. Without options, list them.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--follow", metavar="JOB", help="print a job's progress until it ends (Ctrl-C detaches)")
    group.add_argument("--cancel", metavar="JOB", help="cancel a running job (its partial output is removed)")
    group.add_argument("--delete", metavar="JOB", help="forget a finished job: its folder in the jobs directory goes, "
                       "its outputs stay (a job id only, never a path)")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from mlxtui.commands.convert import ProgressPrinter, _follow
    from mlxtui.services.convert import ConvertService

    service = ConvertService(ctx)
    # `is not None`: an empty id is refused like any other bad id, never taken for "no option"
    if args.cancel is not None:
        job = service.cancel_sync(args.cancel)
        print(f"{job.id}: {job.state}")
        return 0
    if args.delete is not None:
        service.delete_job(args.delete)
        print(f"{args.delete}: forgotten (its outputs stay)")
        return 0
    if args.follow is not None:
        job = service.job(args.follow)
        printer = ProgressPrinter(sys.stderr, [v.label for v in job.variants])
        try:
            finished = asyncio.run(_follow(service, job.id, printer))
        except KeyboardInterrupt:
            print(f"mlxtui: detached; job {job.id} keeps running", file=sys.stderr)
            return 0
        return 0 if finished is not None and finished.state == "done" else 1
    jobs = service.jobs()
    if args.json:
        print(json.dumps([job.to_dict() | {"dir": str(job.dir)} for job in jobs], indent=2))
        return 0
    if not jobs:
        print("No conversion jobs yet.")
        return 0
    for job in jobs:
        labels = ", ".join(f"{v.label} {v.state}" for v in job.variants)
        print(printable(f"{job.id}  {job.state:<9}  {job.source}  [{labels}]", newlines=False))
        if job.message:
            print(f"    {printable(job.message, newlines=False)}")
    return 0

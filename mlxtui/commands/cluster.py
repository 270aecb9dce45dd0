"""`mlxtui cluster …`: the hosts file, host checks, plans, and a cluster run from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict

from mlxtui.commands.signals import Stop, run_stoppable, run_to_end
from mlxtui.format import printable
from mlxtui.services import Context

__all__ = ["register", "run", "chat_over_hosts"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add `cluster` and its subcommands (hosts, add, remove, check, plan, run)."""
    parser = sub.add_parser(
        "cluster",
        help="run a model over several Macs with mlx.launch (hosts, check, plan, run)",
        description="Name the Macs in a hosts file (mlx.launch's JSON format, kept in the config dir), check them "
        "over SSH, plan how a model splits over them, and run it with mlx.launch and mlx_lm server.",
    )
    parser.add_argument("--hosts", metavar="FILE", default=None, help="hosts file (default: hosts.json in the config dir)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("hosts", help="show the hosts file")
    add = actions.add_parser("add", help="add a host (ranks run in the order hosts are listed)")
    add.add_argument("ssh", help="the name ssh uses (127.0.0.1: this Mac, without SSH)")
    add.add_argument("--ip", action="append", default=[], help="an IP the ranks talk over (ring backend; repeatable)")
    add.add_argument("--backend", choices=["ring", "jaccl", "jaccl-ring"], default=None, help="set the backend")
    remove = actions.add_parser("remove", help="remove every entry for a host")
    remove.add_argument("ssh")
    check = actions.add_parser("check", help="check every host over SSH against this Mac")
    check.add_argument("model", nargs="?", default=None, help="also say whether this model folder is on each host")
    check.add_argument("--json", action="store_true")
    plan = actions.add_parser("plan", help="how MODEL would split over the hosts, and whether it fits")
    plan.add_argument("model")
    plan.add_argument("--split", choices=["pipeline", "tensor"], default=None)
    plan.add_argument("--json", action="store_true")
    start = actions.add_parser("run", help="launch MODEL over the hosts and serve it until Ctrl-C")
    start.add_argument("model")
    start.add_argument("--split", choices=["pipeline", "tensor"], default=None)
    for p in (parser, add, remove, check, plan, start):
        p.set_defaults(func=run)


def _load(args: argparse.Namespace, *, missing_ok: bool = False):  # -> Hosts | None
    from mlxtui.services.cluster_hosts import hosts_path, load_hosts
    from mlxtui.services.errors import NotFoundError

    try:
        return load_hosts(args.hosts)
    except NotFoundError:
        if missing_ok:
            return None
        raise NotFoundError(f"No hosts file at {args.hosts or hosts_path()}.",
                            hint="Add hosts with `mlxtui cluster add NAME --ip IP`.") from None


def _edit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlxtui.services.cluster_hosts import Host, Hosts, hosts_path, parse_hosts, save_hosts

    current = _load(args, missing_ok=True)
    path = Path(args.hosts).expanduser() if args.hosts else hosts_path()
    hosts = list(current.hosts) if current else []
    backend = current.backend if current else "ring"
    envs = current.envs if current else ()
    if args.action == "add":
        entry = parse_hosts({"hosts": [{"ssh": args.ssh, "ips": args.ip}]}, "the new host").hosts[0]
        hosts.append(Host(entry.ssh, entry.ips))
        backend = args.backend or backend
    else:
        kept = [h for h in hosts if h.ssh != args.ssh]
        if len(kept) == len(hosts):
            print(f"mlxtui: {printable(args.ssh)} is not in {path}.", file=sys.stderr)
            return 3
        hosts = kept
    if not hosts:
        path.unlink(missing_ok=True)
        print(f"Removed the last host; {path} is gone.")
        return 0
    save_hosts(Hosts(tuple(hosts), backend, envs), path)
    print(f"{path}: {len(hosts)} ranks ({', '.join(printable(h.ssh) for h in hosts)}), backend {backend}")
    return 0


async def _run_cluster(args: argparse.Namespace, hosts, stop: Stop) -> int:
    from mlxtui.services.cluster import ClusterService, RankLog, RankState

    service = ClusterService()
    cluster = await service.open(args.model, hosts, args.split, say=lambda line: print(printable(line)))
    print(f"Serving at {cluster.base_url} (OpenAI-compatible). Ctrl-C stops every rank.", flush=True)
    try:
        async for event in cluster.events():
            if isinstance(event, RankLog):
                who = "launch" if event.rank is None else f"rank {event.rank}"
                print(f"[{who}] {printable(event.text, newlines=False)}", flush=True)
            elif isinstance(event, RankState) and event.state == "exited":
                print(f"[rank {event.rank}] exited ({event.code})", flush=True)
    finally:
        result = await run_to_end(cluster.stop())
        _say(f"Stopped: {result.reason}", result, stop)
    return 0 if not cluster.failure else 1


def _say(line: str, result, stop: Stop) -> None:  # result: ClusterStopped
    """`line`, which signal stopped us, and why the cluster failed if it did, on stderr."""
    try:
        print(line + (f" (on {stop.name})" if stop.signum else "") + (f"; {result.failure}" if result.failure else ""),
              file=sys.stderr, flush=True)
    except OSError:
        pass  # after SIGHUP the terminal may be gone; the ranks are stopped all the same


def chat_over_hosts(args: argparse.Namespace, ctx: Context, chat) -> int:
    """`mlxtui chat MODEL --hosts FILE`: launch the cluster, run chat's own loop `chat(args, ctx, service)` against
    it, and stop every rank whatever happens (a reply, an error, Ctrl-C, SIGTERM, SIGHUP)."""
    from mlxtui.services.cluster import ClusterService
    from mlxtui.services.cluster_chat import ClusterChatService
    from mlxtui.services.cluster_hosts import load_hosts
    from mlxtui.services.errors import InvalidInputError

    if getattr(args, "tui", False):
        raise InvalidInputError("--hosts runs in the terminal; in the app, use the Hosts pane.")
    hosts = load_hosts(args.hosts)
    quiet = args.json or not sys.stderr.isatty()

    async def go(stop: Stop) -> int:
        say = None if quiet else (lambda line: print(f"mlxtui: {printable(line)}", file=sys.stderr))
        cluster = await ClusterService().open(args.model, hosts, args.split, say=say)
        try:
            return await chat(args, ctx, ClusterChatService(cluster))
        finally:
            result = await run_to_end(cluster.stop())
            if stop.signum:
                _say("mlxtui: the cluster was stopped", result, stop)

    return asyncio.run(run_stoppable(go))


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Dispatch the cluster action; `mlxtui cluster` alone shows the hosts."""
    from mlxtui.services.cluster import ClusterService

    action = args.action or "hosts"
    if action in ("add", "remove"):
        return _edit(args)
    if action == "hosts":
        hosts = _load(args, missing_ok=True)
        if hosts is None:
            print("No hosts yet. Add one: mlxtui cluster add mac2.local --ip 10.0.0.2")
            return 0
        print(f"{hosts.path} (backend {hosts.backend})")
        for rank, host in enumerate(hosts.hosts):
            print(f"  rank {rank}: {printable(host.ssh)}  {' '.join(host.ips)}")
        return 0
    hosts = _load(args)
    service = ClusterService()
    if action == "check":
        checks = asyncio.run(service.check(hosts, args.model))
        if args.json:
            print(json.dumps([{"host": c.host.ssh, "ok": c.ok, "reachable": c.reachable, "facts": c.facts,
                               "problems": list(c.problems), "notes": list(c.notes)} for c in checks], indent=2))
        else:
            for rank, c in enumerate(checks):
                print(f"rank {rank} {printable(c.host.ssh)}: {'ok' if c.ok else 'NOT READY'} · {printable(c.summary())}")
        return 0 if all(c.ok for c in checks) else 1
    if action == "plan":
        plan = asyncio.run(service.plan(args.model, hosts, args.split))
        if args.json:
            data = asdict(plan)
            data["path"] = str(plan.path)
            data["ok"] = plan.ok
            print(json.dumps(data, indent=2))
        else:
            print("\n".join(printable(line) for line in plan.lines()))
        return 0 if plan.ok else 1
    # Ctrl-C, SIGTERM (a service manager) and SIGHUP (the SSH session gone) all stop the ranks in order.
    return asyncio.run(run_stoppable(lambda stop: _run_cluster(args, hosts, stop)))

"""`mlxtui devhub`: run the local Hub-compatible server, import model folders into it, manage its tokens."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add `devhub serve | import | token | grant`."""
    parser = sub.add_parser(
        "devhub",
        help="run a local Hugging Face Hub-compatible server (tests, demo, safe uploads)",
        description="A local Hub-compatible server whose repos live in a folder. "
        "Point huggingface_hub at it with HF_ENDPOINT=<url>; set HF_HUB_DISABLE_XET=1 to upload.",
    )
    actions = parser.add_subparsers(dest="devhub_action", metavar="ACTION", required=True)

    serve = actions.add_parser("serve", help="serve a root folder until Ctrl+C")
    serve.add_argument("--root", type=Path, required=True, help="folder holding repos and tokens.json")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="API port (default: a free port)")
    serve.add_argument("--cdn-port", type=int, default=0, help="port of the large-file origin (default: a free port)")
    serve.add_argument("--page-size", type=int, default=50, help="items per page of listings (default 50)")

    imp = actions.add_parser("import", help="publish a local model folder as a repo (new commit)")
    imp.add_argument("--root", type=Path, required=True)
    imp.add_argument("repo_id", metavar="REPO_ID", help="owner/name")
    imp.add_argument("folder", metavar="FOLDER", type=Path)
    imp.add_argument("--private", action="store_true", help="hidden from everyone but the owner and its orgs")
    imp.add_argument("--gated", action="store_true", help="files need access granted (see `devhub grant`)")
    imp.add_argument("--message", default="Import", help="commit message")

    token = actions.add_parser("token", help="add or replace an access token")
    token.add_argument("--root", type=Path, required=True)
    token.add_argument("token", metavar="TOKEN")
    token.add_argument("--user", required=True)
    token.add_argument("--org", action="append", default=[], dest="orgs", help="organisation (repeatable)")
    token.add_argument("--role", choices=["read", "write"], default="write")

    grant = actions.add_parser("grant", help="give a user access to a gated repo")
    grant.add_argument("--root", type=Path, required=True)
    grant.add_argument("repo_id", metavar="REPO_ID")
    grant.add_argument("user", metavar="USER")

    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Any = None) -> int:
    """Carry out one devhub action; returns the exit code."""
    action = args.devhub_action
    if action == "serve":
        from mlxtui.devhub.server import DevHub

        hub = DevHub(args.root, host=args.host, port=args.port, cdn_port=args.cdn_port, page_size=args.page_size)
        hub.start()
        repos = hub.store.list_repos()
        print(f"devhub serving {len(repos)} repo(s) from {hub.root}")
        print(f"  endpoint: {hub.url}   (large files: {hub.cdn_url})")
        print(f"  use it:   HF_ENDPOINT={hub.url} HF_HUB_DISABLE_XET=1 ...   Ctrl+C stops.", flush=True)
        try:
            hub.serve_forever()
        except KeyboardInterrupt:
            print("devhub stopped")
        return 0

    from mlxtui.devhub.store import HubStore

    store = HubStore(args.root)
    if action == "import":
        if not args.folder.is_dir():
            print(f"mlxtui: not a folder: {args.folder}")
            return 2
        sha = store.import_folder(
            args.repo_id, args.folder, private=args.private, gated=args.gated, message=args.message
        )
        print(f"{args.repo_id}@{sha}")
        return 0
    if action == "token":
        store.add_token(args.token, args.user, args.orgs, args.role)
        orgs = f" (orgs: {', '.join(args.orgs)})" if args.orgs else ""
        print(f"token for {args.user}{orgs}, role {args.role}, saved in {store.tokens_path}")
        return 0
    if action == "grant":
        store.grant_access(args.repo_id, args.user)
        print(f"{args.user} may now download {args.repo_id}")
        return 0
    return 2

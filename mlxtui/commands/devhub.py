"""`mlxtui devhub`: run the local Hub-compatible server, import model folders into it, manage its tokens.

Mistakes get one line `mlxtui: ...` and exit 2 (a bad argument) or 1 (the root cannot do it), never a traceback.
Tokens never travel on the command line (the process list shows it): `token` reads one from stdin or makes one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

from mlxtui.services.errors import InvalidInputError, MlxtuiError

__all__ = ["register", "run"]


def _usage_error(parser: argparse.ArgumentParser):
    """argparse's error as one line and exit 2 (instead of the usage block)."""

    def error(message: str) -> NoReturn:
        command = parser.prog.removeprefix("mlxtui ")
        print(f"mlxtui: {command}: {message} (see {parser.prog} --help)", file=sys.stderr)
        raise SystemExit(2)

    return error


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


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
    serve.add_argument("--root", type=Path, required=True, help="folder holding repos, tokens.json, admin-token")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a --host other machines can reach (anyone who can reach it may try your tokens)")
    serve.add_argument("--port", type=_port, default=0, help="API port (default: a free port)")
    serve.add_argument("--cdn-port", type=_port, default=0, help="port of the large-file origin (default: a free port)")
    serve.add_argument("--page-size", type=_positive, default=50, help="items per page of listings (default 50)")

    imp = actions.add_parser("import", help="publish a local model folder as a repo (new commit)")
    imp.add_argument("--root", type=Path, required=True)
    imp.add_argument("repo_id", metavar="REPO_ID", help="owner/name")
    imp.add_argument("folder", metavar="FOLDER", type=Path)
    visibility = imp.add_mutually_exclusive_group()
    visibility.add_argument("--private", dest="private", action="store_const", const=True, default=None,
                            help="hidden from everyone but the owner and its orgs (default: a new repo is public, "
                            "an existing one keeps its visibility)")
    visibility.add_argument("--public", dest="private", action="store_const", const=False, help="visible to everyone")
    gating = imp.add_mutually_exclusive_group()
    gating.add_argument("--gated", dest="gated", action="store_const", const=True, default=None,
                        help="files need access granted (see `devhub grant`; default: keep the repo's setting)")
    gating.add_argument("--not-gated", dest="gated", action="store_const", const=False, help="anyone may download")
    imp.add_argument("--message", default="Import", help="commit message")

    token = actions.add_parser(
        "token", help="add a token (read from stdin with --stdin, else generated and printed)",
        description="Add or replace an access token. The token is never an argument (the process list would show "
        "it): pipe it in with --stdin, or let devhub generate one and print it.")
    token.add_argument("--root", type=Path, required=True)
    token.add_argument("--user", required=True)
    token.add_argument("--org", action="append", default=[], dest="orgs", help="organisation (repeatable)")
    token.add_argument("--role", choices=["read", "write"], default="write")
    token.add_argument("--stdin", action="store_true", help="read the token from the first line of stdin")
    token.add_argument("legacy_token", nargs="?", metavar="", help=argparse.SUPPRESS)

    grant = actions.add_parser("grant", help="give a user access to a gated repo")
    grant.add_argument("--root", type=Path, required=True)
    grant.add_argument("repo_id", metavar="REPO_ID")
    grant.add_argument("user", metavar="USER")

    for command in (parser, serve, imp, token, grant):
        command.error = _usage_error(command)  # type: ignore[method-assign]
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Any = None) -> int:
    """Carry out one devhub action; returns the exit code (MlxtuiError for mistakes: one line, no traceback)."""
    action = args.devhub_action
    if action == "serve":
        return _serve(args)
    store = _store(args.root)
    if action == "import":
        return _import(store, args)
    if action == "token":
        return _token(store, args)
    if action == "grant":
        return _grant(store, args)
    raise InvalidInputError(f"unknown devhub action {action!r}")


def _store(root: Path) -> Any:
    from mlxtui.devhub.store import HubStore

    try:
        return HubStore(root)
    except OSError as error:
        raise MlxtuiError(f"cannot use {root} as a devhub root: {error.strerror or error}.") from None


def _user(name: str) -> str:
    from mlxtui.services.modelfolder import is_repo_id

    if not is_repo_id(name, namespaced=False):
        raise InvalidInputError(f"{name!r} is not a user name: letters, digits, '-', '_' and '.'.")
    return name


def _serve(args: argparse.Namespace) -> int:
    from mlxtui.devhub.server import DevHub, is_loopback

    if not is_loopback(args.host):
        if not args.allow_remote:
            raise InvalidInputError(
                f"--host {args.host} lets other machines reach the devhub (and try its tokens); "
                "add --allow-remote if that is what you want.")
        print(f"mlxtui: warning: devhub listens on {args.host}: anyone who can reach it can read its public repos "
              "and try tokens. Plain HTTP: tokens travel unencrypted.", file=sys.stderr)
    _store(args.root)
    try:
        hub = DevHub(args.root, host=args.host, port=args.port, cdn_port=args.cdn_port, page_size=args.page_size)
        hub.start()
    except OSError as error:
        raise MlxtuiError(f"devhub cannot listen on {args.host}:{args.port}: {error.strerror or error}.") from None
    repos = hub.store.list_repos()
    print(f"devhub serving {len(repos)} repo(s) from {hub.root}")
    print(f"  endpoint: {hub.url}   (large files: {hub.cdn_url})")
    print(f"  use it:   HF_ENDPOINT={hub.url} HF_HUB_DISABLE_XET=1 ...   Ctrl+C stops.")
    print(f"  admin:    Authorization: Bearer <contents of {hub.root / 'admin-token'}>", flush=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        print("devhub stopped")
    return 0


def _import(store: Any, args: argparse.Namespace) -> int:
    from mlxtui.services.modelfolder import is_repo_id

    if not is_repo_id(args.repo_id):
        raise InvalidInputError(f"{args.repo_id!r} is not a repo id: use owner/name.")
    if not args.folder.is_dir():
        raise InvalidInputError(f"not a folder: {args.folder}")
    from mlxtui.devhub.importer import ImportRefused

    try:
        sha = store.import_folder(args.repo_id, args.folder, private=args.private, gated=args.gated,
                                  message=args.message)
    except ImportRefused as error:
        raise InvalidInputError(str(error)) from None
    except OSError as error:
        raise MlxtuiError(f"cannot import {args.folder}: {error.strerror or error} ({error.filename or ''}).") from None
    print(f"{args.repo_id}@{sha}")
    return 0


def _token(store: Any, args: argparse.Namespace) -> int:
    from mlxtui.devhub.credentials import is_valid_token, new_token

    if args.legacy_token is not None:
        # never echo it: it is already in the shell history and the process list
        raise InvalidInputError("devhub token no longer takes the token as an argument (the process list shows it): "
                                "pipe it in with --stdin, or leave it out to have one generated.")
    user = _user(args.user)
    orgs = [_user(org) for org in args.orgs]
    if args.stdin:
        token = sys.stdin.readline(1024).strip()
        if not is_valid_token(token):
            raise InvalidInputError("the token on stdin must be 8-256 printable characters without spaces.")
        generated = False
    else:
        token, generated = new_token(), True
    store.add_token(token, user, orgs, args.role)
    shown = f" (orgs: {', '.join(orgs)})" if orgs else ""
    if generated:
        print(token)  # alone on stdout, so `TOKEN=$(mlxtui devhub token ...)` works
    print(f"token for {user}{shown}, role {args.role}, saved in {store.tokens_path}", file=sys.stderr)
    return 0


def _grant(store: Any, args: argparse.Namespace) -> int:
    from mlxtui.devhub.store import RepoNotFound
    from mlxtui.services.modelfolder import is_repo_id

    if not is_repo_id(args.repo_id):
        raise InvalidInputError(f"{args.repo_id!r} is not a repo id: use owner/name.")
    user = _user(args.user)
    try:
        store.grant_access(args.repo_id, user)
    except RepoNotFound:
        raise MlxtuiError(f"no repo {args.repo_id} in {args.root}.") from None
    print(f"{user} may now download {args.repo_id}")
    return 0

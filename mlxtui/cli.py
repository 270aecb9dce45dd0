"""Command line: parse arguments, build settings and the service context, run the app or a subcommand."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import argparse

from mlxtui import __version__
from mlxtui.commands import register_all
from mlxtui.services import Context, configure_hub_environment, resolve_endpoint
from mlxtui.services.errors import MlxtuiError
from mlxtui.settings import load_settings

__all__ = ["main", "build_parser"]


def build_parser(with_commands: bool = True) -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="mlxtui",
        description="Take a model from the Hugging Face Hub to a shared MLX conversion: "
        "search, inspect, convert, chat, write the card, upload. Without a command, opens the terminal app.",
    )
    parser.add_argument("--version", action="version", version=f"mlxtui {__version__}")
    _add_global_options(parser)
    if with_commands:
        sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        register_all(sub)
        for command in sub.choices.values():
            # `mlxtui search danube --endpoint URL` works as well as `mlxtui --endpoint URL search danube`;
            # SUPPRESS keeps a subcommand from resetting what was given before it.
            _add_global_options(command, default=argparse.SUPPRESS)
    else:
        parser.set_defaults(command=None)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, default: object = None) -> None:
    import argparse

    group = parser.add_argument_group("global options") if default is argparse.SUPPRESS else parser
    group.add_argument("--endpoint", metavar="URL", default=default,
                       help="Hub endpoint (default: HF_ENDPOINT or https://huggingface.co)")
    group.add_argument("--demo", action="store_true", default=False if default is None else default,
                       help="start a local demo Hub with generated models and use it")
    group.add_argument("--config", metavar="FILE", type=Path, default=default,
                       help="settings file (default: ~/.config/mlxtui/config.toml)")


def wants_command(argv: list[str]) -> bool:
    """Whether argv names a subcommand (or asks for help); opening the app skips importing the commands."""
    if "-h" in argv or "--help" in argv:
        return True
    _args, rest = build_parser(with_commands=False).parse_known_args(argv)
    return bool(rest)


def build_context(args: argparse.Namespace) -> tuple[Context, list[str]]:
    settings, problems = load_settings(args.config)
    endpoint = resolve_endpoint(args.endpoint, settings)
    ctx = Context(endpoint=endpoint, settings=settings)
    if args.demo:
        from mlxtui.services.demo import demo_needs_seeding, start_demo

        if demo_needs_seeding():
            print("mlxtui: preparing the demo Hub (first run only; a few seconds)…", file=sys.stderr)
        start_demo(ctx)
    # The endpoint (and Xet on or off) is decided once, here, before any thread starts.
    configure_hub_environment(ctx.endpoint)
    return ctx, problems


def _fail(error: BaseException, where: str) -> int:
    """One line on stderr for any failure; the traceback goes to the log. Returns the exit code."""
    from mlxtui.errorlog import log_failure, one_line

    if isinstance(error, MlxtuiError):
        log_failure(error, where)
        print(f"mlxtui: {one_line(error)}", file=sys.stderr)
        return error.exit_code
    log = log_failure(error, where)
    where_log = f" (details in {log})" if log else ""
    print(f"mlxtui: unexpected error: {one_line(error)}{where_log}", file=sys.stderr)
    return 70


def _app_only_args(argv: list[str]) -> SimpleNamespace | None:
    """`mlxtui`, `mlxtui --demo`, `mlxtui --endpoint URL`: the app with global options only, read without
    argparse (whose import is a measurable share of start-up). None for anything else."""
    values: dict[str, object] = {"command": None, "endpoint": None, "demo": False, "config": None}
    rest = list(argv)
    while rest:
        token = rest.pop(0)
        name, eq, value = token.partition("=")
        if token == "--demo":
            values["demo"] = True
        elif name in ("--endpoint", "--config") and (eq or rest):
            value = value if eq else rest.pop(0)
            if not value or value.startswith("-"):
                return None
            values[name[2:]] = Path(value) if name == "--config" else value
        else:
            return None
    return SimpleNamespace(**values)


def _exit_fast(code: int) -> NoReturn:
    """End the process once every thread and exit handler is done, without tearing down every module.

    After mlx-lm and transformers were imported, the interpreter's teardown took 2.5 to 6 s after the last
    line of mlxtui ran (issue 13: "quitting takes 3.6-4 s"). The chat service has stopped and joined its
    MLX thread by then. Only for the process's own entry (main() without argv), never in-process callers.
    """
    import logging
    import threading

    try:
        # What the interpreter itself does first: wait for non-daemon threads, then run the exit handlers.
        # Both are private CPython functions; where one is missing, that step is skipped, never the exit.
        getattr(threading, "_shutdown", lambda: None)()
        import atexit

        getattr(atexit, "_run_exitfuncs", lambda: None)()
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the console script or `python -m mlxtui` (issue 13, quit time): see _exit_fast
        _exit_fast(main(sys.argv[1:]))
    args = _app_only_args(argv)
    if args is None:
        parser = build_parser(with_commands=wants_command(argv))
        args = parser.parse_args(argv)
    try:
        ctx, problems = build_context(args)
    except KeyboardInterrupt:
        print("mlxtui: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one place a failure becomes an exit code
        return _fail(error, "start-up")
    if args.command is None:
        from mlxtui.ui.app import MlxtuiApp

        app = MlxtuiApp(ctx, settings_path=args.config, startup_notices=problems)
        app.run()
        return app.return_code or 0
    for problem in problems:
        print(f"mlxtui: {problem}", file=sys.stderr)
    try:
        return int(args.func(args, ctx) or 0)
    except KeyboardInterrupt:
        print("mlxtui: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one place a failure becomes an exit code
        return _fail(error, f"mlxtui {args.command}")

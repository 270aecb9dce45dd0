"""Command line: parse arguments, build settings and the service context, run the app or a subcommand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlxtui import __version__
from mlxtui.commands import register_all
from mlxtui.services import Context, configure_hub_environment, resolve_endpoint
from mlxtui.services.errors import MlxtuiError
from mlxtui.settings import load_settings

__all__ = ["main", "build_parser"]


def build_parser(with_commands: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlxtui",
        description="Take a model from the Hugging Face Hub to a shared MLX conversion: "
        "search, inspect, convert, chat, write the card, upload. Without a command, opens the terminal app.",
    )
    parser.add_argument("--version", action="version", version=f"mlxtui {__version__}")
    parser.add_argument("--endpoint", metavar="URL", help="Hub endpoint (default: HF_ENDPOINT or https://huggingface.co)")
    parser.add_argument(
        "--demo", action="store_true", help="start a local demo Hub with generated models and use it"
    )
    parser.add_argument("--config", metavar="FILE", type=Path, help="settings file (default: ~/.config/mlxtui/config.toml)")
    if with_commands:
        register_all(parser.add_subparsers(dest="command", metavar="COMMAND"))
    else:
        parser.set_defaults(command=None)
    return parser


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
        from mlxtui.devhub.demo import DEMO_WRITE_TOKEN, default_demo_root, is_seeded, start_demo_hub

        if not is_seeded(default_demo_root()):
            print("mlxtui: preparing the demo Hub (first run only; a few seconds)…", file=sys.stderr)
        hub = start_demo_hub()
        ctx.demo = True
        ctx.endpoint = hub.url
        ctx.token = DEMO_WRITE_TOKEN
        ctx.demo_hub = hub  # type: ignore[attr-defined]  # kept alive for the process
    configure_hub_environment(ctx.endpoint)
    return ctx, problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(with_commands=wants_command(argv))
    args = parser.parse_args(argv)
    try:
        ctx, problems = build_context(args)
    except MlxtuiError as error:
        print(f"mlxtui: {error}", file=sys.stderr)
        return 1
    if args.command is None:
        from mlxtui.ui.app import MlxtuiApp

        app = MlxtuiApp(ctx, settings_path=args.config, startup_notices=problems)
        app.run()
        return app.return_code or 0
    for problem in problems:
        print(f"mlxtui: {problem}", file=sys.stderr)
    try:
        return int(args.func(args, ctx) or 0)
    except MlxtuiError as error:
        print(f"mlxtui: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mlxtui: interrupted", file=sys.stderr)
        return 130

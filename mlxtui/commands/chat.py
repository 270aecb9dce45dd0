"""`mlxtui chat MODEL`: answer one prompt (--prompt), chat on stdin, or open the app on Chat (--tui).

Model output is printed terminal-safe (control characters shown as ^[ and the like); `--json` keeps the
exact text. The MLX thread is stopped and joined before this returns, on every path: a process that exits
while MLX still works on that thread aborts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from typing import Any

from mlxtui.services import Context

__all__ = ["register", "run", "make_service"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `chat` subcommand."""
    parser = sub.add_parser(
        "chat",
        help="chat with an MLX model (folder, repo id or OpenAI-compatible URL)",
        description="Chat with an MLX model: a local folder, a Hub repo id, or the URL of an OpenAI-compatible "
        "server such as mlx_lm.server. With --prompt it answers once and exits; with --tui it opens the app "
        "on the Chat pane with the model loaded; otherwise it reads your turns from stdin (an empty line or "
        "end of input quits).",
    )
    parser.add_argument("model", help="MLX folder, repo id, or http(s):// URL of an OpenAI-compatible server")
    parser.add_argument("--system", metavar="S", default=None, help="system prompt (folded into the first turn when the template refuses one)")
    parser.add_argument("--prompt", metavar="P", default=None, help="answer this once and exit")
    parser.add_argument("--max-tokens", metavar="N", type=int, default=None, help="longest reply (default from settings: 512)")
    parser.add_argument("--temp", metavar="T", type=float, default=None, help="temperature, 0 or more (default from generation_config.json)")
    parser.add_argument("--top-p", metavar="P", type=float, default=None, help="nucleus sampling, in (0, 1]")
    parser.add_argument("--seed", metavar="N", type=int, default=None, help="random seed (0 or more), for repeatable sampling")
    parser.add_argument("--json", action="store_true", help="with --prompt: print the exact reply and figures as JSON")
    parser.add_argument("--tui", action="store_true", help="open the app on the Chat pane with MODEL loaded")
    parser.add_argument("--hosts", metavar="FILE", default=None, help="run MODEL over the Macs in FILE (mlx.launch's "
                        "JSON hosts format; see docs/cluster.md) and chat with it; --json adds ranks and split")
    parser.add_argument("--split", choices=["pipeline", "tensor"], default=None, help="with --hosts: force this split")
    parser.set_defaults(func=run)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} tok/s"


def _summary(stats: Any) -> str:
    from mlxtui.services.chat_sampling import rate_or_none

    return (
        f"prompt: {stats.prompt_tokens} tokens, {_rate(rate_or_none(stats.prompt_tokens, stats.prompt_tps))} · "
        f"generation: {stats.generation_tokens} tokens, {_rate(rate_or_none(stats.generation_tokens, stats.generation_tps))} · "
        f"first token {stats.ttft_s:.3f} s · peak {stats.peak_memory_gb:.3f} GB"
    )


def as_json(reply: str, stats: Any) -> dict[str, Any]:
    """The --json document: the exact reply, and rates only when they mean something (else null)."""
    from mlxtui.services.chat_sampling import rate_or_none

    return {
        "reply": reply,
        "prompt_tokens": stats.prompt_tokens,
        "prompt_tps": rate_or_none(stats.prompt_tokens, stats.prompt_tps),
        "generation_tps": rate_or_none(stats.generation_tokens, stats.generation_tps),
        "ttft_s": stats.ttft_s,
        "generation_tokens": stats.generation_tokens,
        "peak_memory_gb": stats.peak_memory_gb,
        "finish_reason": stats.finish_reason,
    }


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    given = {"max_tokens": args.max_tokens, "temperature": args.temp, "top_p": args.top_p, "seed": args.seed}
    return {k: v for k, v in given.items() if v is not None}


def make_service(args: argparse.Namespace, ctx: Context) -> Any:
    """The service that answers: an OpenAI-compatible endpoint for a URL, else a local ChatService (not yet
    loaded). One place to choose, so other back ends can be added here."""
    from mlxtui.services.chat import ChatService
    from mlxtui.services.openai_chat import OpenAIChatService, is_endpoint_url

    if is_endpoint_url(args.model):
        return OpenAIChatService(args.model)
    return ChatService(ctx)


async def _load(service: Any, args: argparse.Namespace, sampling: Any) -> Any:
    """Load the model (a local service); returns the model's own sampling defaults, or `sampling`."""
    from mlxtui.format import printable
    from mlxtui.services.events import LoadProgress, ModelLoaded, Notice

    if not hasattr(service, "load"):
        return sampling
    quiet = args.json or not sys.stderr.isatty()
    async for event in service.load(args.model):
        if isinstance(event, Notice):
            print(f"mlxtui: {printable(event.text)}", file=sys.stderr)
        elif isinstance(event, LoadProgress) and not quiet:
            print(f"\r{printable(event.stage, newlines=False)}…\033[K", end="", file=sys.stderr, flush=True)
        elif isinstance(event, ModelLoaded):
            sampling = event.sampling
            if not quiet:
                print(f"\rLoaded {printable(event.name, newlines=False)} in {event.load_s:.2f} s\033[K", file=sys.stderr)
    return sampling


async def _chat(args: argparse.Namespace, ctx: Context, service: Any) -> int:
    from mlxtui.format import printable
    from mlxtui.services.chat_sampling import SamplingSettings
    from mlxtui.services.events import ChatStats, Notice, PromptRendered, TokenDelta

    sampling = await _load(service, args, SamplingSettings(max_tokens=ctx.settings.chat.max_tokens))
    sampling = replace(sampling, **_overrides(args)).validate()
    system = args.system if args.system is not None else (ctx.settings.chat.system_prompt or None)
    messages: list[dict[str, str]] = []
    folded_told = False
    folded = False  # this run's prompt had the system prompt folded into the first user turn (JSON says so)
    plain = not args.json

    async def answer(prompt: str) -> tuple[str, Any]:
        nonlocal folded_told, folded
        messages.append({"role": "user", "content": prompt})
        parts: list[str] = []
        stats = None
        async for event in service.reply(messages, system, sampling):
            if isinstance(event, TokenDelta):
                parts.append(event.text)
                if plain:
                    print(printable(event.text), end="", flush=True)
            elif isinstance(event, ChatStats) and event.finish_reason:
                stats = event
            elif isinstance(event, Notice):
                print(f"mlxtui: {printable(event.text)}", file=sys.stderr)
            elif isinstance(event, PromptRendered) and event.system_folded and not folded_told:
                folded_told = folded = True
                print("mlxtui: the template does not support a system role; the system prompt was put in front of "
                      "the first message.", file=sys.stderr)
        reply = "".join(parts)
        messages.append({"role": "assistant", "content": reply})
        if plain and stats is not None:
            print()
            print(_summary(stats), file=sys.stderr)
        return reply, stats

    if args.prompt is not None:
        reply, stats = await answer(args.prompt)
        if args.json and stats is not None:
            document = as_json(reply, stats)
            document["system_folded"] = folded
            if hasattr(service, "ranks"):  # a cluster (--hosts)
                document.update(ranks=service.ranks, split=service.split)
            print(json.dumps(document, indent=2))
        return 0
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print(">>> ", end="", flush=True, file=sys.stderr)
        line = await _read_line()
        if not line.strip():
            return 0
        await answer(line.strip())


async def _read_line() -> str:
    """The next line of stdin, read on a daemon thread: a thread of asyncio's pool, still blocked in
    readline, would keep the process from exiting on Ctrl-C or SIGTERM until someone pressed Enter."""
    import threading

    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()

    def settle(text: str | None, error: BaseException | None) -> None:
        if line.done():
            return
        if error is not None:
            line.set_exception(error)
        else:
            line.set_result(text or "")

    def read() -> None:
        try:
            text, error = sys.stdin.readline(), None
        except (OSError, ValueError) as failed:  # stdin closed or unreadable
            text, error = None, failed
        try:
            loop.call_soon_threadsafe(settle, text, error)
        except RuntimeError:
            pass  # the loop is closed: the command is exiting anyway

    threading.Thread(target=read, name="mlxtui-stdin", daemon=True).start()
    return await line


def _check_first(args: argparse.Namespace, ctx: Context) -> None:
    """Everything that can be refused before a model loads: an empty prompt, sampling values out of range."""
    from mlxtui.services.chat_sampling import SamplingSettings
    from mlxtui.services.errors import InvalidInputError

    if args.prompt is not None and not args.prompt.strip():
        raise InvalidInputError("The prompt is empty: give --prompt some text.")
    if args.json and args.prompt is None:
        raise InvalidInputError("--json needs --prompt (it prints one reply as JSON).")
    if args.tui and (args.prompt is not None or args.json):
        raise InvalidInputError("--tui opens the app; it does not take --prompt or --json.")
    replace(SamplingSettings(max_tokens=ctx.settings.chat.max_tokens), **_overrides(args)).validate()


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Answer --prompt once (optionally as JSON), chat on stdin until an empty line, or open the app (--tui)."""
    _check_first(args, ctx)
    if args.tui:
        from mlxtui.ui.app import MlxtuiApp

        app = MlxtuiApp(ctx, settings_path=getattr(args, "config", None), chat_model=args.model)
        app.run()
        return app.return_code or 0
    if args.hosts:
        from mlxtui.commands.cluster import chat_over_hosts

        return chat_over_hosts(args, ctx, _chat)
    service = make_service(args, ctx)
    try:
        return asyncio.run(_chat(args, ctx, service))
    finally:
        # On success and on every failure (bad tokenizer, Ctrl-C, a closed pipe): stop and join the MLX thread
        # before the interpreter exits.
        if hasattr(service, "close"):
            service.close()

"""`mlxtui chat MODEL`: answer one prompt (--prompt) or chat on stdin, with the model's token rates."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from mlxtui.services import Context

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `chat` subcommand."""
    parser = sub.add_parser(
        "chat",
        help="chat with an MLX model (folder, repo id or OpenAI-compatible URL)",
        description="Chat with an MLX model: a local folder, a Hub repo id, or the URL of an OpenAI-compatible "
        "server such as mlx_lm.server. With --prompt it answers once and exits; otherwise it reads your turns "
        "from stdin (an empty line or end of input quits).",
    )
    parser.add_argument("model", help="MLX folder, repo id, or http(s):// URL of an OpenAI-compatible server")
    parser.add_argument("--system", metavar="S", default=None, help="system prompt (folded into the first turn when the template refuses one)")
    parser.add_argument("--prompt", metavar="P", default=None, help="answer this once and exit")
    parser.add_argument("--max-tokens", metavar="N", type=int, default=None, help="longest reply (default from settings: 512)")
    parser.add_argument("--temp", metavar="T", type=float, default=None, help="temperature (default from generation_config.json)")
    parser.add_argument("--top-p", metavar="P", type=float, default=None, help="nucleus sampling")
    parser.add_argument("--seed", metavar="N", type=int, default=None, help="random seed, for repeatable sampling")
    parser.add_argument("--json", action="store_true", help="with --prompt: print the reply and figures as JSON")
    parser.set_defaults(func=run)


def _summary(stats: Any) -> str:
    return (
        f"prompt: {stats.prompt_tokens} tokens, {stats.prompt_tps:.1f} tok/s · generation: {stats.generation_tokens} "
        f"tokens, {stats.generation_tps:.1f} tok/s · first token {stats.ttft_s:.3f} s · peak {stats.peak_memory_gb:.3f} GB"
    )


async def _chat(args: argparse.Namespace, ctx: Context) -> int:
    from dataclasses import replace

    from mlxtui.services.chat import ChatService, SamplingSettings
    from mlxtui.services.errors import InvalidInputError
    from mlxtui.services.events import ChatStats, LoadProgress, ModelLoaded, Notice, PromptRendered, TokenDelta
    from mlxtui.services.openai_chat import OpenAIChatService, is_endpoint_url

    if args.prompt is not None and not args.prompt.strip():
        raise InvalidInputError("The prompt is empty: give --prompt some text.")
    quiet = args.json
    sampling = SamplingSettings(max_tokens=ctx.settings.chat.max_tokens)
    service: Any
    if is_endpoint_url(args.model):
        service = OpenAIChatService(args.model)
    else:
        service = ChatService(ctx)
        async for event in service.load(args.model):
            if isinstance(event, Notice):
                print(f"mlxtui: {event.text}", file=sys.stderr)
            elif isinstance(event, LoadProgress) and not quiet and sys.stderr.isatty():
                print(f"\r{event.stage}…\033[K", end="", file=sys.stderr, flush=True)
            elif isinstance(event, ModelLoaded):
                sampling = event.sampling  # type: ignore[assignment]
                if not quiet and sys.stderr.isatty():
                    print(f"\rLoaded {event.name} in {event.load_s:.2f} s\033[K", file=sys.stderr)
    overrides = {"max_tokens": args.max_tokens, "temperature": args.temp, "top_p": args.top_p, "seed": args.seed}
    sampling = replace(sampling, **{k: v for k, v in overrides.items() if v is not None}).validate()
    system = args.system if args.system is not None else (ctx.settings.chat.system_prompt or None)

    messages: list[dict[str, str]] = []
    folded_told = False

    async def answer(prompt: str) -> tuple[str, Any]:
        nonlocal folded_told
        messages.append({"role": "user", "content": prompt})
        reply, stats = "", None
        async for event in service.reply(messages, system, sampling):
            if isinstance(event, TokenDelta):
                reply += event.text
                if not quiet:
                    print(event.text, end="", flush=True)
            elif isinstance(event, ChatStats) and event.finish_reason:
                stats = event
            elif isinstance(event, Notice):
                print(f"mlxtui: {event.text}", file=sys.stderr)
            elif isinstance(event, PromptRendered) and event.system_folded and not folded_told:
                folded_told = True
                print("mlxtui: the template does not support a system role; the system prompt was put in front of "
                      "the first message.", file=sys.stderr)
        messages.append({"role": "assistant", "content": reply})
        if not quiet:
            print()
            print(_summary(stats), file=sys.stderr)
        return reply, stats

    try:
        if args.prompt is not None:
            reply, stats = await answer(args.prompt)
            if args.json:
                print(json.dumps({
                    "reply": reply,
                    "prompt_tokens": stats.prompt_tokens,
                    "prompt_tps": stats.prompt_tps,
                    "generation_tps": stats.generation_tps,
                    "ttft_s": stats.ttft_s,
                    "generation_tokens": stats.generation_tokens,
                    "peak_memory_gb": stats.peak_memory_gb,
                    "finish_reason": stats.finish_reason,
                }, indent=2))
            return 0
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                print(">>> ", end="", flush=True, file=sys.stderr)
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line.strip():
                return 0
            await answer(line.strip())
    finally:
        if hasattr(service, "close"):
            service.close()


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Answer --prompt once (optionally as JSON) or chat on stdin until an empty line."""
    return asyncio.run(_chat(args, ctx))

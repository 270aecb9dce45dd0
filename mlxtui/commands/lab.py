"""`mlxtui lab SOURCE --variants 8bit,4bit,2bit [--data FILE|hf://datasets/OWNER/NAME] [--json]`: build and measure variants side by side."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from contextlib import aclosing
from pathlib import Path
from typing import Any

from mlxtui.services import Context

__all__ = ["register", "run", "format_table"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `lab` subcommand."""
    parser = sub.add_parser(
        "lab",
        help="build quantized variants from one download and measure size, speed and quality side by side",
        description="Builds each variant with mlx-lm's own functions, then measures it in a fresh process against "
        "the unquantized model on the same held-out text: size, bits per weight, peak memory, tokens/s, time to "
        "first token, perplexity (± standard error), mean and 99th-percentile KL divergence, top-1 agreement. "
        "The reference's distributions are cached, so adding a variant later costs only that variant. "
        "See docs/lab.md for the variant names and how each figure is measured.",
    )
    parser.add_argument("source", help="the unquantized model's folder")
    parser.add_argument("--variants", required=True,
                        help="comma-separated: 8bit,6bit,5bit,4bit,3bit,2bit,4bit-g32,mxfp4,nvfp4,mxfp8,mixed_3_6,"
                             "4bit-gptq,4bit-awq,4bit-dwq,4.5bit-dq")
    parser.add_argument("--data", default=None, metavar="FILE|hf://datasets/OWNER/NAME[/PATH]",
                        help="evaluation (and calibration) text: a UTF-8 file, or a Hub dataset's .txt file or "
                             ".jsonl/.json rows with a \"text\" field (without PATH: its one .txt, else its one "
                             ".jsonl/.json); default: the built-in text")
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per evaluation sequence (default 256)")
    parser.add_argument("--max-sequences", type=int, default=None, help="evaluate at most this many sequences (default 64; 0 = all)")
    parser.add_argument("--output", default=None, help="folder for the variants (default: <models dir>/lab/<name>)")
    parser.add_argument("--prompt-tokens", type=int, default=128, help="prompt length for the speed test")
    parser.add_argument("--generation-tokens", type=int, default=64, help="tokens generated in the speed test")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--publish", metavar="OWNER", default=None,
                        help="then upload each variant to OWNER/<name>-<variant>, each card linking its siblings")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    return asyncio.run(_run(args, ctx))


async def _run(args: argparse.Namespace, ctx: Context) -> int:
    from mlxtui.services.lab import (
        DEFAULT_MAX_SEQUENCES, DEFAULT_SEQ_LEN, LabFinished, LabProgress, LabReferenceReady, LabService,
        LabVariantMeasured,
    )

    service = LabService(ctx)
    plan = await service.plan(
        args.source, args.variants, data=args.data,
        seq_len=args.seq_len or DEFAULT_SEQ_LEN,
        max_sequences=DEFAULT_MAX_SEQUENCES if args.max_sequences is None else args.max_sequences,
        out_dir=Path(args.output).expanduser() if args.output else None,
    )
    print(f"mlxtui: lab on {plan.folder.name}: {plan.sequences} sequences of {plan.seq_len} tokens from "
          f"{plan.text_description}", file=sys.stderr)
    result: dict[str, Any] | None = None
    last = 0.0
    said = ""
    async with aclosing(service.run(plan, prompt_tokens=args.prompt_tokens, gen_tokens=args.generation_tokens)) as events:
        async for event in events:
            match event:
                case LabProgress(stage=stage, variant=variant, message=message) if message:
                    line = f"mlxtui: {stage} {variant}: {message}".replace("  ", " ")
                    if line != said:  # a conversion reports its step many times a second: say each step once
                        said = line
                        print(line, file=sys.stderr)
                case LabProgress(stage=stage, variant=variant, done=done, total=total) if total:
                    if time.monotonic() - last > 2 or done >= total:
                        last = time.monotonic()
                        print(f"mlxtui: {stage} {variant} {done:g}/{total:g}", file=sys.stderr)
                case LabReferenceReady(perplexity=ppl, perplexity_se=se, cached=cached):
                    how = "cached" if cached else "computed"
                    print(f"mlxtui: reference perplexity {ppl:.3f} ± {se:.3f} ({how})", file=sys.stderr)
                case LabVariantMeasured(row=row):
                    print(f"mlxtui: {row['name']}: KL {row['kl_mean']:.4f}, top-1 {row['top1_agreement']:.1%}",
                          file=sys.stderr)
                case LabFinished(result=done):
                    result = done
    if result is None:
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_table(result))
    if args.publish:
        from mlxtui.services.lab_publish import PublishPlanned, publish

        async for event in publish(ctx, plan.out_dir, args.publish, [v.name for v in plan.variants]):
            if isinstance(event, PublishPlanned):
                for name, repo in event.repos.items():
                    print(f"mlxtui: publishing {name} to {repo}", file=sys.stderr)
        print("mlxtui: published " + ", ".join(f"{args.publish}/{Path(r['path']).name}" for r in result["variants"]),
              file=sys.stderr)
    return 0


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the result (what the pane shows, without the plot)."""
    from mlxtui.format import human_bytes

    head = ("variant", "bpw", "size", "peak mem", "gen tok/s", "TTFT s", "ppl", "± se", "KL mean", "KL p99", "top-1")
    ref = result["reference"]
    lines = [f"reference {ref['name']}: ppl {ref['perplexity']:.3f} ± {ref['perplexity_se']:.3f}, "
             f"{human_bytes(ref['bytes'])}; text: {result['eval_text']}, {result['eval_tokens']} tokens, "
             f"{result['sequences']} sequences of {result['seq_len']}"]
    rows = [head] + [
        (r["name"], f"{r['bits_per_weight']:.2f}", human_bytes(r["bytes"]), human_bytes(r["peak_memory_bytes"]),
         f"{r['generation_tps']:.0f}", f"{r['ttft_s']:.3f}", f"{r['perplexity']:.3f}", f"{r['perplexity_se']:.3f}",
         f"{r['kl_mean']:.4f}", f"{r['kl_p99']:.4f}", f"{r['top1_agreement']:.1%}")
        for r in result["variants"]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)

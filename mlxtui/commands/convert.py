"""`mlxtui convert`: the flags of mlx_lm.convert, run as a job (progress on stderr, output folders on stdout)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any, TextIO

from mlxtui.format import human_bytes, printable
from mlxtui.services import Context
from mlxtui.services.convert_options import DTYPES, MODES, RECIPES

__all__ = ["register", "run", "ProgressPrinter"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `convert` subcommand, with mlx_lm.convert's own flags."""
    parser = sub.add_parser(
        "convert",
        help="convert a Hub repo or local folder to MLX (the flags of mlx_lm.convert)",
        description="Convert with mlx-lm's own functions in a worker process that survives a closed terminal. "
        "Output is byte-identical to mlx_lm.convert with the same options, plus mlxtui-provenance.json. "
        "Progress goes to stderr, the output folder(s) to stdout. An existing output folder is never overwritten.",
    )
    parser.add_argument("--hf-path", "--model", dest="hf_path", required=True, help="repo id or local folder")
    parser.add_argument(
        "--mlx-path", help="output folder (default: <models dir>/<name>-<quantization>, e.g. ...-4bit)"
    )
    parser.add_argument("-q", "--quantize", action="store_true", help="generate a quantized model")
    parser.add_argument("--q-group-size", type=int, default=None, help="group size for quantization (32, 64, 128)")
    parser.add_argument("--q-bits", type=int, default=None, help="bits per weight (2, 3, 4, 5, 6, 8)")
    parser.add_argument("--q-mode", default=None, choices=list(MODES), help="quantization mode (default: affine)")
    parser.add_argument("--quant-predicate", choices=list(RECIPES), default=None, help="mixed-bit quantization recipe")
    parser.add_argument("--dtype", choices=list(DTYPES), default=None, help="dtype of non-quantized parameters")
    parser.add_argument("-d", "--dequantize", action="store_true", help="dequantize a quantized model")
    parser.add_argument("--revision", default=None, help="branch, tag or commit of the repo")
    parser.add_argument("--trust-remote-code", action="store_true", help="trust remote code when loading the tokenizer (risky)")
    parser.add_argument("--upload-repo", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--also",
        metavar="VARIANTS",
        default="",
        help="more outputs from the same download, run one after another: e.g. 8bit,mixed_3_6,bf16",
    )
    parser.add_argument("--detach", action="store_true", help="start the job, print its id and return (see `mlxtui jobs`)")
    parser.set_defaults(func=run)


def _options(args: argparse.Namespace) -> list[Any]:
    from mlxtui.services.convert import ConvertOptions, options_from_label

    first = ConvertOptions(
        quantize=args.quantize,
        q_bits=args.q_bits,
        q_group_size=args.q_group_size,
        q_mode=args.q_mode or "affine",
        quant_predicate=args.quant_predicate,
        dtype=args.dtype,
        dequantize=args.dequantize,
        trust_remote_code=args.trust_remote_code,
    )
    more = [options_from_label(label, first) for label in args.also.split(",") if label.strip()]
    return [first, *more]


class ProgressPrinter:
    """Prints job events to a stream: one line per stage change, throttled progress, the worker's lines."""

    def __init__(self, stream: TextIO, labels: list[str], *, interval_s: float = 1.0) -> None:
        self.stream = stream
        self.labels = labels
        self.interval_s = interval_s
        self._last: dict[tuple[str, int, str], float] = {}
        self._tty = stream.isatty()

    def __call__(self, event: object) -> None:
        from mlxtui.services.events import ConvertFinished, ConvertLog, ConvertProgress, ConvertVariantDone

        if isinstance(event, ConvertLog):
            if not event.text.startswith("[mlxtui]"):
                self._line(f"  {event.text}")
        elif isinstance(event, ConvertProgress):
            if event.stage == "check":
                self._line(f"job {event.job_id} started")
                return
            key = (event.stage, event.variant, event.unit)
            now = time.monotonic()
            final = event.total is not None and event.done >= event.total
            if not final and now - self._last.get(key, 0.0) < self.interval_s:
                return
            self._last[key] = now
            self._line(self._describe(event))
        elif isinstance(event, ConvertVariantDone):
            bpw = f"{event.bits_per_weight:.3f} bits/weight, " if event.bits_per_weight else ""
            self._line(f"done: {event.output} ({bpw}{human_bytes(event.size_bytes)}, {event.elapsed_s:.1f} s)")
        elif isinstance(event, ConvertFinished):
            if event.state != "done":
                self._line(f"{event.state}: {event.message}")

    def _describe(self, event: Any) -> str:
        who = self.labels[event.variant] if 0 <= event.variant < len(self.labels) else "all"
        head = f"[{who}] {event.stage}"
        if event.unit == "bytes":
            text = f"{head}: {human_bytes(event.done)} of {human_bytes(event.total)}"
            if event.rate:
                text += f" at {human_bytes(event.rate)}/s"
            if event.eta_s is not None and event.total and event.done < event.total:
                text += f", {event.eta_s:.0f} s left"
            return text
        if event.total:
            text = f"{head}: {event.done:g}/{event.total:g} {event.unit}"
            return text + (f" ({event.item})" if event.item else "")
        return head

    def _line(self, text: str) -> None:
        # the worker's lines and messages quote model files and mlx-lm: escapes shown, never obeyed
        print(f"mlxtui: {printable(text, newlines=False)}", file=self.stream, flush=True)


async def _follow(service: Any, job_id: str, printer: ProgressPrinter) -> Any:
    from mlxtui.services.events import ConvertFinished

    finished = None
    async for event in service.follow(job_id):
        printer(event)
        if isinstance(event, ConvertFinished):
            finished = event
    return finished


def run(args: argparse.Namespace, ctx: Context) -> int:
    from mlxtui.services.convert import ConvertService
    from mlxtui.services.errors import InvalidInputError

    if args.upload_repo:
        raise InvalidInputError(
            "mlxtui convert does not upload (mlx-lm's uploader rewrites README.md and fails with huggingface_hub 2.x); "
            "convert first, then run `mlxtui upload FOLDER`."
        )
    given = [flag for flag, value in (("--q-bits", args.q_bits), ("--q-group-size", args.q_group_size),
                                      ("--q-mode", args.q_mode), ("--quant-predicate", args.quant_predicate))
             if value is not None]
    if given and not args.quantize:  # mlx-lm would ignore them and write an unquantized model
        raise InvalidInputError(f"{', '.join(given)} only apply with -q (--quantize): add -q to quantize, or drop "
                                f"{'it' if len(given) == 1 else 'them'} to convert without quantizing.")
    variants = _options(args)
    for options in variants:
        options.validate()  # before any process starts
    service = ConvertService(ctx)
    outputs = [args.mlx_path] + [None] * (len(variants) - 1)
    # The worker starts now and imports mlx-lm while the checks run; it is stopped if they fail.
    warm = service.prewarm()
    try:
        plan = asyncio.run(service.plan(args.hf_path, variants, revision=args.revision, outputs=outputs))
    except BaseException:
        service.abandon(warm)
        raise
    job = service.start_sync(plan, warm)
    if args.detach:
        print(job.id)
        return 0
    printer = ProgressPrinter(sys.stderr, [v.label for v in job.variants])
    printer._line(f"job {job.id}: {plan.source} -> " + ", ".join(str(p) for _, p in plan.variants))
    try:
        finished = asyncio.run(_follow(service, job.id, printer))
    except KeyboardInterrupt:
        service.cancel_sync(job.id)
        print("mlxtui: cancelled; the partial output was removed (files already downloaded stay in the cache)",
              file=sys.stderr)
        return 130
    job = service.job(job.id)
    for variant in job.variants:
        if variant.state == "done":
            print(variant.output)
    if finished is None or finished.state != "done":
        message = finished.message if finished else "the job ended without a result"
        print(f"mlxtui: conversion failed: {printable(message, newlines=False)}", file=sys.stderr)
        return 1
    return 0

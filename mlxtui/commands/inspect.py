"""`mlxtui inspect REPO_OR_PATH`: the mlx-lm verdict, sizes and template facts, before any download."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from mlxtui.format import human_bytes, human_count, printable
from mlxtui.services import Context

__all__ = ["register", "run", "format_report"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `inspect` subcommand."""
    parser = sub.add_parser(
        "inspect",
        help="check a model before converting it (reads config.json and small files only)",
        description="Read config.json, model info, tokenizer_config.json / chat_template.jinja, "
        "generation_config.json and the card's front matter of a Hub repo or local folder, and say whether "
        "the installed mlx-lm can convert it, how big each quantization would be, whether it fits this "
        "machine, and whether its chat template accepts a system message. Exit 0 when mlx-lm can convert "
        "it, 2 when it was inspected but cannot be converted, 4 when it is gated and its files could not "
        "be read (after printing what could be), 3 when it was not found, 5 offline, 1 other failures.",
    )
    parser.add_argument("source", metavar="REPO_OR_PATH", help="a repo id (org/name) or a local model folder")
    parser.add_argument("--revision", metavar="R", help="branch, tag or commit (default: main)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)




def _p(value: Any) -> str:
    """One field of remote text, safe for a terminal (control characters shown, never sent)."""
    return printable(value, newlines=False)


def format_report(data: dict[str, Any]) -> str:
    """The report as plain text for a terminal; every remote string goes through mlxtui.format.printable."""
    lines = [_p(data['repo_id']) + (f" @ {_p(data['revision'])}" if data.get("revision") else "")]
    lines.append(f"  model_type: {_p(data.get('model_type') or '?')}   "
                 f"architectures: {_p(', '.join(data.get('architectures') or []) or '?')}")
    verdict = "supported by mlx-lm" if data["supported"] else "NOT convertible with mlx-lm"
    lines.append(f"  verdict: {verdict}" + (f" {_p(data['mlx_lm_version'])}" if data.get("mlx_lm_version") else ""))
    lines += [f"    - {_p(p)}" for p in data["problems"]]
    lines += [f"    note: {_p(n)}" for n in data.get("notes", [])]
    lines.append(f"  parameters: {human_count(data.get('parameters'))} ({data.get('parameters_source') or 'unknown'})"
                 f"   dtype: {_p(data.get('dtype'))}")
    if data["estimates"]:
        fits = data["memory"]["fits"]
        budget = human_bytes(data["memory"]["budget_bytes"]) if data["memory"].get("budget_bytes") else "?"
        lines.append(f"  the model needs:  quantization   bits/weight   model size   fits this machine's {budget}")
        for e in data["estimates"]:
            fit = {True: "yes", False: "no", None: "?"}[fits.get(e["quantization"])]
            lines.append(f"                    {e['quantization']:<13}{e['bits_per_weight']:>8.3f}      {human_bytes(e['bytes']):<12} {fit}")
    kv = data["kv_cache"]
    lines.append("  KV cache: " + ", ".join(f"{int(k) // 1024}k tokens {human_bytes(v)}" for k, v in kv.items()))
    mem, disk = data["memory"], data["disk"]
    lines.append(f"  this machine: {human_bytes(mem['total_bytes'])} memory, {human_bytes(mem['budget_bytes'])} of it for a "
                 "model (the budget)")
    lines.append(f"  disk: {human_bytes(disk['free_bytes'])} free; download {human_bytes(disk['download_bytes'])} + "
                 f"{disk['output_quantization']} output {human_bytes(disk['output_bytes'])}"
                 + {True: " fits", False: " DOES NOT FIT", None: ""}[disk["fits"]])
    chat = data["chat_template"]
    if not chat["present"] and data.get("incomplete"):
        lines.append("  chat template: not readable (the repo's files need access)")
    elif not chat["present"]:
        lines.append("  chat template: none (plain completion only)")
    else:
        system = {True: "accepts a system message", False: "REJECTS a system message", None: "untested"}[chat["system_role"]]
        lines.append(f"  chat template: {chat['source']}, {system}" + (f" ({_p(chat['error'])})" if chat.get("error") else ""))
    gated = data.get("gated")
    lines.append(f"  license: {_p(data.get('license') or '?')}   gated: {_p(gated) if gated else 'no'}"
                 + ("   private" if data.get("private") else ""))
    convs = data.get("conversions") or []
    if convs:
        lines.append("  existing MLX conversions:")
        for c in convs:
            lines.append(f"    {_p(c.get('repo_id'))}  {_p(c.get('quantization') or '?')}  "
                         f"mlx-lm {_p(c.get('mlx_lm_version') or '?')}")
    else:
        lines.append("  existing MLX conversions: none found")
    return "\n".join(lines)


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Print the report; exit 0 if convertible, 2 if not, 1 (via MlxtuiError) if it could not be inspected."""
    from mlxtui.services.errors import GatedError, UnsupportedModelError
    from mlxtui.services.events import Notice
    from mlxtui.services.inspect import InspectReport, InspectService

    async def collect() -> InspectReport:
        report = None
        async for event in InspectService(ctx).inspect(args.source, args.revision):
            if isinstance(event, Notice):
                print(f"mlxtui: {_p(event.text)}", file=sys.stderr)
            else:
                report = event
        assert report is not None
        return report

    report = asyncio.run(collect())
    data = report.to_dict()
    if args.json:
        # JSON escapes control characters itself (ensure_ascii), so the document is terminal-safe as it is
        print(json.dumps(data, indent=2, default=str))
    else:
        print(format_report(data))
    if report.incomplete:
        # the report says why (once); the exit code tells scripts that the verdict is not the whole story
        print(f"mlxtui: {_p(report.repo_id)} could not be read in full; see above.", file=sys.stderr)
        return GatedError.exit_code
    if not report.supported:
        print(f"mlxtui: {_p(report.repo_id)} cannot be converted: {_p(report.problems[0])}", file=sys.stderr)
        return UnsupportedModelError.exit_code
    return 0

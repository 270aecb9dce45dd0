"""Reading a lab result: the Pareto front, a sentence per pick, and the model card's "Quantization quality" section.

Pure functions over the object ``mlxtui lab --json`` prints (services.lab.result_object); the pane, the
command and the card builder share them. No mlx, no Textual.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pareto_names", "pick_sentence", "card_section", "card_section_for", "size_kl_plot", "CARD_HEADING",
           "QUALITY_KEY", "RESULTS_FILE"]

CARD_HEADING = "## Quantization quality"
#: the lab's results, beside the variant folders it built (services.lab writes it)
RESULTS_FILE = "lab-results.json"
#: the quality figure the front and the plot use: lower is better
QUALITY_KEY = "kl_mean"


def pareto_names(rows: list[dict[str, Any]], size_key: str = "bytes", quality_key: str = QUALITY_KEY) -> set[str]:
    """Names of the variants no other variant beats on both size and quality (smaller and lower KL)."""
    front = set()
    for row in rows:
        dominated = any(
            other is not row
            and other[size_key] <= row[size_key]
            and other[quality_key] <= row[quality_key]
            and (other[size_key] < row[size_key] or other[quality_key] < row[quality_key])
            for other in rows
        )
        if not dominated:
            front.add(row["name"])
    return front


def _pretty(name: str) -> str:
    """4bit -> 4-bit g64, 4bit-g32 -> 4-bit g32; other names stay as they are."""
    head, _, rest = name.partition("bit")
    if head.isdigit() and (rest == "" or rest.startswith("-g") and rest[2:].isdigit()):
        return f"{head}-bit g{rest[2:] or 64}"
    return name


def pick_sentence(row: dict[str, Any], reference: dict[str, Any]) -> str:
    """What a pick costs, in words: '4-bit g64: 3.6× smaller, top-1 agreement 83 %, perplexity +1.2 %'."""
    ratio = reference["bytes"] / row["bytes"] if row.get("bytes") else 0.0
    ppl_change = (row["perplexity"] / reference["perplexity"] - 1) * 100 if reference.get("perplexity") else 0.0
    return (
        f"{_pretty(row['name'])}: {ratio:.1f}× smaller, top-1 agreement {row['top1_agreement'] * 100:.0f} %, "
        f"perplexity {ppl_change:+.1f} %, KL {row['kl_mean']:.4f}"
    )


def card_section(result: dict[str, Any], names: list[str] | None = None, this: str | None = None) -> str:
    """The "Quantization quality" markdown for a model card: the chosen variants' table, the method, the text
    and its token count, so readers can reproduce it. `this` marks the variant the card belongs to."""
    ref = result["reference"]
    rows = [r for r in result["variants"] if names is None or r["name"] in names]
    lines = [
        CARD_HEADING,
        "",
        f"Measured with `mlxtui lab` against the unquantized model ({ref['name']}, perplexity "
        f"{ref['perplexity']:.3f} ± {ref['perplexity_se']:.3f}) on {result['eval_text']}: "
        f"{result['sequences']} sequences of {result['seq_len']} tokens ({result['tokens_evaluated']} predictions). "
        "KL divergence is of the next-token distributions against the unquantized model; top-1 agreement is how "
        "often both pick the same most likely token. Lower KL and perplexity, higher agreement are better.",
        "",
        "| Variant | Bits/weight | Size | Perplexity | KL mean | KL p99 | Top-1 agreement |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    repos = result.get("repos") if isinstance(result.get("repos"), dict) else {}
    endpoint = str(result.get("repos_endpoint") or "https://huggingface.co").rstrip("/")
    for row in rows:
        name = row["name"]
        if name != this and isinstance(repos.get(name), str):
            name = f"[{name}]({endpoint}/{repos[name]})"  # a published sibling
        name = f"**{name}** (this model)" if row["name"] == this else name
        lines.append(
            f"| {name} | {row['bits_per_weight']:.2f} | {row['bytes'] / 1e6:.1f} MB | "
            f"{row['perplexity']:.3f} ± {row['perplexity_se']:.3f} | {row['kl_mean']:.4f} | {row['kl_p99']:.4f} | "
            f"{row['top1_agreement'] * 100:.1f} % |"
        )
    lines += ["", f"Reproduce: `mlxtui lab {ref['name']} --variants {','.join(r['name'] for r in rows)} "
              f"--seq-len {result['seq_len']}`", ""]
    return "\n".join(lines)


def size_kl_plot(rows: list[dict[str, Any]], width: int = 36, height: int = 7) -> tuple[list[str], list[tuple[str, str]]]:
    """Size (x, bytes) against KL divergence (y, log scale) as text: (lines, [(marker, name)]).

    Each variant is drawn as its marker (1, 2, 3 ... in row order); a cell shared by several shows '*'.
    """
    import math

    markers = [(str(i + 1) if i < 9 else chr(ord("a") + i - 9), row["name"]) for i, row in enumerate(rows)]
    if not rows:
        return [], []
    sizes = [row["bytes"] for row in rows]
    kls = [math.log10(max(row[QUALITY_KEY], 1e-6)) for row in rows]
    x0, x1 = min(sizes), max(sizes)
    y0, y1 = min(kls), max(kls)
    grid = [[" "] * width for _ in range(height)]
    for (marker, _), size, kl in zip(markers, sizes, kls):
        x = 0 if x1 == x0 else round((size - x0) / (x1 - x0) * (width - 1))
        y = 0 if y1 == y0 else round((kl - y0) / (y1 - y0) * (height - 1))
        cell = grid[height - 1 - y]
        cell[x] = marker if cell[x] == " " else "*"
    top, bottom = f"{10 ** y1:.3g}", f"{10 ** y0:.3g}"
    pad = max(len(top), len(bottom))
    lines = []
    for i, cells in enumerate(grid):
        label = top if i == 0 else bottom if i == height - 1 else ""
        lines.append(f"{label:>{pad}} │{''.join(cells)}")
    lines.append(" " * pad + " └" + "─" * width)
    from mlxtui.format import human_bytes

    left, right = human_bytes(x0), human_bytes(x1)
    lines.append(" " * (pad + 2) + left + right.rjust(width - len(left)))
    return lines, markers


def card_section_for(folder: Any) -> str | None:
    """The "Quantization quality" section for a variant folder the lab measured, else None.

    Reads the lab's results file beside the folder; every variant measured on the same text is in the table,
    this one in bold. A missing or malformed file gives None (a card is never blocked by the lab)."""
    from pathlib import Path

    from mlxtui.services.bounded import BadFileError
    from mlxtui.services.modelfolder import read_small_json

    folder = Path(folder).resolve()
    try:
        result = read_small_json(folder.parent, RESULTS_FILE)
    except (BadFileError, OSError):
        return None
    try:
        rows = result["variants"] if result else []
        mine = [row for row in rows if Path(str(row["path"])).resolve() == folder]
        return card_section(result, this=mine[0]["name"]) if mine else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None

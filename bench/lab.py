"""Lab figures against mlx-lm's own tools run by themselves on the same variants, and the lab's total time
against the sum of those raw runs.

For each variant the raw workflow is: ``python -m mlx_lm convert`` (-q with the variant's bits, group size,
mode or recipe), then mlx-lm's perplexity, then ``python -m mlx_lm benchmark``, each a fresh process, plus one
perplexity run on the unquantized model. ``mlx_lm.perplexity``'s command line loads its text through the
``datasets`` package (not installed here, and it would fetch a Hub data set), so the raw perplexity run is a
fresh process calling ``mlx_lm.perplexity.eval_ppl`` (its own code) on the same token sequences the lab
evaluated. The lab is ``mlxtui lab SOURCE --variants ... --json`` with an empty reference cache.

    python bench/lab.py [--source FOLDER] [--variants 8bit,4bit,2bit,4bit-g32] [--seq-len 128]

Prints a table: lab perplexity ± SE next to mlx-lm's (they must agree within the standard error), the lab's
generation tokens/s next to mlx_lm.benchmark's, and the time ratio lab / raw (goal <= 1.2).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SOURCE = ROOT / "mlxtui" / "devhub" / "trained" / "tiny-trained-llama"

_PPL = r"""
import json, sys
import mlx.core as mx, numpy as np
from mlx_lm import load
from mlx_lm.perplexity import eval_ppl
model, _ = load(sys.argv[1])
ppl, se = eval_ppl(model, mx.array(np.load(sys.argv[2])), batch_size=8)
print(json.dumps({"perplexity": ppl, "perplexity_se": se}))
"""


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--variants", default="8bit,4bit,2bit,4bit-g32")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--max-sequences", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--generation-tokens", type=int, default=64)
    args = parser.parse_args()

    from mlxtui.services.lab_variants import parse_variants

    variants = parse_variants(args.variants)
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="mlxtui-bench-lab-") as tmp_name:
        tmp = Path(tmp_name)
        env = dict(os.environ, XDG_DATA_HOME=str(tmp / "data"), XDG_CONFIG_HOME=str(tmp / "config"),
                   HF_HOME=str(tmp / "hf"), HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
        # 1. the lab, reference cache empty
        lab_s, out = _timed([python, "-m", "mlxtui", "lab", str(args.source), "--variants", args.variants, "--json",
                             "--seq-len", str(args.seq_len), "--max-sequences", str(args.max_sequences),
                             "--prompt-tokens", str(args.prompt_tokens), "--generation-tokens",
                             str(args.generation_tokens), "--output", str(tmp / "lab")], env)
        lab = json.loads(out)
        tokens = next((tmp / "data" / "mlxtui" / "lab" / "work").glob("*/tokens.npy"))

        # 2. the raw tools, one process each
        raw_s = 0.0
        ref_s, out = _timed([python, "-c", _PPL, str(args.source), str(tokens)], env)
        raw_s += ref_s
        ref_raw = json.loads(out.strip().splitlines()[-1])
        rows = []
        for variant, row in zip(variants, lab["variants"]):
            folder = tmp / "raw" / variant.name
            flags = variant.options.mlx_lm_args() if variant.options else None
            if flags is None:
                print(f"{variant.name}: a learned method; mlx-lm's own tool would fetch calibration data, skipped")
                continue
            convert_s, _ = _timed([python, "-m", "mlx_lm", "convert", "--hf-path", str(args.source), "--mlx-path",
                                   str(folder), *flags], env)
            ppl_s, out = _timed([python, "-c", _PPL, str(folder), str(tokens)], env)
            ppl = json.loads(out.strip().splitlines()[-1])
            bench_s, out = _timed([python, "-m", "mlx_lm", "benchmark", "--model", str(folder), "-p",
                                   str(args.prompt_tokens), "-g", str(args.generation_tokens), "-n", "2"], env)
            found = re.search(r"Averages: prompt_tps=([\d.]+), generation_tps=([\d.]+), peak_memory=([\d.]+)", out)
            raw_s += convert_s + ppl_s + bench_s
            rows.append((row, ppl, found, convert_s + ppl_s + bench_s))

    print(f"source {args.source.name}, {lab['sequences']} sequences of {lab['seq_len']} tokens, {lab['eval_text']}")
    print(f"reference: lab ppl {lab['reference']['perplexity']:.4f} ± {lab['reference']['perplexity_se']:.4f}, "
          f"mlx_lm.perplexity {ref_raw['perplexity']:.4f} ± {ref_raw['perplexity_se']:.4f}")
    print(f"{'variant':10} {'lab ppl':>16} {'mlx-lm ppl':>16} {'agree':>6} {'lab gen/s':>9} {'mlx-lm gen/s':>12}"
          f" {'lab prompt/s':>12} {'mlx-lm prompt/s':>15}")
    for row, ppl, found, _ in rows:
        agree = abs(row["perplexity"] - ppl["perplexity"]) <= max(row["perplexity_se"], ppl["perplexity_se"])
        gen = float(found.group(2)) if found else float("nan")
        prompt = float(found.group(1)) if found else float("nan")
        print(f"{row['name']:10} {row['perplexity']:9.4f} ± {row['perplexity_se']:.4f} "
              f"{ppl['perplexity']:9.4f} ± {ppl['perplexity_se']:.4f} {'yes' if agree else 'NO':>6} "
              f"{row['generation_tps']:9.0f} {gen:12.0f} {row['prompt_tps']:12.0f} {prompt:15.0f}")
    print(f"lab total {lab_s:.1f} s (its own clock {lab['elapsed_s']:.1f} s) vs raw runs {raw_s:.1f} s: "
          f"ratio {lab_s / raw_s:.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main()

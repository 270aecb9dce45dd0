"""One measurement in a fresh process: ``python -m mlxtui.services.lab_measure SPEC.json``.

A fresh process per model, so its peak memory is that model's own (load, then generate) and nothing of an
earlier model lingers. SPEC.json says what to do; the result is written atomically to ``spec["result"]``:

- ``mode: "reference"``: run the unquantized model over the evaluation sequences and write its next-token
  log-probabilities into the reference cache folder (``logprobs.npy`` + ``meta.json``, written to a temporary
  sibling and renamed, so a cache folder is always complete); report its perplexity.
- ``mode: "variant"``: load a variant, time prompt processing and generation (``stream_generate``, end of
  sequence ignored, as ``mlx_lm.benchmark`` does), read the peak memory, then run the same sequences and compare
  with the cached reference: perplexity with its standard error (as ``mlx_lm.perplexity`` computes them), mean
  and 99th-percentile KL divergence of the next-token distributions, and top-1 agreement.

Progress goes to stdout as JSON lines (``{"done": i, "total": n}``), for the lab's progress bar.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "measure"]

REF_LOGPROBS = "logprobs.npy"
REF_META = "meta.json"
#: a reference cache larger than this stores float16 log-probabilities instead of float32
_FLOAT32_LIMIT = 1 << 30


def _say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def _batches(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def _speed(model: Any, tokenizer: Any, prompt: list[int], gen_tokens: int, trials: int) -> dict[str, float]:
    """Mean prompt and generation tokens/s and time to first token over `trials` runs, after one warm-up run
    of the same size (as mlx_lm.benchmark does)."""
    import mlx.core as mx
    from mlx_lm import stream_generate

    tokenizer._eos_token_ids = set()  # as mlx_lm.benchmark: never stop early
    for _ in stream_generate(model, tokenizer, prompt, max_tokens=gen_tokens):  # warm-up: the same run, as it does
        pass
    runs = []
    for _ in range(trials):
        start = time.perf_counter()
        ttft = None
        last = None
        for last in stream_generate(model, tokenizer, prompt, max_tokens=gen_tokens):
            if ttft is None:
                ttft = time.perf_counter() - start
        assert last is not None
        runs.append((last.prompt_tps, last.generation_tps, ttft or 0.0))
    mx.synchronize()
    return {
        "prompt_tps": sum(r[0] for r in runs) / len(runs),
        "generation_tps": sum(r[1] for r in runs) / len(runs),
        "ttft_s": sum(r[2] for r in runs) / len(runs),
    }


def _log_softmax(logits: Any) -> Any:
    import mlx.core as mx

    logits = logits.astype(mx.float32)
    return logits - mx.logsumexp(logits, axis=-1, keepdims=True)


def _reference(spec: dict[str, Any], model: Any, data: Any) -> dict[str, Any]:
    """Write the reference's log-probabilities to the cache folder; return its perplexity."""
    import mlx.core as mx
    import numpy as np

    cache = Path(spec["cache"])
    tmp = cache.with_name(cache.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n_seq, seq_len = data.shape
    vocab = None
    store = None
    losses = []
    batches = _batches(n_seq, spec["batch_size"])
    for i, (s, e) in enumerate(batches):
        batch = data[s:e]
        logprobs = _log_softmax(model(batch[:, :-1]))
        nll = -mx.take_along_axis(logprobs, batch[:, 1:, None], axis=-1).squeeze(-1)
        mx.eval(logprobs, nll)
        if store is None:
            vocab = logprobs.shape[-1]
            dtype = np.float32 if n_seq * (seq_len - 1) * vocab * 4 <= _FLOAT32_LIMIT else np.float16
            store = np.lib.format.open_memmap(tmp / REF_LOGPROBS, mode="w+", dtype=dtype, shape=(n_seq, seq_len - 1, vocab))
        store[s:e] = np.array(logprobs).astype(store.dtype)
        losses.append(np.array(nll).reshape(-1))
        _say(done=i + 1, total=len(batches))
    assert store is not None
    store.flush()
    del store
    ppl, se = _perplexity(np.concatenate(losses))
    meta = {"perplexity": ppl, "perplexity_se": se, "sequences": n_seq, "seq_len": seq_len, "vocab": vocab,
            "tokens_sha256": spec.get("tokens_sha256", "")}
    (tmp / REF_META).write_text(json.dumps(meta, indent=2))
    if cache.exists():  # another run finished it first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, cache)
    return meta


def _perplexity(losses: Any) -> tuple[float, float]:
    """Perplexity and its standard error, as mlx_lm.perplexity computes them (delta method)."""
    import numpy as np

    losses = losses.astype(np.float64)
    ppl = math.exp(float(losses.mean()))
    se = float(losses.std(ddof=1)) / math.sqrt(losses.size) if losses.size > 1 else 0.0
    return ppl, ppl * se


def _quality(spec: dict[str, Any], model: Any, data: Any) -> dict[str, Any]:
    """Perplexity, KL divergence against the cached reference, and top-1 agreement."""
    import mlx.core as mx
    import numpy as np

    reference = np.load(Path(spec["cache"]) / REF_LOGPROBS, mmap_mode="r")
    n_seq = data.shape[0]
    losses, kls, agree = [], [], 0
    batches = _batches(n_seq, spec["batch_size"])
    for i, (s, e) in enumerate(batches):
        batch = data[s:e]
        logprobs = _log_softmax(model(batch[:, :-1]))
        ref = mx.array(np.asarray(reference[s:e], dtype=np.float32))
        nll = -mx.take_along_axis(logprobs, batch[:, 1:, None], axis=-1).squeeze(-1)
        kl = mx.sum(mx.exp(ref) * (ref - logprobs), axis=-1)
        same = mx.sum(mx.argmax(ref, axis=-1) == mx.argmax(logprobs, axis=-1))
        mx.eval(nll, kl, same)
        losses.append(np.array(nll).reshape(-1))
        kls.append(np.array(kl).reshape(-1))
        agree += int(same.item())
        _say(done=i + 1, total=len(batches))
    all_kl = np.maximum(np.concatenate(kls).astype(np.float64), 0.0)  # rounding can dip a hair below 0
    ppl, se = _perplexity(np.concatenate(losses))
    return {
        "perplexity": ppl,
        "perplexity_se": se,
        "kl_mean": float(all_kl.mean()),
        "kl_p99": float(np.percentile(all_kl, 99)),
        "top1_agreement": agree / all_kl.size,
    }


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement described by `spec` (see the module docstring) and return its figures."""
    import mlx.core as mx
    import numpy as np
    from mlx_lm.utils import compute_bits_per_weight, load

    mx.random.seed(0)
    tokens = np.load(spec["tokens"])
    model, tokenizer = load(spec["model"])
    data = mx.array(tokens)
    if spec["mode"] == "reference":
        return _reference(spec, model, data)
    result: dict[str, Any] = {"bits_per_weight": compute_bits_per_weight(model)}
    mx.reset_peak_memory()
    result.update(_speed(model, tokenizer, tokens.reshape(-1)[: spec["prompt_tokens"]].tolist(),
                         spec["gen_tokens"], spec["trials"]))
    # Load and generate: the model's arrays are already resident, so the peak is theirs plus generation's.
    result["peak_memory_bytes"] = int(mx.get_peak_memory())
    result.update(_quality(spec, model, data))
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    result = measure(spec)
    out = Path(spec["result"])
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How the conversion worker sees what mlx-lm is doing, without doing any of it itself.

- `Reporter` writes rate-limited progress events (with rate and ETA) to the job's events.jsonl.
- `download_bar(reporter)`: a tqdm class for huggingface_hub's `snapshot_download(tqdm_class=...)` that draws
  nothing and reports files and bytes.
- `observing(reporter, index)`: while `mlx_lm.convert` runs, wraps the functions it calls (its `load`,
  `quantize_model` and `save`, and `mx.save_safetensors`) with observers that pass every argument through and
  return what the original returns. The only thing an observer adds is evaluating each quantized layer right
  after `quantize_model` (mlx is lazy), so the quantize stage reports honest per-layer progress; the values
  computed are the same, so the output bytes are too.

Only the worker process (one job, one thread of conversion) uses these patches, and it restores them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxtui.services import jobs as jobstore

__all__ = ["Cancelled", "Reporter", "Observed", "download_bar", "observing", "quantizable_layers"]

#: progress lines per second and per bar, at most (the last one of a stage always goes out)
_RATE_LIMIT_S = 0.2
#: seconds to pause at each quantize/save step, so tests and demos can watch (and cancel, or kill) a tiny job
_SLOWDOWN_S = float(os.environ.get("MLXTUI_CONVERT_SLOWDOWN_S") or 0)


class Cancelled(BaseException):
    """SIGTERM arrived: stop, clean up, report cancelled. A BaseException so no `except Exception` eats it."""


class Reporter:
    """Writes progress events, rate-limited per (stage, unit), with rate and ETA from the stage's start."""

    def __init__(self, job: jobstore.Job) -> None:
        self.job = job
        self.writer = jobstore.EventWriter(job.events_path)
        self._last: dict[tuple[str, str], float] = {}
        self._start: dict[tuple[str, str, int], tuple[float, float]] = {}
        self._lock = threading.Lock()
        self.cancelled = False

    def progress(self, stage: str, variant: int = -1, done: float = 0, total: float | None = None, unit: str = "",
                 item: str = "", force: bool = False) -> None:
        """One progress event (dropped when the last one of this stage went out under _RATE_LIMIT_S ago)."""
        if self.cancelled:
            raise Cancelled()
        now = time.monotonic()
        key = (stage, unit)
        with self._lock:
            start_t, start_done = self._start.setdefault((stage, unit, variant), (now, done))
            finished = total is not None and done >= total
            if not (force or finished or now - self._last.get(key, 0.0) >= _RATE_LIMIT_S):
                return
            self._last[key] = now
        rate = eta = None
        elapsed = now - start_t
        if elapsed > 0.2 and done > start_done:
            rate = (done - start_done) / elapsed
            if total:
                eta = max(0.0, (total - done) / rate)
        if _SLOWDOWN_S and stage in ("quantize", "save"):
            time.sleep(_SLOWDOWN_S)
        self.writer.emit("progress", stage=stage, variant=variant, done=done, total=total, unit=unit, item=item,
                         rate=rate, eta_s=eta)

    def emit(self, type_: str, **fields: Any) -> None:
        self.writer.emit(type_, **fields)


def download_bar(reporter: Reporter) -> type:
    """A tqdm class for snapshot_download that draws nothing and reports files and bytes as events."""
    from tqdm.auto import tqdm

    state = {"bytes": 0.0, "bytes_total": 0.0}
    lock = threading.Lock()

    class ProgressBar(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = True
            self._unit = kwargs.get("unit", "it")
            super().__init__(*args, **kwargs)
            self.n = kwargs.get("initial", 0) or 0

        def update(self, n: float | None = 1) -> bool | None:
            if reporter.cancelled:
                raise Cancelled()
            self.n += n or 0
            if self._unit == "B":
                # Two byte bars (received, written) move together over plain HTTP: report the larger.
                with lock:
                    state["bytes"] = max(state["bytes"], float(self.n))
                    state["bytes_total"] = max(state["bytes_total"], float(self.total or 0))
                    done, total = state["bytes"], state["bytes_total"]
                reporter.progress("download", -1, done, total or None, "bytes")
            else:
                reporter.progress("download", -1, self.n, self.total, "files", force=True)
            return None

        def refresh(self, *args: Any, **kwargs: Any) -> None:
            return None

    return ProgressBar


def quantizable_layers(model: Any, group_size: int) -> int:
    """How many layers quantize_model will consider (those with to_quantized whose width the group divides)."""
    count = 0
    for _, module in model.named_modules():
        weight = getattr(module, "weight", None) if hasattr(module, "to_quantized") else None
        if weight is not None and weight.shape[-1] % group_size == 0:
            count += 1
    return count


@dataclass
class Observed:
    """What the observers saw of one mlx_lm.convert call: timings and the saved model's bits per weight."""

    timings: dict[str, float] = field(default_factory=lambda: {"load_s": 0.0, "quantize_s": 0.0, "save_s": 0.0})
    bits_per_weight: float | None = None
    shards: int = 0
    save_started: float | None = None


@contextmanager
def observing(reporter: Reporter, index: int, group_size: int | None) -> Iterator[Observed]:
    """Wrap what mlx_lm.convert calls with observers for the duration of one conversion (see module doc)."""
    import importlib

    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.utils import compute_bits_per_weight, make_shards

    # the module, not mlx_lm's `convert` function that shadows its name on the package
    convert_module = importlib.import_module("mlx_lm.convert")
    seen = Observed()
    original_load = convert_module.load
    original_quantize = convert_module.quantize_model
    original_save = convert_module.save
    original_write = mx.save_safetensors

    def load(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        reporter.progress("load", index, 0, 1, "steps", force=True)
        result = original_load(*args, **kwargs)
        seen.timings["load_s"] = time.monotonic() - started
        reporter.progress("load", index, 1, 1, "steps", force=True)
        return result

    def quantize_model(model: Any, config: dict, q_group_size: Any, q_bits: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        # the predicate quantize_model itself would use: the one given, else the model's own, else "yes"
        inner = kwargs.get("quant_predicate") or getattr(model, "quant_predicate", None)
        decided: list[str] = []

        def counting_predicate(path: str, module: Any) -> Any:
            result = inner(path, module) if inner is not None else True
            if result:
                decided.append(path)
            return result

        kwargs["quant_predicate"] = counting_predicate
        reporter.progress("quantize", index, 0, quantizable_layers(model, q_group_size or group_size or 64),
                          "layers", force=True)
        result = original_quantize(model, config, q_group_size, q_bits, *args, **kwargs)
        # mlx is lazy: evaluate layer by layer so the progress is honest (same values, so the same bytes)
        modules = dict(result[0].named_modules())
        for n, path in enumerate(decided, start=1):
            if (module := modules.get(path)) is not None:
                mx.eval(module.parameters())
            reporter.progress("quantize", index, n, len(decided), "layers", item=path)
        reporter.progress("quantize", index, len(decided), len(decided), "layers", force=True)
        seen.timings["quantize_s"] = time.monotonic() - started
        return result

    def save(dst_path: Any, src_path: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
        seen.save_started = time.monotonic()
        seen.bits_per_weight = float(compute_bits_per_weight(model))
        seen.shards = len(make_shards(dict(tree_flatten(model.parameters()))))
        reporter.progress("save", index, 0, seen.shards, "shards", force=True)
        result = original_save(dst_path, src_path, model, *args, **kwargs)
        seen.timings["save_s"] = time.monotonic() - seen.save_started
        return result

    done = {"n": 0}

    def save_safetensors(path: str, *args: Any, **kwargs: Any) -> Any:
        name = Path(path).name
        reporter.progress("save", index, done["n"], seen.shards or None, "shards", item=name, force=True)
        result = original_write(path, *args, **kwargs)
        done["n"] += 1
        reporter.progress("save", index, done["n"], seen.shards or None, "shards", item=name, force=True)
        return result

    convert_module.load, convert_module.quantize_model, convert_module.save = load, quantize_model, save
    mx.save_safetensors = save_safetensors
    try:
        yield seen
    finally:
        convert_module.load, convert_module.quantize_model = original_load, original_quantize
        convert_module.save, mx.save_safetensors = original_save, original_write

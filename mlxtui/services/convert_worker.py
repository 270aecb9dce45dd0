"""The conversion worker process: ``python -m mlxtui.services.convert_worker JOB_DIR``.

It runs mlx_lm.convert step by step with mlx-lm's own functions (download, load_model, load_tokenizer,
quantize_model, save_model, save_config, the tokenizer's save_pretrained, create_model_card), so the weights
and config.json are byte-identical to ``mlx_lm.convert`` with the same options, while it reports each step as
JSON lines in the job folder. Each variant is written to a hidden partial folder that is renamed into place
only when complete; SIGTERM (cancel) removes it. Everything it prints lands in worker.log.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mlxtui.services import jobs as jobstore
from mlxtui.services.convert_options import ConvertOptions
from mlxtui.services.errors import ConversionError, MlxtuiError, UnsupportedModelError

__all__ = ["main", "run_job", "Cancelled", "PROVENANCE_FILE"]

PROVENANCE_FILE = "mlxtui-provenance.json"
#: progress lines per second and per bar, at most (the last one of a stage always goes out)
_RATE_LIMIT_S = 0.2
#: snapshot_download attempts when the connection drops (huggingface_hub itself resumes within a file)
_DOWNLOAD_ATTEMPTS = 4
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

    def progress(
        self,
        stage: str,
        variant: int = -1,
        done: float = 0,
        total: float | None = None,
        unit: str = "",
        item: str = "",
        force: bool = False,
    ) -> None:
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
        self.writer.emit(
            "progress", stage=stage, variant=variant, done=done, total=total, unit=unit, item=item, rate=rate, eta_s=eta
        )

    def emit(self, type_: str, **fields: Any) -> None:
        self.writer.emit(type_, **fields)


def _say(text: str) -> None:
    print(f"[mlxtui] {text}", flush=True)


# -- download ---------------------------------------------------------------------------------------


def _progress_class(reporter: Reporter) -> type:
    """A tqdm class for snapshot_download that draws nothing and reports files and bytes as events."""
    from tqdm.auto import tqdm

    state = {"bytes": 0.0, "bytes_total": 0.0}
    lock = threading.Lock()

    class ProgressBar(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = True
            self._unit = kwargs.get("unit", "it")
            self._desc = str(kwargs.get("desc") or "")
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


def _download(job: jobstore.Job, reporter: Reporter) -> Path:
    """The model folder: the local source itself, or the repo's snapshot in the HF cache (resumable)."""
    if job.kind == "local":
        return Path(job.source)
    from huggingface_hub import snapshot_download
    from mlx_lm.utils import DEFAULT_ALLOW_PATTERNS

    bar = _progress_class(reporter)
    _say(f"Downloading {job.source} ({job.revision or 'main'}) from {job.endpoint}")
    reporter.progress("download", -1, 0, None, "files", force=True)
    last_error: BaseException | None = None
    for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
        try:
            path = snapshot_download(
                job.source,
                revision=job.revision,
                allow_patterns=DEFAULT_ALLOW_PATTERNS,
                endpoint=job.endpoint,
                tqdm_class=bar,
            )
            return Path(path)
        except Cancelled:
            raise
        except Exception as error:  # noqa: BLE001 - classified just below
            if not _transient(error) or attempt == _DOWNLOAD_ATTEMPTS:
                raise
            last_error = error
            _say(f"The connection dropped ({type(error).__name__}); retrying in {attempt} s, resuming what was fetched.")
            time.sleep(attempt)
    raise ConversionError(f"The download kept failing: {last_error}")


def _transient(error: BaseException) -> bool:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(error, (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError, EntryNotFoundError)):
        return False
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return False
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return False  # refused, not dropped: retrying would not help
    name = type(error).__name__
    return isinstance(error, (OSError, ConnectionError, TimeoutError)) or any(
        key in name for key in ("Connect", "Timeout", "Protocol", "LocalEntryNotFound", "ReadError", "HTTP")
    )


# -- one variant ------------------------------------------------------------------------------------


def _convert_variant(job: jobstore.Job, index: int, model_path: Path, reporter: Reporter, download_s: float) -> dict[str, Any]:
    """Make one output folder; returns its provenance."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten, tree_map_with_path
    from mlx_lm.convert import MODEL_CONVERSION_DTYPES, mixed_quant_predicate_builder
    from mlx_lm.utils import (
        compute_bits_per_weight,
        create_model_card,
        dequantize_model,
        load_model,
        load_tokenizer,
        make_shards,
        quantize_model,
        save_config,
        save_model,
    )

    variant = job.variants[index]
    options = ConvertOptions.from_dict(variant.options)
    final = Path(variant.output)
    partial = jobstore.partial_dir(final, job.id)
    if final.exists():
        raise ConversionError(f"{final} already exists and is never overwritten.")
    started = time.monotonic()
    _say(f"[{variant.label}] Loading {model_path}")
    reporter.progress("load", index, 0, 1, "steps", force=True)
    try:
        model, config = load_model(model_path, lazy=True, trust_remote_code=options.trust_remote_code)
    except ValueError as error:
        if "not supported" in str(error):
            raise UnsupportedModelError(f"The installed mlx-lm can't convert this model: {error}") from None
        raise
    tokenizer = load_tokenizer(
        model_path, {"trust_remote_code": options.trust_remote_code}, eos_token_ids=config.get("eos_token_id", None)
    )
    load_s = time.monotonic() - started
    reporter.progress("load", index, 1, 1, "steps", force=True)

    # What mlx_lm.convert does between load and save, in its order.
    quant_predicate: Any = options.quant_predicate
    if isinstance(quant_predicate, str):
        quant_predicate = mixed_quant_predicate_builder(quant_predicate, model, options.q_group_size)
    dtype = options.dtype
    if dtype is None:
        dtype = config.get("torch_dtype", None)
    if dtype is None and (text_config := config.get("text_config", None)):
        dtype = text_config.get("dtype", None)
    if dtype in MODEL_CONVERSION_DTYPES:
        _say(f"[{variant.label}] Using dtype: {dtype}")
        mx_dtype = getattr(mx, dtype)
        cast_predicate = getattr(model, "cast_predicate", lambda _: True)

        def set_dtype(k: str, v: Any) -> Any:
            if cast_predicate(k) and mx.issubdtype(v.dtype, mx.floating):
                return v.astype(mx_dtype)
            return v

        model.update(tree_map_with_path(set_dtype, model.parameters()))

    quantize_s = 0.0
    if options.quantize:
        t = time.monotonic()
        inner = quant_predicate or getattr(model, "quant_predicate", None)
        decided: list[str] = []

        def counting_predicate(path: str, module: nn.Module) -> Any:
            # Returns exactly what mlx-lm's own predicate would (True when there is none): only counts layers.
            result = inner(path, module) if inner is not None else True
            if result:
                decided.append(path)
            return result

        planned = _count_quantizable(model, options.group_size or 64)
        reporter.progress("quantize", index, 0, planned, "layers", force=True)
        _say(f"[{variant.label}] Quantizing ({' '.join(options.mlx_lm_args())})")
        model, config = quantize_model(
            model,
            config,
            options.q_group_size,
            options.q_bits,
            mode=options.q_mode,
            quant_predicate=counting_predicate,
        )
        # mlx is lazy: evaluate layer by layer so progress is honest and peak memory stays one layer above the output.
        modules = dict(model.named_modules())
        for n, path in enumerate(decided, start=1):
            module = modules.get(path)
            if module is not None:
                mx.eval(module.parameters())
            reporter.progress("quantize", index, n, len(decided), "layers", item=path)
        reporter.progress("quantize", index, len(decided), len(decided), "layers", force=True)
        quantize_s = time.monotonic() - t
    if options.dequantize:
        _say(f"[{variant.label}] Dequantizing")
        config.pop("quantization", None)
        config.pop("quantization_config", None)
        model = dequantize_model(model)

    # save, as mlx_lm.utils.save does, into the partial folder
    t = time.monotonic()
    bits_per_weight = float(compute_bits_per_weight(model))
    shards = len(make_shards(dict(tree_flatten(model.parameters()))))
    partial.parent.mkdir(parents=True, exist_ok=True)
    if partial.exists():
        shutil.rmtree(partial)
    keep_vision_config = "vision_tower" in getattr(model, "model", {})
    reporter.progress("save", index, 0, shards, "shards", force=True)
    _say(f"[{variant.label}] Saving to {final}")
    with _shard_progress(mx, reporter, index, shards):
        save_model(partial, model, donate_model=True)
    save_config(config, config_path=partial / "config.json", keep_vision_config=keep_vision_config)
    tokenizer.save_pretrained(partial)
    for pattern in ["*.py", "generation_config.json"]:
        for file in glob.glob(str(model_path / pattern)):
            shutil.copy(file, partial)
    _model_card(create_model_card, partial, job.source if job.kind == "repo" else None)
    save_s = time.monotonic() - t

    total_s = time.monotonic() - started + download_s
    provenance = {
        "source": job.source,
        "source_revision": job.source_revision,
        "options": {
            "quantize": options.quantize,
            "q_bits": options.bits,
            "q_group_size": options.group_size,
            "q_mode": options.q_mode if options.quantize else None,
            "quant_predicate": options.quant_predicate,
            "dtype": options.dtype,
            "dequantize": options.dequantize,
            "trust_remote_code": options.trust_remote_code,
        },
        "versions": _versions(),
        "timings": {
            "download_s": round(download_s, 3),
            "load_s": round(load_s, 3),
            "quantize_s": round(quantize_s, 3),
            "save_s": round(save_s, 3),
            "total_s": round(total_s, 3),
        },
        "bits_per_weight": round(bits_per_weight, 4),
        "size_bytes": 0,
        "created_at": jobstore.now_iso(),
    }
    provenance["size_bytes"] = _folder_size(partial)
    (partial / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    provenance["size_bytes"] = _folder_size(partial)
    (partial / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    if final.exists():
        raise ConversionError(f"{final} appeared while converting; the new output was not moved over it.")
    os.rename(partial, final)
    reporter.progress("save", index, shards, shards, "shards", force=True)
    return provenance


def _count_quantizable(model: Any, group_size: int) -> int:
    """How many layers quantize_model will consider (those with to_quantized whose width the group divides)."""
    count = 0
    for _, module in model.named_modules():
        weight = getattr(module, "weight", None) if hasattr(module, "to_quantized") else None
        if weight is not None and weight.shape[-1] % group_size == 0:
            count += 1
    return count


class _shard_progress:
    """Wrap mx.save_safetensors while save_model runs, to report each shard as it is written."""

    def __init__(self, mx: Any, reporter: Reporter, index: int, total: int) -> None:
        self.mx, self.reporter, self.index, self.total = mx, reporter, index, total
        self.original = mx.save_safetensors
        self.done = 0

    def __enter__(self) -> None:
        original = self.original

        def save_safetensors(path: str, *args: Any, **kwargs: Any) -> Any:
            self.reporter.progress("save", self.index, self.done, self.total, "shards", item=Path(path).name, force=True)
            result = original(path, *args, **kwargs)
            self.done += 1
            self.reporter.progress("save", self.index, self.done, self.total, "shards", item=Path(path).name, force=True)
            return result

        self.mx.save_safetensors = save_safetensors

    def __exit__(self, *exc: Any) -> None:
        self.mx.save_safetensors = self.original


def _model_card(create_model_card: Any, folder: Path, hf_repo: str | None) -> None:
    """mlx-lm's card (source front matter, base_model); from a blank card when the source has no README."""
    try:
        create_model_card(folder, hf_repo)
    except Exception as error:  # noqa: BLE001 - the card is not worth failing a conversion for
        _say(f"The source model card could not be read ({type(error).__name__}); writing a blank card.")
        create_model_card(folder, None)
        if hf_repo is not None:
            from huggingface_hub import ModelCard

            card = ModelCard.load(folder / "README.md")
            card.data.base_model = hf_repo
            card.save(folder / "README.md")


def _versions() -> dict[str, str]:
    import mlx.core as mx
    import mlx_lm

    from mlxtui import __version__

    return {"mlx": str(mx.__version__), "mlx_lm": str(mlx_lm.__version__), "mlxtui": __version__}


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


# -- the job ----------------------------------------------------------------------------------------


def _describe(error: BaseException) -> str:
    if isinstance(error, MlxtuiError):
        return str(error)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return (
            "The disk filled up while writing the model. The partial output was removed; free some space and start "
            "again (the download cache was kept)."
        )
    if isinstance(error, FileNotFoundError) and "safetensors" in str(error):
        return f"No weights to convert: {error}."
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_job(job_dir: Path) -> int:
    """Run every variant of the job in `job_dir`; returns the exit code (0 when all variants are done)."""
    job = jobstore.load_job(job_dir)
    if job.state in jobstore.FINAL_STATES:
        return 1  # cancelled (or given up on) before this process got going
    reporter = Reporter(job)

    def on_term(signum: int, frame: Any) -> None:
        if not reporter.cancelled:
            reporter.cancelled = True
            raise Cancelled()

    # run_job may run inside another process (tests, the bench): put its signal handlers back afterwards
    handled = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.getsignal(signum) for signum in handled}
    try:
        return _run_job(job, reporter, on_term)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_job(job: jobstore.Job, reporter: Reporter, on_term: Any) -> int:
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # belt and braces: the session is already our own

    job.state = "running"
    job.pid = os.getpid()
    job.started_at = jobstore.now_iso()
    job.save()
    message = ""
    current = -1
    try:
        t = time.monotonic()
        model_path = _download(job, reporter)
        download_s = time.monotonic() - t if job.kind == "repo" else 0.0
        if job.kind == "repo":
            job.source_revision = model_path.name  # the snapshot folder is named by its commit
            job.save()
            reporter.progress("download", -1, 1, 1, "files", force=True)
        for index, variant in enumerate(job.variants):
            if variant.state in jobstore.FINAL_STATES:
                continue
            current = index
            variant.state = "running"
            job.save()
            try:
                provenance = _convert_variant(job, index, model_path, reporter, download_s)
            except Cancelled:
                raise
            except BaseException as error:  # noqa: BLE001 - one failed variant does not stop the queue
                shutil.rmtree(jobstore.partial_dir(variant.output, job.id), ignore_errors=True)
                variant.state = "failed"
                variant.message = _describe(error)
                _say(f"[{variant.label}] failed: {variant.message}")
                if isinstance(error, OSError) and error.errno == errno.ENOSPC:
                    raise  # the next variant would fail the same way
                job.save()
                continue
            variant.state = "done"
            variant.bits_per_weight = provenance["bits_per_weight"]
            variant.size_bytes = provenance["size_bytes"]
            variant.elapsed_s = provenance["timings"]["total_s"]
            job.save()
            _say(
                f"[{variant.label}] done: {variant.output} ({provenance['bits_per_weight']:.3f} bits per weight, "
                f"{provenance['size_bytes']} bytes, {variant.elapsed_s:.1f} s)"
            )
            reporter.emit(
                "variant_done",
                variant=index,
                output=variant.output,
                bits_per_weight=variant.bits_per_weight,
                size_bytes=variant.size_bytes,
                elapsed_s=variant.elapsed_s,
            )
            reporter.progress("done", index, 1, 1, "", force=True)
        failed = [v for v in job.variants if v.state != "done"]
        if failed:
            job.state = "failed"
            message = " ".join(f"{v.label}: {v.message}" for v in failed)
        else:
            job.state = "done"
    except Cancelled:
        job.remove_partials()
        job.state = "cancelled"
        message = "Cancelled. The partial output was removed; the download cache was kept, so a retry resumes."
    except BaseException as error:  # noqa: BLE001 - every failure ends as a failed job with a reason
        job.remove_partials()
        job.state = "failed"
        message = _describe(error)
        if current < 0 and job.kind == "repo":
            message = f"The download of {job.source} failed: {message}"
        _say(f"failed: {message}")
    for variant in job.variants:
        if variant.state in jobstore.ACTIVE_STATES:
            variant.state = job.state if job.state != "done" else "failed"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the final state is being written; don't interrupt that
    job.message = message
    job.finished_at = jobstore.now_iso()
    job.save()
    reporter.emit("finished", state=job.state, message=message)
    return 0 if job.state == "done" else 1


def _wait_for_job(job_dir: Path, timeout_s: float = 600.0) -> bool:
    """Started ahead of its job (prewarm): import mlx-lm now, then wait for job.json (written atomically)."""
    import mlx_lm.convert  # noqa: F401 - the slow part of start-up, done while the caller runs its checks
    import mlx_lm.utils  # noqa: F401

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (job_dir / jobstore.JOB_FILE).exists():
            return True
        if (job_dir / jobstore.ABANDONED_FILE).exists() or not job_dir.exists():
            return False
        time.sleep(0.01)
    shutil.rmtree(job_dir, ignore_errors=True)  # nobody came back for it
    return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m mlxtui.services.convert_worker JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(argv[0])
    if not (job_dir / jobstore.JOB_FILE).exists() and not _wait_for_job(job_dir):
        return 2
    return run_job(job_dir)


if __name__ == "__main__":
    sys.exit(main())

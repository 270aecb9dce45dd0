"""The conversion worker process: ``python -m mlxtui.services.convert_worker JOB_DIR``.

For each variant it calls ``mlx_lm.convert`` itself, into a hidden partial folder that is renamed into place
only when complete, so the output is mlx-lm's own, byte for byte. Progress is observed, never re-sequenced:
huggingface_hub's `snapshot_download` reports the download through a tqdm class, and the observers of
`convert_observe` watch mlx-lm's load, quantize and save. A repo is downloaded first (resumable, with
progress) and converted from its snapshot folder; then mlx-lm's `create_model_card` names the repo, as
``mlx_lm.convert REPO`` does. SIGTERM (cancel) removes the partial folder. Everything printed lands in
worker.log. The worker holds the job's lock (jobs.LOCK_FILE) for as long as it lives.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from mlxtui.services import jobs as jobstore
from mlxtui.services.convert_observe import Cancelled, Reporter, download_bar, observing
from mlxtui.services.convert_options import ConvertOptions
from mlxtui.services.errors import ConversionError, MlxtuiError, UnsupportedModelError
from mlxtui.services.modelfolder import ALLOW_PATTERNS, PROVENANCE_FILE, public_source

__all__ = ["main", "run_job", "Cancelled", "PROVENANCE_FILE", "DISK_FULL", "LOCK_FD_ENV"]

#: snapshot_download calls when the connection stays down longer than huggingface_hub's own retries
_DOWNLOAD_ATTEMPTS = 4
#: the service passes the locked jobs.LOCK_FILE to the worker as this inherited descriptor
LOCK_FD_ENV = "MLXTUI_JOB_LOCK_FD"
#: docs/convert.md, "When the disk fills"
DISK_FULL = (
    "The disk filled up while writing the model. The partial output was removed; free some space and start "
    "again (files already downloaded stay in the cache)."
)
#: below this many free bytes after a failed write, the write failed because the disk was full
_FULL_BELOW = 64 * 1024 * 1024


def _say(text: str) -> None:
    print(f"[mlxtui] {text}", flush=True)


# -- download ---------------------------------------------------------------------------------------


def _download(job: jobstore.Job, reporter: Reporter) -> Path:
    """The model folder: the local source itself, or the repo's snapshot in the HF cache.

    huggingface_hub resumes a file from the bytes already fetched when the connection drops (with Range);
    when the Hub stays away longer than its own retries, this calls it again: finished files are kept."""
    if job.kind == "local":
        return Path(job.source)
    _say(f"Downloading {job.source} ({job.revision or 'main'}) from {job.endpoint}")
    reporter.progress("download", -1, 0, None, "files", force=True)
    blobs = _blobs_dir(job.source)
    others = set(blobs.glob("*.incomplete")) if blobs.is_dir() else set()
    try:
        return _download_attempts(job, reporter)
    except Cancelled:
        # huggingface_hub deletes its temporary file when a download fails, but a cancelled worker leaves at
        # once (a thread may be stuck on the connection): delete the ones this download started
        for leftover in set(blobs.glob("*.incomplete")) - others if blobs.is_dir() else ():
            leftover.unlink(missing_ok=True)
        raise


def _blobs_dir(repo_id: str) -> Path:
    """Where huggingface_hub keeps a repo's files (and its temporary `*.incomplete` downloads)."""
    from mlxtui.services.library import hub_cache_dir

    return hub_cache_dir() / ("models--" + repo_id.replace("/", "--")) / "blobs"


def _download_attempts(job: jobstore.Job, reporter: Reporter) -> Path:
    from huggingface_hub import snapshot_download

    from mlxtui.services.hubclient import http_status, is_offline

    for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
        try:
            return Path(_off_main_thread(snapshot_download, job.source, revision=job.revision,
                                         allow_patterns=list(ALLOW_PATTERNS), endpoint=job.endpoint,
                                         tqdm_class=download_bar(reporter)))
        except Cancelled:
            raise
        except Exception as error:  # noqa: BLE001 - a dropped connection is retried, anything else is raised
            status = http_status(error)
            dropped = is_offline(error) or status in (408, 429) or (status or 0) >= 500 or (
                isinstance(error, OSError) and "Consistency check failed" in str(error))
            if not dropped or attempt == _DOWNLOAD_ATTEMPTS:
                raise
            _say(f"The connection dropped ({type(error).__name__}: {error}); retrying in {attempt} s "
                 "(files already fetched are kept, so this resumes).")
            time.sleep(attempt)
    raise AssertionError("unreachable")


def _off_main_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run `fn` on a daemon thread while the main thread waits, so SIGTERM (raised on the main thread) stops
    the wait at once instead of waiting for snapshot_download's pool to drain a stalled connection."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread as it is
            box["error"] = error

    thread = threading.Thread(target=run, name="download", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- one variant ------------------------------------------------------------------------------------


def _convert_variant(job: jobstore.Job, index: int, model_path: Path, reporter: Reporter, download_s: float) -> dict[str, Any]:
    """Make one output folder with mlx_lm.convert; returns its provenance."""
    from mlx_lm import convert

    variant = job.variants[index]
    options = ConvertOptions.from_dict(variant.options)
    final = Path(variant.output)
    partial = jobstore.partial_dir(final, job.id)
    if final.exists():
        raise ConversionError(f"{final} already exists and is never overwritten.")
    if partial.exists():
        shutil.rmtree(partial)  # left by an earlier attempt of this job; mlx_lm.convert refuses an existing folder
    partial.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _say(f"[{variant.label}] mlx_lm.convert {' '.join(options.mlx_lm_args())} -> {final}")
    with observing(reporter, index, options.group_size) as seen:
        try:
            convert(str(model_path), str(partial), quantize=options.quantize, q_group_size=options.q_group_size,
                    q_bits=options.q_bits, q_mode=options.q_mode, dtype=options.dtype, dequantize=options.dequantize,
                    quant_predicate=options.quant_predicate, trust_remote_code=options.trust_remote_code)
        except ValueError as error:
            if "not supported" in str(error):
                raise UnsupportedModelError(f"The installed mlx-lm can't convert this model: {error}") from None
            raise
    if job.kind == "repo":
        _model_card(partial, job.source)  # what `mlx_lm.convert REPO` writes: the repo's card, base_model set
    timings = dict(seen.timings)
    timings["download_s"] = download_s
    timings["total_s"] = time.monotonic() - started + download_s
    provenance = {
        # uploaded with the folder: a local source by its folder name, never its path (job.json keeps the path)
        "source": public_source(job.source),
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
        "timings": {k: round(timings[k], 3) for k in ("download_s", "load_s", "quantize_s", "save_s", "total_s")},
        "bits_per_weight": round(seen.bits_per_weight or 0.0, 4),
        "size_bytes": 0,
        "created_at": jobstore.now_iso(),
    }
    # the recorded size includes the record itself: write it twice (the second time its length is known)
    for _ in range(2):
        provenance["size_bytes"] = _folder_size(partial)
        (partial / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    if final.exists():
        raise ConversionError(f"{final} appeared while converting; the new output was not moved over it.")
    os.rename(partial, final)
    reporter.progress("save", index, seen.shards, seen.shards, "shards", force=True)
    return provenance


def _model_card(folder: Path, repo_id: str) -> None:
    """mlx-lm's card for a repo source; from a blank card with base_model when the repo's card can't be read."""
    from mlx_lm.utils import create_model_card

    try:
        create_model_card(folder, repo_id)
    except Exception as error:  # noqa: BLE001 - the card is not worth failing a conversion for
        _say(f"The source model card could not be read ({type(error).__name__}); writing a blank card.")
        from huggingface_hub import ModelCard

        create_model_card(folder, None)
        card = ModelCard.load(folder / "README.md")
        card.data.base_model = repo_id
        card.save(folder / "README.md")


def _versions() -> dict[str, str]:
    import mlx.core as mx
    import mlx_lm

    from mlxtui import __version__

    return {"mlx": str(mx.__version__), "mlx_lm": str(mlx_lm.__version__), "mlxtui": __version__}


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


# -- the job ----------------------------------------------------------------------------------------


def _write_failed(error: BaseException) -> bool:
    """A failed write: ENOSPC/EFBIG/EDQUOT from Python, or mlx's "[write] Unable to write N bytes"."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    return isinstance(error, RuntimeError) and "Unable to write" in str(error)


def _free(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def _describe(error: BaseException, where: Path | None = None) -> str:
    if isinstance(error, MlxtuiError):
        return str(error)
    if _write_failed(error):
        if (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)) or (
                where is not None and _free(where) < _FULL_BELOW):
            return DISK_FULL
        return (f"Writing the model to {where or 'its folder'} failed ({' '.join(str(error).split())}). "
                "The partial output was removed.")
    if isinstance(error, FileNotFoundError) and "safetensors" in str(error):
        return f"No weights to convert: {error}."
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_job(job_dir: Path) -> int:
    """Run every variant of the job in `job_dir`; returns the exit code (0 when all variants are done)."""
    job_dir = Path(job_dir).absolute()
    inherited = os.environ.pop(LOCK_FD_ENV, None)
    lock_fd = int(inherited) if inherited else jobstore.acquire_lock(job_dir, wait=True)
    try:
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
    finally:
        os.close(lock_fd)


def _fail_variant(job: jobstore.Job, variant: jobstore.Variant, error: BaseException) -> None:
    partial = jobstore.partial_dir(variant.output, job.id)
    variant.state = "failed"
    variant.message = _describe(error, partial.parent)  # before the cleanup, while the disk is still full
    shutil.rmtree(partial, ignore_errors=True)
    _say(f"[{variant.label}] failed: {variant.message}")
    print("".join(traceback.format_exception(error)), flush=True)  # the detail, for worker.log


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
        bad = job.relative_paths()
        if bad:
            raise ConversionError(f"Refusing relative paths in the job (they would land in the job folder): {bad}.")
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
                _fail_variant(job, variant, error)
                if variant.message == DISK_FULL:
                    raise ConversionError(DISK_FULL) from None  # the next variant would fail the same way
                job.save()
                continue
            variant.state = "done"
            variant.bits_per_weight = provenance["bits_per_weight"]
            variant.size_bytes = provenance["size_bytes"]
            variant.elapsed_s = provenance["timings"]["total_s"]
            job.save()
            _say(f"[{variant.label}] done: {variant.output} ({provenance['bits_per_weight']:.3f} bits per weight, "
                 f"{provenance['size_bytes']} bytes, {variant.elapsed_s:.1f} s)")
            reporter.emit("variant_done", variant=index, output=variant.output, bits_per_weight=variant.bits_per_weight,
                          size_bytes=variant.size_bytes, elapsed_s=variant.elapsed_s)
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
        message = jobstore.CANCELLED
        _say("cancelled: the partial output was removed")
    except BaseException as error:  # noqa: BLE001 - every failure ends as a failed job with a reason
        job.remove_partials()
        job.state = "failed"
        if current < 0 and job.kind == "repo" and not isinstance(error, MlxtuiError):
            from mlxtui.services.hubclient import map_error

            message = f"The download of {job.source} failed: {map_error(error, job.source, job.endpoint, what='file')}"
        else:
            message = _describe(error)
        _say(f"failed: {message}")
        print("".join(traceback.format_exception(error)), flush=True)
    for variant in job.variants:
        if variant.state in jobstore.ACTIVE_STATES:
            variant.state = job.state if job.state != "done" else "failed"
            variant.message = variant.message or message
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the final state is being written; don't interrupt that
    job.message = message
    job.finished_at = jobstore.now_iso()
    job.save()
    reporter.emit("finished", state=job.state, message=message)
    return 0 if job.state == "done" else 1


def _wait_for_job(job_dir: Path, timeout_s: float = 600.0) -> bool:
    """Started ahead of its job (prewarm): import mlx-lm now, then wait for job.json (written atomically)."""
    import importlib

    importlib.import_module("mlx_lm.convert")  # the slow part of start-up (with mlx_lm.utils), done during the checks

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
    job_dir = Path(argv[0]).absolute()
    if not (job_dir / jobstore.JOB_FILE).exists() and not _wait_for_job(job_dir):
        return 2
    code = run_job(job_dir)
    # The final state is written. Leave now: a download thread stuck on a dead connection must not keep a
    # cancelled worker (and its lock) alive until its socket times out.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

"""Conversion jobs on disk, so they outlive the UI.

Each job is a folder under ``paths.jobs_dir()/<job-id>/`` holding:

- ``job.json``: what to convert (source, revision, endpoint, one or more variants with their options and
  output folders) and the state (queued, running, done, failed, cancelled), the worker's pid, timings;
- ``events.jsonl``: one JSON object per line, appended by the worker (progress, variant done, finished);
- ``worker.log``: everything the worker process printed;
- ``worker.lock``: locked (``fcntl.flock``) by the worker for as long as it lives. The service takes the lock
  before the worker starts and hands the locked file to it, so there is no moment without it.

The worker writes the state while it runs; a UI (this one, or one started later) reads the state and tails
the events. Whether the worker still runs is read from its lock, never from a bare process id (a pid can be
reused by another program; the lock dies with the process on Linux and macOS alike). A job whose worker is
gone without a final state (SIGKILL, power loss) is marked failed by `reconcile`, which also removes the
partial output. Every path in job.json is absolute (the worker runs in the job folder).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.atomic import write_text_atomic

__all__ = [
    "JOB_FILE",
    "EVENTS_FILE",
    "LOG_FILE",
    "ACTIVE_STATES",
    "FINAL_STATES",
    "Variant",
    "Job",
    "new_job_id",
    "partial_dir",
    "load_job",
    "list_jobs",
    "LOCK_FILE",
    "acquire_lock",
    "worker_alive",
    "job_folder",
    "reconcile",
    "EventWriter",
    "EventTail",
    "event_from",
    "LogTail",
    "now_iso",
]

JOB_FILE = "job.json"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "worker.log"
ABANDONED_FILE = "abandoned"  # a prewarmed worker's job will never come
PID_FILE = "worker.pid"  # written by the service right after the spawn (job.json belongs to the worker then)
LOCK_FILE = "worker.lock"  # held (flock) by the worker while it lives
#: what a cancelled job says (the worker, cancel and the pane all use this)
CANCELLED = ("Cancelled. The partial output was removed; files already downloaded stay in the cache, so a retry "
             "does not fetch them again.")
ACTIVE_STATES = frozenset({"queued", "running"})
FINAL_STATES = frozenset({"done", "failed", "cancelled"})
#: a queued job whose worker never wrote its pid after this long is taken for a failed start
_START_GRACE_S = 60.0


def now_iso() -> str:
    """The current UTC time as ISO-8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_job_id() -> str:
    """Sortable by creation time and unique enough for one machine: 20261127-211503-3fa2."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def partial_dir(output: str | Path, job_id: str) -> Path:
    """Where a variant is written before it is complete; renamed to `output` only at the very end.

    A hidden sibling of the output, so a half-written folder never carries the final name.
    """
    output = Path(output)
    return output.parent / f".{output.name}.partial-{job_id}"


@dataclass
class Variant:
    """One output of a job: options (a ConvertOptions as a dict), the folder it goes to, and how it went."""

    options: dict[str, Any]
    output: str
    label: str
    state: str = "queued"
    message: str = ""
    bits_per_weight: float | None = None
    size_bytes: int = 0
    elapsed_s: float | None = None


@dataclass
class Job:
    """A conversion job as stored in job.json."""

    id: str
    source: str
    kind: str  # "repo" or "local"
    variants: list[Variant]
    revision: str | None = None
    endpoint: str = ""
    source_revision: str | None = None  # the commit sha, once known
    state: str = "queued"
    message: str = ""
    pid: int | None = None
    created_at: str = field(default_factory=now_iso)
    started_at: str | None = None
    finished_at: str | None = None
    created_ts: float = field(default_factory=time.time)  # wall clock, for the start grace period
    dir: Path = field(default=Path(), compare=False)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def events_path(self) -> Path:
        return self.dir / EVENTS_FILE

    @property
    def log_path(self) -> Path:
        return self.dir / LOG_FILE

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("dir")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> Job:
        data = dict(data)
        data["variants"] = [Variant(**v) for v in data.get("variants", [])]
        known = {f.name for f in dataclasses.fields(cls)}
        job = cls(**{k: v for k, v in data.items() if k in known and k != "dir"})
        job.dir = folder
        return job

    def save(self) -> None:
        """Write job.json atomically: a reader never sees half a file."""
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.dir / JOB_FILE, json.dumps(self.to_dict(), indent=2))

    def relative_paths(self) -> list[str]:
        """Paths of this job that are not absolute (the worker runs in the job folder: each would land there)."""
        paths_ = [v.output for v in self.variants] + ([self.source] if self.kind == "local" else [])
        return [p for p in paths_ if not os.path.isabs(p)] + ([] if self.dir.is_absolute() else [str(self.dir)])

    def remove_partials(self) -> list[Path]:
        """Delete every half-written output of this job; returns what was removed."""
        removed = []
        for variant in self.variants:
            partial = partial_dir(variant.output, self.id)
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
                removed.append(partial)
        return removed


def load_job(folder: Path) -> Job:
    """Read a job folder (raises OSError / ValueError when job.json is missing or broken)."""
    folder = Path(folder)
    job = Job.from_dict(json.loads((folder / JOB_FILE).read_text(encoding="utf-8")), folder)
    if job.pid is None:
        try:
            job.pid = int((folder / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            pass
    return job


def list_jobs(root: Path | None = None) -> list[Job]:
    """Every readable job, newest first, each reconciled with whether its worker still runs."""
    root = root or paths.jobs_dir()
    jobs = []
    if not root.is_dir():
        return jobs
    for folder in sorted(root.iterdir(), reverse=True):
        if not (folder / JOB_FILE).is_file():
            continue
        try:
            jobs.append(reconcile(load_job(folder)))
        except (OSError, ValueError, TypeError):
            continue  # a job folder being deleted or from a future version
    return jobs


def acquire_lock(folder: Path, *, wait: bool = False) -> int:
    """Open and lock the job's lock file; returns the descriptor (the lock lives as long as it is open, in
    this process or a child that inherited it). BlockingIOError when another process holds it and not `wait`."""
    fd = os.open(Path(folder) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BaseException:
        os.close(fd)
        raise
    return fd


def worker_alive(folder: Path) -> bool | None:
    """Is a worker holding this job's lock? None when the job has no lock file (not started yet)."""
    try:
        fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops a shared lock we may have just taken
    return False


def job_folder(root: Path, job_id: str) -> Path:
    """The folder of `job_id` directly inside `root`; InvalidInputError for anything that is not a job id
    (a path, '..', a model folder): a job command must never reach outside the jobs directory."""
    from mlxtui.services.errors import InvalidInputError

    text = str(job_id).strip()
    if not text or text in (".", "..") or "/" in text or os.sep in text or "\\" in text or text.startswith("."):
        raise InvalidInputError(f"{text!r} is not a job id; `mlxtui jobs` lists them (e.g. 20261127-211503-3fa2).")
    return Path(root) / text


def reconcile(job: Job) -> Job:
    """Mark a job failed when its worker vanished without writing a final state, and clean up after it."""
    if not job.active:
        return job
    alive = worker_alive(job.dir)
    if alive:
        return job
    if alive is None:
        if time.time() - job.created_ts < _START_GRACE_S:
            return job  # being created: the lock file comes with the worker
        message = "The conversion worker never started."
    else:
        # Re-read: the worker may have finished between our read and the lock check.
        try:
            fresh = load_job(job.dir)
        except (OSError, ValueError):
            fresh = job
        if not fresh.active:
            return fresh
        job = fresh
        message = (
            "The conversion worker stopped without finishing (it was killed, or the machine ran out of memory). "
            "The partial output was removed; files already downloaded stay in the cache, so starting again does not "
            "fetch them again."
        )
    job.remove_partials()
    for variant in job.variants:
        if variant.state in ACTIVE_STATES:
            variant.state = "failed"
            variant.message = message
    job.state = "failed"
    job.message = message
    job.finished_at = now_iso()
    job.save()
    EventWriter(job.events_path).emit("finished", state="failed", message=message)
    return job


class EventWriter:
    """Appends one JSON object per line to events.jsonl; safe to call from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def emit(self, type_: str, **fields: Any) -> None:
        line = json.dumps({"type": type_, "t": round(time.time(), 3), **fields}, default=str)
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


class EventTail:
    """Reads the complete new lines of events.jsonl since the last call (a partial last line waits)."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = Path(path)
        self.offset = offset

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        events = []
        for line in data[: end + 1].splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events


class LogTail:
    """Reads the new complete lines of worker.log (tqdm-style carriage returns count as line ends)."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = Path(path)
        self.offset = offset

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if end < 0:
            return []
        self.offset += end + 1
        text = data[: end + 1].decode("utf-8", errors="replace").replace("\r", "\n")
        return [line for line in text.split("\n") if line.strip()]


def event_from(job_id: str, raw: dict[str, Any]) -> object | None:
    """One line of events.jsonl as the typed event the UI consumes (None for a kind it does not know)."""
    try:
        return _event_from(job_id, raw)
    except (TypeError, ValueError, AttributeError):
        return None  # a damaged line: skipped, never a crash of the follower


def _event_from(job_id: str, raw: dict[str, Any]) -> object | None:
    from mlxtui.services.events import ConvertFinished, ConvertLog, ConvertProgress, ConvertVariantDone

    kind = raw.get("type")
    if kind == "progress":
        return ConvertProgress(
            job_id,
            stage=str(raw.get("stage", "")),
            variant=int(raw.get("variant", -1)),
            done=raw.get("done") or 0,
            total=raw.get("total"),
            unit=str(raw.get("unit", "")),
            rate=raw.get("rate"),
            eta_s=raw.get("eta_s"),
            item=str(raw.get("item", "")),
        )
    if kind == "variant_done":
        return ConvertVariantDone(
            job_id,
            variant=int(raw.get("variant", 0)),
            output=str(raw.get("output", "")),
            bits_per_weight=raw.get("bits_per_weight"),
            size_bytes=int(raw.get("size_bytes") or 0),
            elapsed_s=float(raw.get("elapsed_s") or 0.0),
        )
    if kind == "finished":
        return ConvertFinished(job_id, state=str(raw.get("state", "failed")), message=str(raw.get("message", "")))
    if kind == "log":
        return ConvertLog(job_id, str(raw.get("text", "")))
    return None

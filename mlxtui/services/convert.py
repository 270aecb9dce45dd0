"""Conversion jobs: the options of mlx_lm.convert and their rules, checks before anything runs, and a worker
process per job (see convert_worker.py) whose progress is read back from its job folder (see jobs.py).

The worker runs in its own session (``start_new_session=True``): closing mlxtui or losing the SSH connection
does not stop it, and a later mlxtui reattaches through the job folder.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.format import human_bytes
from mlxtui.services import Context
from mlxtui.services import jobs as jobstore
from mlxtui.services.errors import (
    AuthError,
    CancelledByUser,
    ConversionError,
    GatedError,
    InvalidInputError,
    MlxtuiError,
    NotFoundError,
    OfflineError,
    UnsupportedModelError,
)
from mlxtui.services.convert_options import (
    _DTYPE_BYTES,
    ALLOW_PATTERNS,
    BITS,
    DTYPES,
    FORM_BITS,
    GROUP_SIZES,
    MODE_FIXED,
    MODES,
    RECIPES,
    ConvertOptions,
    options_from_label,
    output_name,
)
from mlxtui.services.library import hub_cache_dir
from mlxtui.services.events import ConvertFinished, ConvertLog, ConvertProgress, ConvertVariantDone

__all__ = [
    "BITS",
    "FORM_BITS",
    "GROUP_SIZES",
    "MODES",
    "MODE_FIXED",
    "RECIPES",
    "DTYPES",
    "ALLOW_PATTERNS",
    "ConvertOptions",
    "ConvertPlan",
    "ConvertService",
    "WarmWorker",
    "output_name",
    "options_from_label",
    "free_output",
    "disk_free",
    "report_problems",
]

#: headroom on top of the estimate before we call the disk big enough
_DISK_MARGIN = 1.10


def free_output(path: Path, reserved: Iterable[Path] = ()) -> Path:
    """`path` if nothing is there (and no job is about to write it), else path-2, path-3, ..."""
    taken = {Path(p) for p in reserved}
    if not path.exists() and path not in taken:
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.name}-{n}")
        if not candidate.exists() and candidate not in taken:
            return candidate
        n += 1


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem that holds `path` (its nearest existing ancestor). Tests replace this."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def _same_device(a: Path, b: Path) -> bool:
    def existing(p: Path) -> Path:
        while not p.exists() and p != p.parent:
            p = p.parent
        return p

    try:
        return os.stat(existing(a)).st_dev == os.stat(existing(b)).st_dev
    except OSError:
        return True


def report_problems(report: dict[str, Any] | None) -> list[str]:
    """Why Inspect found a model unsupported, from the report it passed along (empty when fine or unknown)."""
    if not report:
        return []
    for key in ("support_problems", "problems", "unsupported"):
        value = report.get(key)
        if isinstance(value, list) and value:
            return [str(v) for v in value]
        if isinstance(value, str) and value:
            return [value]
    if report.get("supported") is False:
        return [str(report.get("reason") or "Inspect found that the installed mlx-lm cannot convert this model.")]
    return []


def _support_problems(config: dict[str, Any], files: list[str]) -> list[str]:
    """Inspect's verdict on a config.json (mlxtui.services.inspect); empty when that module is not there."""
    try:
        from mlxtui.services.inspect import support_problems
    except ImportError:
        return []
    return list(support_problems(config, files))


def _looks_like_path(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~", ".")) or source.count("/") > 1 or (os.sep != "/" and os.sep in source)


@dataclass(frozen=True)
class ConvertPlan:
    """Everything checked before a job starts: where the model comes from, what it is, where outputs go."""

    source: str  # repo id, or an absolute local folder
    kind: str  # "repo" | "local"
    revision: str | None
    commit: str | None
    config: dict[str, Any]
    files: dict[str, int]  # files the conversion reads -> size in bytes
    download_bytes: int  # bytes not in the cache yet
    source_dtype: str | None
    parameters: int
    variants: tuple[tuple[ConvertOptions, Path], ...]
    needed_bytes: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class WarmWorker:
    """A worker process started ahead of its job (see ConvertService.prewarm)."""

    job_id: str
    folder: Path
    proc: subprocess.Popen  # type: ignore[type-arg]
    endpoint: str


class ConvertService:
    """Plans, starts, follows and cancels conversion jobs; lists past ones."""

    #: how often a follower polls the job folder
    poll_s = 0.05

    def __init__(self, ctx: Context, *, jobs_root: Path | None = None, python: str | None = None) -> None:
        self.ctx = ctx
        self.jobs_root = jobs_root
        self.python = python or sys.executable
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def root(self) -> Path:
        return self.jobs_root or paths.jobs_dir()

    # -- outputs ----------------------------------------------------------------------------------

    def models_dir(self) -> Path:
        return self.ctx.settings.models_dir()

    def reserved_outputs(self) -> set[Path]:
        """Output folders that running or queued jobs are about to create."""
        return {Path(v.output) for job in self.jobs() if job.active for v in job.variants}

    def default_output(self, source: str, options: ConvertOptions, source_dtype: str | None = None) -> Path:
        """The default folder for this source and options, before checking whether it is free."""
        return self.models_dir() / output_name(source, options.label(source_dtype))

    def suggest_output(
        self,
        source: str,
        options: ConvertOptions,
        source_dtype: str | None = None,
        extra: Iterable[Path] = (),
        reserved: set[Path] | None = None,
    ) -> tuple[Path, Path | None]:
        """(a free folder to use, the taken default it replaces or None when the default is free).

        `reserved` is a recent `reserved_outputs()` (the UI passes its cached copy instead of re-reading jobs)."""
        default = self.default_output(source, options, source_dtype)
        taken = self.reserved_outputs() if reserved is None else reserved
        free = free_output(default, taken | set(extra))
        return free, (default if free != default else None)

    # -- checks -----------------------------------------------------------------------------------

    async def plan(
        self,
        source: str,
        variants: list[ConvertOptions] | ConvertOptions,
        *,
        revision: str | None = None,
        outputs: list[str | Path | None] | None = None,
        report: dict[str, Any] | None = None,
    ) -> ConvertPlan:
        """Check everything that can be checked before a job starts; raise MlxtuiError saying what is wrong.

        For a repo only config.json and the file list are fetched, so an unsupported model is refused before
        its weights are downloaded.
        """
        if isinstance(variants, ConvertOptions):
            variants = [variants]
        if not variants:
            raise InvalidInputError("Nothing to convert: add at least one variant.")
        source = source.strip()
        if not source:
            raise InvalidInputError("Enter a repo id (owner/name) or a local folder to convert.")
        for options in variants:
            options.validate()
        problems = report_problems(report)
        if any(o.dequantize for o in variants):
            problems = [p for p in problems if "already an MLX" not in p]
        if problems:
            raise UnsupportedModelError("This model can't be converted: " + " ".join(problems))
        local = Path(source).expanduser()
        if local.exists():
            plan = await asyncio.to_thread(self._inspect_local, local.resolve())
        else:
            plan = await asyncio.to_thread(self._inspect_repo, source, revision)
        problems = _support_problems(plan.config, list(plan.files))
        if any(o.dequantize for o in variants):
            # dequantizing an MLX model back to floats is what -d is for
            problems = [p for p in problems if "already an MLX" not in p]
        if problems:
            raise UnsupportedModelError(f"{source} can't be converted: " + " ".join(problems))
        outs = list(outputs or [])
        outs += [None] * (len(variants) - len(outs))
        chosen: list[tuple[ConvertOptions, Path]] = []
        taken = self.reserved_outputs()
        for options, out in zip(variants, outs):
            if out is None or str(out).strip() == "":
                path = free_output(self.default_output(plan.source, options, plan.source_dtype), taken)
            else:
                path = Path(out).expanduser().absolute()
                if path.exists():
                    suggestion = free_output(path, taken)
                    raise InvalidInputError(
                        f"{path} already exists and is never overwritten. Use {suggestion.name} instead, "
                        "or delete the old folder first."
                    )
                if path in taken or path in {p for _, p in chosen}:
                    raise InvalidInputError(f"Another conversion is already writing {path}; choose another folder.")
            taken.add(path)
            chosen.append((options, path))
        plan = replace(plan, revision=revision, variants=tuple(chosen))
        return self._check_disk(plan)

    def _read_config(self, path: Path, where: str) -> dict[str, Any]:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInputError(f"{where} has no config.json, so it is not a Hugging Face model folder.") from None
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInputError(f"The config.json of {where} could not be read: {error}.") from None
        try:
            config = json.loads(text)
        except ValueError as error:
            raise InvalidInputError(
                f"The config.json of {where} is not valid JSON ({error}); it needs fixing before it can be converted."
            ) from None
        if not isinstance(config, dict) or "model_type" not in config:
            raise InvalidInputError(f"The config.json of {where} has no model_type, so mlx-lm can't tell what model it is.")
        return config

    @staticmethod
    def _check_weights(files: Iterable[str], where: str) -> None:
        names = [Path(f).name for f in files]
        if any(fnmatch.fnmatch(n, "model*.safetensors") for n in names):
            return
        other = [n for n in names if n.endswith((".bin", ".pt", ".pth", ".gguf", ".safetensors"))]
        hint = f" It has {', '.join(sorted(other)[:3])}, which mlx-lm does not read." if other else ""
        raise InvalidInputError(f"{where} has no weights mlx-lm can convert (model*.safetensors).{hint}")

    def _inspect_local(self, folder: Path) -> ConvertPlan:
        if not folder.is_dir():
            raise InvalidInputError(f"{folder} is a file; choose the model's folder.")
        config = self._read_config(folder / "config.json", str(folder))
        files = {
            p.name: p.stat().st_size
            for p in folder.iterdir()
            if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in ALLOW_PATTERNS)
        }
        self._check_weights([p.name for p in folder.iterdir()], str(folder))
        return self._plan_from(str(folder), "local", None, config, files, 0)

    def _inspect_repo(self, repo_id: str, revision: str | None) -> ConvertPlan:
        from huggingface_hub import HfApi, hf_hub_download, try_to_load_from_cache
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HFValidationError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        no_such = (
            f"There is no folder {repo_id!r} here and no repo {repo_id!r} on {self.ctx.endpoint}. "
            "Check the spelling (a repo id looks like owner/name)."
        )
        if _looks_like_path(repo_id):
            # huggingface_hub would reject it as a repo id with a confusing validation message
            raise NotFoundError(no_such)
        api = HfApi(endpoint=self.ctx.endpoint, token=self.ctx.token)
        try:
            info = api.model_info(repo_id, revision=revision, files_metadata=True)
            commit = info.sha
            siblings = {s.rfilename: int(s.size or 0) for s in (info.siblings or [])}
            config_path = hf_hub_download(
                repo_id, "config.json", revision=commit, endpoint=self.ctx.endpoint, token=self.ctx.token
            )
        except GatedRepoError:
            raise GatedError(
                f"{repo_id} is gated: accept its license on the Hub with your account, then use a token that has access."
            ) from None
        except RevisionNotFoundError:
            raise NotFoundError(f"{repo_id} has no revision {revision!r}.") from None
        except RepositoryNotFoundError:
            raise NotFoundError(no_such) from None
        except EntryNotFoundError:
            raise InvalidInputError(f"{repo_id} has no config.json, so it is not a model mlx-lm can convert.") from None
        except HFValidationError:
            raise NotFoundError(no_such) from None
        except LocalEntryNotFoundError as error:
            raise OfflineError(
                f"There is no folder {repo_id!r} here, and {self.ctx.endpoint} could not be reached to look for a repo "
                f"of that name ({error.__cause__ or error})."
            ) from None
        except HfHubHTTPError as error:
            status = getattr(error.response, "status_code", None)
            if status in (401, 403):
                raise AuthError(f"{self.ctx.endpoint} refused access to {repo_id} (HTTP {status}); check your token.") from None
            raise ConversionError(f"The Hub answered an error for {repo_id}: {error}") from None
        except OSError as error:
            raise OfflineError(f"{self.ctx.endpoint} could not be reached: {error}") from None
        config = self._read_config(Path(config_path), repo_id)
        files = {name: size for name, size in siblings.items() if any(fnmatch.fnmatch(name, p) for p in ALLOW_PATTERNS)}
        self._check_weights(siblings, repo_id)
        missing = 0
        for name, size in files.items():
            cached = try_to_load_from_cache(repo_id, name, revision=commit)
            if not isinstance(cached, str):
                missing += size
        return self._plan_from(repo_id, "repo", commit, config, files, missing)

    def _plan_from(
        self, source: str, kind: str, commit: str | None, config: dict[str, Any], files: dict[str, int], missing: int
    ) -> ConvertPlan:
        source_dtype = config.get("torch_dtype") or (config.get("text_config") or {}).get("dtype") or config.get("dtype")
        if not isinstance(source_dtype, str):
            source_dtype = None
        weight_bytes = sum(size for name, size in files.items() if fnmatch.fnmatch(Path(name).name, "model*.safetensors"))
        per_param = _DTYPE_BYTES.get(source_dtype or "", 2)
        if isinstance(config.get("quantization"), dict):
            per_param = max(1, int(config["quantization"].get("bits", 4)) // 8) or 1
        return ConvertPlan(
            source=source,
            kind=kind,
            revision=None,
            commit=commit,
            config=config,
            files=files,
            download_bytes=missing,
            source_dtype=source_dtype,
            parameters=weight_bytes // per_param,
            variants=(),
        )

    def _check_disk(self, plan: ConvertPlan) -> ConvertPlan:
        outputs = sum(o.estimate_bytes(plan.parameters, plan.source_dtype) for o, _ in plan.variants)
        outputs = int(outputs * _DISK_MARGIN)
        download = int(plan.download_bytes * _DISK_MARGIN)
        out_dir = plan.variants[0][1].parent
        cache = hub_cache_dir()
        checks = [(out_dir, outputs + (download if _same_device(out_dir, cache) else 0), "the output folder")]
        if download and not _same_device(out_dir, cache):
            checks.append((cache, download, "the Hugging Face cache"))
        for where, need, what in checks:
            free = disk_free(where)
            if need > free:
                raise ConversionError(
                    f"Not enough disk space on {what} ({where}): about {human_bytes(need)} is needed and {human_bytes(free)} is free. "
                    "Free some space or choose another output folder (Settings: convert.output_dir)."
                )
        return replace(plan, needed_bytes=outputs + download)

    # -- running ----------------------------------------------------------------------------------

    async def start(self, plan: ConvertPlan) -> jobstore.Job:
        """Create the job folder and start its worker process; returns at once."""
        return await asyncio.to_thread(self.start_sync, plan)

    def start_sync(self, plan: ConvertPlan, warm: WarmWorker | None = None) -> jobstore.Job:
        """Write the job and start its worker (or hand the job to `warm`, a worker started by `prewarm`)."""
        job_id = warm.job_id if warm else jobstore.new_job_id()
        job = jobstore.Job(
            id=job_id,
            source=plan.source,
            kind=plan.kind,
            revision=plan.revision,
            endpoint=self.ctx.endpoint,
            source_revision=plan.commit,
            variants=[
                jobstore.Variant(options=o.to_dict(), output=str(p), label=o.label(plan.source_dtype))
                for o, p in plan.variants
            ],
        )
        job.dir = self.root / job_id
        if warm is not None and warm.endpoint == self.ctx.endpoint and warm.proc.poll() is None:
            job.pid = warm.proc.pid
            job.save()  # the waiting worker picks it up
            return job
        if warm is not None:
            self.abandon(warm, remove=False)
        job.save()
        self._spawn(job.dir, job.id, job.endpoint)
        job.pid = self._procs[job.id].pid
        return job

    def prewarm(self) -> WarmWorker:
        """Start a worker before the checks: it imports mlx-lm while `plan` runs, then waits for its job.

        Hand it to `start_sync(plan, warm)`, or to `abandon(warm)` when the plan fails. The command line uses
        this so the conversion does not wait for a second interpreter's start-up."""
        job_id = jobstore.new_job_id()
        folder = self.root / job_id
        folder.mkdir(parents=True, exist_ok=True)
        self._spawn(folder, job_id, self.ctx.endpoint)
        return WarmWorker(job_id, folder, self._procs[job_id], self.ctx.endpoint)

    def abandon(self, warm: WarmWorker, *, remove: bool = True) -> None:
        """Stop a prewarmed worker that will get no job."""
        (warm.folder / jobstore.ABANDONED_FILE).touch()
        self._signal(warm.proc.pid, signal.SIGKILL)
        try:
            warm.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._procs.pop(warm.job_id, None)
        if remove:
            shutil.rmtree(warm.folder, ignore_errors=True)

    def _spawn(self, folder: Path, job_id: str, endpoint: str) -> None:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["HF_ENDPOINT"] = endpoint
        env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        env["HF_HUB_DISABLE_TELEMETRY"] = "1"
        if endpoint.rstrip("/") != "https://huggingface.co":
            env["HF_HUB_DISABLE_XET"] = "1"
        if self.ctx.token:
            env["HF_TOKEN"] = self.ctx.token  # passed in memory, never written to the job folder
        with open(folder / jobstore.LOG_FILE, "ab") as log:
            proc = subprocess.Popen(
                [self.python, "-m", "mlxtui.services.convert_worker", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(folder),
                env=env,
                start_new_session=True,  # own session: no SIGHUP when the terminal or SSH session goes away
                close_fds=True,
            )
        self._procs[job_id] = proc
        # job.json is the worker's once it runs; the pid goes beside it so a reader can check on the worker
        (folder / jobstore.PID_FILE).write_text(f"{proc.pid}\n")

    def _wait_worker(self, job_id: str, timeout_s: float = 30.0) -> None:
        """After the final event, let a worker this process started exit and collect it (no zombie; its
        resource usage is then counted as this process's child, which the benchmark reads)."""
        proc = self._procs.pop(job_id, None)
        if proc is None:
            return
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._procs[job_id] = proc

    def _reap(self) -> None:
        """Collect exit codes of workers this process started, so none lingers as a zombie."""
        for job_id, proc in list(self._procs.items()):
            if proc.poll() is not None:
                del self._procs[job_id]

    def jobs(self) -> list[jobstore.Job]:
        """Every job, newest first; a job whose worker died is marked failed here."""
        self._reap()
        return jobstore.list_jobs(self.root)

    def job(self, job_id: str) -> jobstore.Job:
        self._reap()
        try:
            return jobstore.reconcile(jobstore.load_job(self.root / job_id))
        except (OSError, ValueError):
            raise NotFoundError(f"There is no conversion job {job_id!r}.") from None

    async def follow(self, job_id: str, *, logs: bool = True) -> AsyncIterator[object]:
        """Replay and then tail a job's events until it ends: ConvertProgress, ConvertLog, ConvertVariantDone,
        and last ConvertFinished. Closing the iterator leaves the job running (detach)."""
        job = self.job(job_id)
        events = jobstore.EventTail(job.events_path)
        log = jobstore.LogTail(job.log_path)
        last_check = 0.0
        while True:
            got = False
            if logs:
                for line in log.read():
                    got = True
                    yield ConvertLog(job_id, line)
            for raw in events.read():
                got = True
                event = _event_from(job_id, raw)
                if event is None:
                    continue
                if isinstance(event, ConvertFinished):
                    if logs:
                        for line in log.read():
                            yield ConvertLog(job_id, line)
                    await asyncio.to_thread(self._wait_worker, job_id)
                    yield event
                    return
                yield event
            if got:
                continue
            now = time.monotonic()
            if now - last_check > 0.5:
                last_check = now
                # The worker may have died without a word: reconcile writes the final event for it.
                await asyncio.to_thread(self.job, job_id)
            await asyncio.sleep(self.poll_s)

    async def cancel(self, job_id: str, *, grace_s: float = 5.0) -> jobstore.Job:
        """Stop a job: SIGTERM, then SIGKILL after `grace_s`; partial output removed, download cache kept."""
        return await asyncio.to_thread(self.cancel_sync, job_id, grace_s)

    def cancel_sync(self, job_id: str, grace_s: float = 5.0) -> jobstore.Job:
        job = self.job(job_id)
        if not job.active:
            return job
        if job.pid is None:
            job = self._mark_cancelled(job)
            return job
        self._signal(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self._alive(job):
            time.sleep(0.05)
        if self._alive(job):
            self._signal(job.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self._alive(job):
                time.sleep(0.05)
        job = jobstore.load_job(job.dir)
        if job.active:
            job = self._mark_cancelled(job)
        else:
            job.remove_partials()
        return job

    def _alive(self, job: jobstore.Job) -> bool:
        proc = self._procs.get(job.id)
        if proc is not None:
            return proc.poll() is None
        return jobstore.pid_alive(job.pid, job.id)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)  # the worker leads its own session: reach any child it started too
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    @staticmethod
    def _mark_cancelled(job: jobstore.Job) -> jobstore.Job:
        job.remove_partials()
        message = "Cancelled. The partial output was removed; the download cache was kept, so a retry resumes."
        for variant in job.variants:
            if variant.state in jobstore.ACTIVE_STATES:
                variant.state = "cancelled"
        job.state = "cancelled"
        job.message = message
        job.finished_at = jobstore.now_iso()
        job.save()
        jobstore.EventWriter(job.events_path).emit("finished", state="cancelled", message=message)
        return job

    def delete_job(self, job_id: str) -> None:
        """Forget a finished job (its outputs stay)."""
        job = self.job(job_id)
        if job.active:
            raise InvalidInputError("That job is still running; cancel it first.")
        shutil.rmtree(job.dir, ignore_errors=True)

    async def convert(
        self,
        source: str,
        variants: list[ConvertOptions] | ConvertOptions,
        *,
        revision: str | None = None,
        outputs: list[str | Path | None] | None = None,
        report: dict[str, Any] | None = None,
    ) -> AsyncIterator[object]:
        """Plan, start and follow in one go. Closing the iterator early cancels the job (Escape in the UI)."""
        plan = await self.plan(source, variants, revision=revision, outputs=outputs, report=report)
        job = await self.start(plan)
        yield ConvertProgress(job.id, "check", item=job.id)
        finished = False
        try:
            async for event in self.follow(job.id):
                if isinstance(event, ConvertFinished):
                    finished = True
                yield event
        finally:
            if not finished:
                await asyncio.shield(self.cancel(job.id))


def _event_from(job_id: str, raw: dict[str, Any]) -> object | None:
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




# Used by the CLI and the pane for a one-line error; kept here so both say the same.
def describe_error(error: BaseException) -> str:
    """One line for a person."""
    if isinstance(error, MlxtuiError):
        return str(error)
    if isinstance(error, CancelledByUser):
        return "Cancelled."
    return re.sub(r"\s+", " ", f"{type(error).__name__}: {error}").strip()

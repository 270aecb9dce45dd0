"""Conversion jobs: plans (checks before anything runs, see convert_plan.py), a worker process per job (see
convert_worker.py) whose progress is read back from its job folder (see jobs.py), cancel and the job list.

The worker runs in its own session (``start_new_session=True``): closing mlxtui or losing the SSH connection
does not stop it, and a later mlxtui reattaches through the job folder. Whether it still runs is read from the
lock it holds (jobs.LOCK_FILE); a process is signalled only while that lock says it is the job's worker.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.services import Context
from mlxtui.services import jobs as jobstore
from mlxtui.services.convert_options import (
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
from mlxtui.services.convert_plan import (
    ConvertPlan,
    absolute,
    check_disk,
    check_outputs,
    check_support,
    check_writable,
    disk_free,
    free_output,
    inspect_local,
    inspect_repo,
    report_problems,
)
from mlxtui.services.convert_worker import LOCK_FD_ENV
from mlxtui.services.errors import InvalidInputError, NotFoundError, UnsupportedModelError
from mlxtui.services.events import ConvertFinished, ConvertLog, ConvertProgress
from mlxtui.services.library import hub_cache_dir

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
        """The jobs directory, absolute (job.json and the worker's paths must not depend on a working directory)."""
        return absolute(self.jobs_root or paths.jobs_dir())

    # -- outputs ----------------------------------------------------------------------------------

    def models_dir(self) -> Path:
        """Where outputs go by default, absolute against where mlxtui was started."""
        return absolute(self.ctx.settings.models_dir())

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
        local = absolute(source)
        if local.exists():
            plan, names, library = await asyncio.to_thread(inspect_local, local.resolve())
        else:
            plan, names, library = await asyncio.to_thread(inspect_repo, self.ctx, source, revision)
        check_support(plan, names, variants, source, library_name=library)
        outs = list(outputs or [])
        outs += [None] * (len(variants) - len(outs))
        plan = check_outputs(plan, variants, outs, self.default_output, self.reserved_outputs())
        check_writable(self.root / "job", f"The jobs folder ({self.root})")
        plan = replace(plan, revision=revision)
        return await asyncio.to_thread(check_disk, plan, hub_cache_dir())

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
                jobstore.Variant(options=o.to_dict(), output=str(absolute(p)), label=o.label(plan.source_dtype))
                for o, p in plan.variants
            ],
        )
        job.dir = self.root / job_id
        if job.relative_paths():  # never: plan() makes every path absolute; a worker would write into its folder
            raise InvalidInputError(f"Relative paths reached the job: {job.relative_paths()}.")
        if warm is not None and warm.endpoint == self.ctx.endpoint and warm.proc.poll() is None:
            job.pid = warm.proc.pid
            job.save()  # the waiting worker picks it up
            return job
        if warm is not None:
            self.abandon(warm, remove=False)
        job.dir.mkdir(parents=True, exist_ok=True)
        lock = jobstore.acquire_lock(job.dir)  # held from before job.json exists: never a job without a live lock
        try:
            job.save()
            self._spawn(job.dir, job.id, job.endpoint, lock)
        finally:
            os.close(lock)  # the worker holds its own copy now
        job.pid = self._procs[job.id].pid
        return job

    def prewarm(self) -> WarmWorker:
        """Start a worker before the checks: it imports mlx-lm while `plan` runs, then waits for its job.

        Hand it to `start_sync(plan, warm)`, or to `abandon(warm)` when the plan fails. The command line uses
        this so the conversion does not wait for a second interpreter's start-up."""
        check_writable(self.root / "job", f"The jobs folder ({self.root})")
        job_id = jobstore.new_job_id()
        folder = self.root / job_id
        folder.mkdir(parents=True, exist_ok=True)
        lock = jobstore.acquire_lock(folder)
        try:
            self._spawn(folder, job_id, self.ctx.endpoint, lock)
        finally:
            os.close(lock)
        return WarmWorker(job_id, folder, self._procs[job_id], self.ctx.endpoint)

    def abandon(self, warm: WarmWorker, *, remove: bool = True) -> None:
        """Stop a prewarmed worker that will get no job."""
        (warm.folder / jobstore.ABANDONED_FILE).touch()
        if warm.proc.poll() is None:  # our own child, not yet collected: its pid is still its own
            self._signal(warm.proc.pid, signal.SIGKILL)
        try:
            warm.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._procs.pop(warm.job_id, None)
        if remove:
            shutil.rmtree(warm.folder, ignore_errors=True)

    def _spawn(self, folder: Path, job_id: str, endpoint: str, lock_fd: int) -> None:
        """Start the worker in `folder`, handing it the locked lock file (`lock_fd`) it holds until it exits."""
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["HF_ENDPOINT"] = endpoint
        env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        env["HF_HUB_DISABLE_TELEMETRY"] = "1"
        env[LOCK_FD_ENV] = str(lock_fd)
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
                pass_fds=(lock_fd,),
            )
        self._procs[job_id] = proc
        # job.json is the worker's once it runs; the pid goes beside it so cancel knows whom to signal
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
        """One job by id (only a folder directly inside the jobs directory; never a path)."""
        self._reap()
        folder = jobstore.job_folder(self.root, job_id)
        try:
            return jobstore.reconcile(jobstore.load_job(folder))
        except (OSError, ValueError, TypeError):
            raise NotFoundError(f"There is no conversion job {job_id!r}.", hint="`mlxtui jobs` lists them.") from None

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
                event = jobstore.event_from(job_id, raw)
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
        if job.pid is None or not self._alive(job):
            return self._mark_cancelled(job)
        self._signal(job.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self._alive(job):
            time.sleep(0.05)
        if self._alive(job):  # checked again right before: only the job's own worker is ever killed
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
        """The worker of `job` still runs: it holds the job's lock (our own child is also asked directly)."""
        proc = self._procs.get(job.id)
        if proc is not None and proc.poll() is not None:
            return False
        return bool(jobstore.worker_alive(job.dir))

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
        message = jobstore.CANCELLED
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
        """Forget a finished job: its folder in the jobs directory goes, its outputs stay. Only a job id is
        accepted (never a path), and only a folder holding a job.json directly inside the jobs directory."""
        job = self.job(job_id)
        if job.active:
            raise InvalidInputError("That job is still running; cancel it first.")
        folder = job.dir
        if folder.parent != self.root or folder.is_symlink() or not (folder / jobstore.JOB_FILE).is_file():
            raise InvalidInputError(f"{folder} is not a job folder of {self.root}; nothing was deleted.")
        outputs = {absolute(v.output) for v in job.variants}
        if any(o == folder or folder in o.parents for o in outputs):
            raise InvalidInputError(f"{folder} holds a converted model; move it out first. Nothing was deleted.")
        shutil.rmtree(folder)

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

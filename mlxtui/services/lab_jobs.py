"""A lab as a detached job: ``python -m mlxtui.services.lab_jobs LAB_DIR`` runs it in its own session.

The same layout and tools as conversion jobs (services/jobs.py: EventWriter, EventTail, job ids, the new
session): ``plan.json`` says what to run, ``events.jsonl`` gets one JSON object per lab event, ``state.json``
the state and the worker's pid, ``worker.log`` what it printed. A closed app or a dropped SSH connection does
not stop it; `LabJobs.follow` replays and tails the events (a later mlxtui reattaches), `LabJobs.cancel` sends
SIGTERM, on which the lab stops its running process and removes any half-built variant.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.services import Context
from mlxtui.services import jobs as jobstore
from mlxtui.services.errors import ConversionError, NotFoundError
from mlxtui.services.lab import LabFinished, LabPlan, LabProgress, LabReferenceReady, LabService, LabVariantMeasured
from mlxtui.services.lab_variants import parse_variant

__all__ = ["LabJobs", "LabJobEnded", "plan_to_dict", "plan_from_dict", "main"]

_EVENTS = {cls.__name__: cls for cls in (LabProgress, LabReferenceReady, LabVariantMeasured, LabFinished)}


@dataclasses.dataclass(frozen=True)
class LabJobEnded:
    """The lab job stopped without a result: state is failed or cancelled."""

    state: str
    message: str


def plan_to_dict(plan: LabPlan) -> dict[str, Any]:
    data = {f.name: getattr(plan, f.name) for f in dataclasses.fields(plan)}
    data["variants"] = [v.name for v in plan.variants]
    return json.loads(json.dumps(data, default=str))


def plan_from_dict(data: dict[str, Any]) -> LabPlan:
    data = dict(data)
    data["variants"] = tuple(parse_variant(name) for name in data["variants"])
    data["outputs"] = tuple(Path(p) for p in data["outputs"])
    data["notes"] = tuple(data.get("notes") or ())
    for key in ("folder", "out_dir", "work", "cache"):
        data[key] = Path(data[key])
    return LabPlan(**data)


def labs_dir() -> Path:
    return paths.data_dir() / "lab" / "jobs"


class LabJobs:
    """Start, follow and cancel lab jobs."""

    poll_s = 0.1

    def __init__(self, ctx: Context, *, root: Path | None = None, python: str | None = None) -> None:
        self.ctx = ctx
        self.root = root or labs_dir()
        self.python = python or sys.executable

    def start(self, plan: LabPlan, **run: Any) -> str:
        """Write the job and start its worker in a new session; returns the job id at once."""
        job_id = jobstore.new_job_id()
        folder = self.root / job_id
        folder.mkdir(parents=True)
        (folder / "plan.json").write_text(json.dumps({"plan": plan_to_dict(plan), "run": run,
                                                      "endpoint": self.ctx.endpoint}))
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.ctx.token:
            env["HF_TOKEN"] = self.ctx.token  # in memory only, never in the job folder
        with open(folder / jobstore.LOG_FILE, "ab") as log:
            proc = subprocess.Popen([self.python, "-m", "mlxtui.services.lab_jobs", str(folder)], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, close_fds=True)
        _write_state(folder, "running", pid=proc.pid)
        return job_id

    def state(self, job_id: str) -> dict[str, Any]:
        try:
            return json.loads((self.root / job_id / "state.json").read_text())
        except (OSError, ValueError):
            raise NotFoundError(f"There is no lab job {job_id!r}.") from None

    def latest_active(self) -> str | None:
        """The newest lab job whose worker still runs (to reattach to), or None."""
        if not self.root.is_dir():
            return None
        for folder in sorted(self.root.iterdir(), reverse=True):
            try:
                state = self.state(folder.name)
            except NotFoundError:
                continue
            if state.get("state") == "running" and _alive(state.get("pid")):
                return folder.name
        return None

    async def follow(self, job_id: str) -> AsyncIterator[object]:
        """Replay, then tail the job's events until LabFinished or LabJobEnded. Closing it leaves the job running."""
        folder = self.root / job_id
        tail = jobstore.EventTail(folder / jobstore.EVENTS_FILE)
        while True:
            got = False
            for raw in tail.read():
                got = True
                kind = raw.pop("type", "")
                raw.pop("t", None)
                if kind == "ended":
                    yield LabJobEnded(str(raw.get("state")), str(raw.get("message", "")))
                    return
                cls = _EVENTS.get(kind)
                if cls is not None:
                    event = cls(**raw)
                    yield event
                    if isinstance(event, LabFinished):
                        return
            if not got:
                state = self.state(job_id)
                if state.get("state") == "running" and not _alive(state.get("pid")):
                    for raw in tail.read():  # its last words, if any
                        if raw.get("type") == "LabFinished":
                            yield LabFinished(raw["result"])
                            return
                    yield LabJobEnded("failed", "The lab worker stopped without finishing (killed, or out of memory).")
                    return
                await asyncio.sleep(self.poll_s)

    def cancel(self, job_id: str, grace_s: float = 10.0) -> None:
        """SIGTERM the worker's session (it cleans up), SIGKILL after `grace_s`."""
        pid = self.state(job_id).get("pid")
        if not _alive(pid):
            return
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet collected by the parent that started it) is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])
    except OSError:
        return True


def _write_state(folder: Path, state: str, **fields: Any) -> None:
    from mlxtui.atomic import write_text_atomic

    old: dict[str, Any] = {}
    try:
        old = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        pass
    write_text_atomic(folder / "state.json", json.dumps({**old, **fields, "state": state}))


async def _work(folder: Path) -> int:
    spec = json.loads((folder / "plan.json").read_text())
    plan = plan_from_dict(spec["plan"])
    ctx = Context(endpoint=spec.get("endpoint") or Context().endpoint, token=os.environ.get("HF_TOKEN"))
    writer = jobstore.EventWriter(folder / jobstore.EVENTS_FILE)
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        from contextlib import aclosing

        async with aclosing(LabService(ctx).run(plan, **spec.get("run", {}))) as events:
            async for event in events:
                if isinstance(event, LabFinished):
                    _write_state(folder, "done")  # before the event: a follower that sees it finds the state final
                writer.emit(type(event).__name__, **dataclasses.asdict(event))
    except asyncio.CancelledError:
        _write_state(folder, "cancelled")
        writer.emit("ended", state="cancelled", message="Stopped; nothing half-built was kept.")
        return 130
    except (ConversionError, Exception) as error:  # noqa: BLE001 - any failure ends the job with its sentence
        _write_state(folder, "failed")
        writer.emit("ended", state="failed", message=str(error) or type(error).__name__)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # belt and braces: the session is already our own
    return asyncio.run(_work(Path(args[0])))


if __name__ == "__main__":
    sys.exit(main())

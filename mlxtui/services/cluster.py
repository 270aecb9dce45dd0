"""Run a model too big for one Mac over MLX's own distributed engine: mlx.launch + `mlx_lm server`.

The service checks the hosts (cluster_checks), plans the split (cluster_plan), copies the model with
`mlx_lm share` where it is missing, then starts a supervisor process (cluster_supervisor) that runs
`mlx.launch` with every rank running mlx-lm's server under a small wrapper (cluster_rank). Rank 0's server is
an OpenAI-compatible endpoint on this Mac's loopback (`Cluster.base_url`); chat talks to it with the usual
client (cluster_chat wraps it so a dying rank becomes a clear error). `Cluster.stop()` stops every rank on
every host and checks none is left; if mlxtui itself dies, the supervisor notices its pipe closing and does
the same.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.services.cluster_checks import HostCheck, check_hosts
from mlxtui.services.cluster_hosts import ClusterError, Hosts
from mlxtui.services.cluster_plan import Plan, make_plan
from mlxtui.services.cluster_rank import wrapped_command

__all__ = [
    "ClusterService", "Cluster", "RankState", "RankLog", "ClusterReady", "ClusterStopped", "ClusterEvent",
    "mlx_launch_argv", "server_argv", "running_cluster",
]

_LOG_LINES = 500
#: clusters started by this process and not yet stopped, by base URL (Chat asks which endpoint is a cluster)
_RUNNING: dict[str, "Cluster"] = {}


def running_cluster(base_url: str) -> "Cluster | None":
    """The running cluster serving `base_url` (as Chat was given it), or None for any other endpoint."""
    return _RUNNING.get(base_url.strip().rstrip("/").removesuffix("/v1"))


@dataclass(frozen=True)
class RankState:
    """A rank's state: "starting", "running", "exited" (by itself), "stopped"; `code` once it has exited."""

    rank: int
    host: str
    state: str
    pid: int | None = None
    pgid: int | None = None
    code: int | None = None


@dataclass(frozen=True)
class RankLog:
    """One line of a rank's output (rank None: mlx.launch or mlxtui itself)."""

    rank: int | None
    text: str


@dataclass(frozen=True)
class ClusterReady:
    """The model is loaded on every rank and rank 0 answered: chat with `base_url`."""

    base_url: str
    ranks: int
    split: str
    launch_s: float


@dataclass(frozen=True)
class ClusterStopped:
    """Every rank is gone (or `survivors` lists the ones that could not be stopped); `failure` says why it ended
    when it was not asked to."""

    reason: str
    survivors: tuple[str, ...] = ()
    failure: str | None = None


ClusterEvent = RankState | RankLog | ClusterReady | ClusterStopped


def _free_port(count: int = 1) -> int:
    """A local TCP port with `count` free ports from it on (the ring backend takes one per rank)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65000:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise ClusterError("No free local ports for the ranks to talk over.")


def mlx_launch_argv(python: str = sys.executable) -> list[str]:
    """How to start mlx.launch: its own `main`, through cluster_launch, which keeps it from spinning a core
    while the ranks are idle."""
    return [python, "-m", "mlxtui.services.cluster_launch"]


def server_argv(model: Path, split: str, port: int, python: str = sys.executable) -> list[str]:
    """`mlx_lm server` as each rank runs it (rank 0 serves HTTP on the loopback; the others follow it)."""
    argv = [python, "-m", "mlx_lm", "server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port)]
    return argv + (["--pipeline"] if split == "pipeline" else [])


class Cluster:
    """A running cluster: rank states and logs, readiness, failure, and stop (which always cleans up)."""

    def __init__(self, plan: Plan, hosts: Hosts, run_dir: Path, port: int) -> None:
        self.plan, self.hosts, self.run_dir, self.port = plan, hosts, run_dir, port
        self.split = plan.split or "?"
        self.ranks = len(hosts.hosts)
        self.base_url = f"http://127.0.0.1:{port}"
        self.states = {r: RankState(r, h.ssh, "starting") for r, h in enumerate(hosts.hosts)}
        self.logs: dict[int | None, deque[str]] = {r: deque(maxlen=_LOG_LINES) for r in [None, *self.states]}
        self.failure: str | None = None
        self.failed = asyncio.Event()
        self.ready = asyncio.Event()
        self.stopped = asyncio.Event()
        self.listening = asyncio.Event()  # rank 0 said it serves on our port (not some other program on it)
        self.result: ClusterStopped | None = None
        self.ready_event: ClusterReady | None = None
        self._queue: asyncio.Queue[ClusterEvent] = asyncio.Queue()
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False
        self._started = time.perf_counter()

    # --- start -----------------------------------------------------------------------------------------

    async def start(self, launch_timeout: float = 900.0) -> None:
        """Start the supervisor (and through it mlx.launch) in a session of its own."""
        python = sys.executable
        launch = mlx_launch_argv(python)
        hostfile = self.run_dir / "hostfile.json"
        hostfile.write_text(json.dumps(self.hosts.to_json(), indent=2) + "\n")
        base = _free_port(self.ranks * 2)
        argv = [*launch, "--hostfile", str(hostfile), "--backend", self.hosts.backend, "--starting-port", str(base),
                "--", *wrapped_command(python, server_argv(self.plan.path, self.split, self.port, python))]
        spec = {"argv": argv, "hosts": [h.to_json() for h in self.hosts.hosts], "port": self.port,
                "tunnel": not self.hosts.hosts[0].is_local}
        (self.run_dir / "run.json").write_text(json.dumps(spec, indent=2) + "\n")
        with open(self.run_dir / "supervisor.log", "ab") as errors:
            self._process = await asyncio.create_subprocess_exec(
                python, "-m", "mlxtui.services.cluster_supervisor", str(self.run_dir),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=errors,
                start_new_session=True, limit=1 << 20)
        self._started = time.perf_counter()
        _RUNNING[self.base_url] = self
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._warm_up(launch_timeout))]

    def _put(self, event: ClusterEvent) -> None:
        self._queue.put_nowait(event)

    def _fail(self, message: str) -> None:
        if self.failure is None and not self._stopping:
            self.failure = message
            self.failed.set()
            self._put(RankLog(None, message))

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        async for raw in self._process.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            self._handle(event)
        if not self.stopped.is_set():  # the supervisor died without its last word
            self._fail("The cluster supervisor stopped unexpectedly; see " + str(self.run_dir / "supervisor.log"))
            self._finish(ClusterStopped("supervisor gone", (), self.failure))

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        rank = event.get("rank")
        if kind == "rank" and rank in self.states:
            state = RankState(rank, self.states[rank].host, "running", event.get("pid"), event.get("pgid"))
            self.states[rank] = state
            self._put(state)
        elif kind == "log":
            text = str(event.get("text", ""))
            if rank == 0 and "Starting httpd" in text and f"port {self.port}" in text:
                self.listening.set()
            self.logs.setdefault(rank if rank in self.states else None, deque(maxlen=_LOG_LINES)).append(text)
            self._put(RankLog(rank if rank in self.states else None, text))
        elif kind == "exit" and rank in self.states:
            old = self.states[rank]
            state = RankState(rank, old.host, "stopped" if self._stopping else "exited", old.pid, old.pgid,
                              event.get("code"))
            self.states[rank] = state
            self._put(state)
            if not self._stopping:
                code = event.get("code")
                how = f"was killed by signal {-code}" if isinstance(code, int) and code < 0 else f"exited with code {code}"
                tail = " Last lines: " + " | ".join(list(self.logs.get(rank, []))[-3:]) if self.logs.get(rank) else ""
                self._fail(f"Rank {rank} on {old.host} {how}; every other rank was stopped.{tail}")
        elif kind == "stopping" and not self._stopping and self.failure is None:
            self._fail(f"The cluster stopped: {event.get('reason')}.")
        elif kind == "stopped":
            survivors = tuple(f"rank {s.get('rank')} on {s.get('host')} (group {s.get('pgid')})"
                              for s in event.get("survivors") or [])
            for r, old in self.states.items():
                if old.state in ("starting", "running"):
                    self.states[r] = RankState(r, old.host, "stopped", old.pid, old.pgid, old.code)
                    self._put(self.states[r])
            failure = self.failure
            if survivors:
                failure = "These ranks could not be stopped: " + ", ".join(survivors) + "."
            self._finish(ClusterStopped(str(event.get("reason") or "stopped"), survivors, failure))

    def _finish(self, result: ClusterStopped) -> None:
        if self.result is None:
            _RUNNING.pop(self.base_url, None)
            self.result = result
            self.stopped.set()
            if result.failure:
                self.failed.set()
            self._put(result)

    async def _warm_up(self, timeout: float) -> None:
        """Ask rank 0 for one token: it answers once every rank has loaded its part."""
        import httpx

        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0.0}
        deadline = time.monotonic() + timeout
        stopped = asyncio.ensure_future(self.stopped.wait())
        listening = asyncio.ensure_future(self.listening.wait())
        await asyncio.wait([stopped, listening], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=2.0)) as client:
            while not self.stopped.is_set() and time.monotonic() < deadline:
                try:
                    response = await client.post(self.base_url + "/v1/chat/completions", json=body)
                except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
                    await asyncio.wait([stopped], timeout=0.25)  # rank 0 not listening yet
                    continue
                except httpx.HTTPError as error:
                    self._fail(f"Rank 0 did not answer: {error}.")
                    break
                if response.status_code >= 400:
                    self._fail(f"Rank 0 refused the first request ({response.status_code}): {response.text[:200]}")
                    break
                self.ready_event = ClusterReady(self.base_url, self.ranks, self.split,
                                                time.perf_counter() - self._started)
                self.ready.set()
                self._put(self.ready_event)
                break
        stopped.cancel()
        if self.ready.is_set():
            return
        if not self.ready.is_set() and not self.stopped.is_set():
            self._fail(f"The model was not ready after {timeout:.0f} s.")
        if self.failure:
            await self.stop()

    # --- use -------------------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[ClusterEvent]:
        """Every state change and log line, until the cluster has stopped."""
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, ClusterStopped):
                return

    async def wait_ready(self) -> ClusterReady:
        """Wait until the model answers, or raise ClusterError with why it never will."""
        ready = asyncio.ensure_future(self.ready.wait())
        failed = asyncio.ensure_future(self.failed.wait())
        try:
            await asyncio.wait([ready, failed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            failed.cancel()
        if self.ready_event is not None and not self.failed.is_set():
            return self.ready_event
        raise ClusterError(self.failure or "The cluster stopped before the model was ready.",
                           hint=f"Rank logs: {self.run_dir}.")

    async def stop(self, timeout: float = 120.0) -> ClusterStopped:
        """Stop every rank on every host and confirm none is left (safe to call twice, or after a failure)."""
        self._stopping = self.failure is None
        process = self._process
        if process is not None and process.stdin is not None and not process.stdin.is_closing():
            try:
                if process.returncode is None:
                    process.stdin.write(b"stop\n")
                    await process.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass
            process.stdin.close()
        try:
            await asyncio.wait_for(self.stopped.wait(), timeout)
        except asyncio.TimeoutError:
            self._finish(ClusterStopped("timeout", ("the supervisor did not report",),
                                        f"The cluster did not confirm it stopped within {timeout:.0f} s; "
                                        f"see {self.run_dir}."))
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except asyncio.TimeoutError:
                process.kill()
        if self._tasks:
            await asyncio.wait(self._tasks[:1], timeout=10)  # the reader ends at the supervisor's EOF
        for task in self._tasks:
            task.cancel()
        assert self.result is not None
        return self.result


class ClusterService:
    """Check hosts, plan, copy the model, and launch clusters."""

    def __init__(self, ctx: Any = None) -> None:
        self.ctx = ctx

    async def check(self, hosts: Hosts, model: str | None = None) -> list[HostCheck]:
        """Probe every host (concurrently) against this Mac."""
        return await check_hosts(hosts, model)

    async def plan(self, model: str, hosts: Hosts, split: str | None = None,
                   checks: list[HostCheck] | None = None) -> Plan:
        """Plan `model` over `hosts`; check the hosts first when no checks are given."""
        if checks is None:
            from mlxtui.services.cluster_plan import resolve_model

            path = await asyncio.to_thread(resolve_model, model)
            checks = await self.check(hosts, str(path))
        return await asyncio.to_thread(make_plan, model, hosts, checks, split)

    async def copy(self, plan: Plan, hosts: Hosts, checks: list[HostCheck]) -> AsyncIterator[RankLog]:
        """Copy the model with `mlx_lm share` to hosts that lack it (nothing to do when all have it)."""
        missing = sorted({c.host.ssh for c in checks if not c.host.is_local and not c.model_present})
        if not missing:
            yield RankLog(None, "The model is already on every host.")
            return
        yield RankLog(None, f"Copying {plan.path} to {', '.join(missing)} with mlx_lm share…")
        run_dir = _run_dir()
        hostfile = run_dir / "hostfile.json"
        hostfile.write_text(json.dumps(hosts.to_json(), indent=2) + "\n")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mlx_lm", "share", "--path", str(plan.path), "--hostfile", str(hostfile),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True, cwd=run_dir)
        try:
            assert process.stdout is not None
            async for raw in process.stdout:
                yield RankLog(None, raw.decode("utf-8", "replace").rstrip())
            if await process.wait() != 0:
                raise ClusterError(f"mlx_lm share could not copy the model (exit code {process.returncode}).")
        finally:
            if process.returncode is None:
                os.killpg(process.pid, 15)
                await process.wait()

    async def launch(self, plan: Plan, hosts: Hosts, *, launch_timeout: float = 900.0) -> Cluster:
        """Start the ranks for an accepted plan; refuse a plan with problems (the reason is the message)."""
        if not plan.ok:
            raise ClusterError("This plan cannot run: " + "; ".join(plan.problems or ("no split chosen",)) + ".")
        cluster = Cluster(plan, hosts, _run_dir(), _free_port())
        await cluster.start(launch_timeout)
        return cluster


    async def open(self, model: str, hosts: Hosts, split: str | None = None, *,
                   say: Callable[[str], None] | None = None, launch_timeout: float = 900.0) -> Cluster:
        """Check, plan (refusing with the reasons), copy, launch and wait until the model answers.

        `say` receives progress lines. On any failure the ranks already started are stopped.
        """
        say = say or (lambda line: None)
        say(f"Checking {len(hosts.hosts)} ranks on {len(set(hosts.hosts))} hosts…")
        from mlxtui.services.cluster_plan import resolve_model

        path = await asyncio.to_thread(resolve_model, model)
        checks = await self.check(hosts, str(path))
        plan = await self.plan(model, hosts, split, checks)
        for line in plan.lines():
            say(line)
        if not plan.ok:
            raise ClusterError("Refused: " + "; ".join(plan.problems) + ".")
        async for log in self.copy(plan, hosts, checks):
            say(log.text)
        cluster = await self.launch(plan, hosts, launch_timeout=launch_timeout)
        try:
            ready = await cluster.wait_ready()
        except BaseException:
            await cluster.stop()
            raise
        say(f"Ready after {ready.launch_s:.1f} s: {ready.split} over {ready.ranks} ranks at {ready.base_url}")
        return cluster


def _run_dir() -> Path:
    """A fresh folder for one run's hostfile, run spec, events and supervisor log."""
    root = paths.state_dir() / "cluster"
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        folder = root / f"{stamp}-{os.getpid()}-{n}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise ClusterError(f"Could not make a run folder under {root}.")

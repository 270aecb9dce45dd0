"""`python -m mlxtui.services.cluster_supervisor RUN_DIR`: runs mlx.launch and makes sure it all stops.

mlxtui starts this in a session of its own and talks to it over pipes: it reads RUN_DIR/run.json (the
mlx.launch command line and the hosts), starts mlx.launch in a further session, and prints JSON lines
(rank started, log line, rank exited, stopped). A line "stop" on stdin, or stdin closing (mlxtui quit,
crashed or lost its terminal), or any rank exiting, stops everything: each rank's process group on its
host (SIGTERM, then SIGKILL), mlx.launch's group, then a check that no rank process is left anywhere.
A plain SIGTERM to mlx.launch would leave ranks running; this is why the groups are killed and checked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mlxtui.services.cluster_rank import parse_line

__all__ = ["main", "live_in_group", "kill_group"]

_GRACE_S = 10.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DIED = re.compile(r"Node with rank (\d+) exited with code (-?\d+)")


def _ps_groups(ssh: list[str] | None) -> dict[int, int] | None:
    """Live (not zombie) processes per process group on a host: `ps` here, or over ssh."""
    argv = ["ps", "-A", "-o", "pgid=,stat="]
    try:
        out = subprocess.run((ssh + [" ".join(argv)]) if ssh else argv, capture_output=True, text=True,
                             timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    counts: dict[int, int] = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit() and not parts[1].startswith("Z"):
            counts[int(parts[0])] = counts.get(int(parts[0]), 0) + 1
    return counts


def live_in_group(pgid: int, ssh: list[str] | None = None) -> int | None:
    """How many live processes are in group `pgid` (None when the host could not be asked)."""
    counts = _ps_groups(ssh)
    return None if counts is None else counts.get(pgid, 0)


def kill_group(pgid: int, sig: int, ssh: list[str] | None = None) -> None:
    """Signal a whole process group, here or over ssh; a group already gone is fine."""
    if pgid <= 1:
        return
    if ssh is None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        return
    try:
        subprocess.run(ssh + [f"kill -{int(sig)} -- -{int(pgid)}"], capture_output=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        pass


class Supervisor:
    """One cluster run: mlx.launch, the ranks it reports, and the stop sequence."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.spec: dict[str, Any] = json.loads((run_dir / "run.json").read_text())
        self.hosts: list[dict[str, Any]] = self.spec["hosts"]
        self.ranks: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.reason = ""
        self.out_lock = threading.Lock()
        self.tunnel: subprocess.Popen[bytes] | None = None
        self.launch: subprocess.Popen[bytes] | None = None

    def emit(self, **event: Any) -> None:
        line = json.dumps(event) + "\n"
        with self.out_lock:
            try:
                sys.stdout.write(line)
                sys.stdout.flush()
            except (BrokenPipeError, ValueError):
                self.request_stop("mlxtui is gone")
            with open(self.run_dir / "events.jsonl", "a") as handle:
                handle.write(line)

    def ssh_for(self, rank: int) -> list[str] | None:
        host = self.hosts[rank] if 0 <= rank < len(self.hosts) else None
        if host is None or host["ssh"] == "127.0.0.1":
            return None
        return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", host["ssh"]]

    def request_stop(self, reason: str) -> None:
        with self.lock:
            if not self.stop_event.is_set():
                self.reason = reason
                self.stop_event.set()

    def read_launch(self, stream: Any, name: str) -> None:
        for raw in iter(stream.readline, b""):
            kind, rank, payload = parse_line(raw.decode("utf-8", "replace"))
            if kind == "rank" and rank is not None:
                info = json.loads(payload)
                with self.lock:
                    self.ranks[rank] = info
                self.emit(event="rank", rank=rank, state="running", pid=info.get("pid"), pgid=info.get("pgid"),
                          host=self.hosts[rank]["ssh"] if rank < len(self.hosts) else "?")
                if rank == 0 and self.spec.get("tunnel"):
                    self.open_tunnel()
            elif kind == "log":
                self.emit(event="log", rank=rank, text=payload)
            elif kind == "exit":
                self.emit(event="exit", rank=rank, code=int(payload) if payload.lstrip("-").isdigit() else None)
                self.request_stop(f"rank {rank} exited" + (f" with code {payload}" if payload != "0" else ""))
            elif kind == "stopping":
                self.emit(event="log", rank=rank, text=f"[stopping: {payload}]")
            elif payload.strip():
                self.emit(event="log", rank=None, text=_ANSI.sub("", payload))
                died = _DIED.search(_ANSI.sub("", payload))
                if died and not self.stop_event.is_set():
                    # A rank killed outright cannot say so itself; mlx.launch's warning does.
                    rank, code = int(died.group(1)), int(died.group(2))
                    self.emit(event="exit", rank=rank, code=code)
                    self.request_stop(f"rank {rank} exited with code {code}")

    def open_tunnel(self) -> None:
        """Rank 0 serves on its host's loopback; forward a local port to it when that host is remote."""
        port = int(self.spec["port"])
        self.tunnel = subprocess.Popen(
            ["ssh", "-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-L",
             f"127.0.0.1:{port}:127.0.0.1:{port}", self.hosts[0]["ssh"]],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def read_control(self) -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                self.request_stop("stopped")
                return
        self.request_stop("mlxtui is gone")

    def run(self) -> int:
        self.launch = subprocess.Popen(self.spec["argv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, start_new_session=True, cwd=self.run_dir)
        self.emit(event="launched", pid=self.launch.pid)
        readers = [threading.Thread(target=self.read_launch, args=(s, n), daemon=True)
                   for s, n in ((self.launch.stdout, "out"), (self.launch.stderr, "err"))]
        for thread in readers:
            thread.start()
        threading.Thread(target=self.read_control, daemon=True).start()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, lambda n, f: self.request_stop(f"supervisor got signal {n}"))
        while not self.stop_event.wait(0.5):
            if self.launch.poll() is not None:
                self.request_stop(f"mlx.launch exited with code {self.launch.returncode}")
        self.stop_all()
        return 0

    def stop_all(self) -> None:
        assert self.launch is not None
        self.emit(event="stopping", reason=self.reason)
        with self.lock:
            ranks = dict(self.ranks)
        for rank, info in ranks.items():
            kill_group(int(info.get("pgid") or 0), signal.SIGTERM, self.ssh_for(rank))
        kill_group(self.launch.pid, signal.SIGTERM)
        survivors = self.wait_gone(ranks, _GRACE_S)
        for rank in survivors:
            kill_group(int(ranks[rank].get("pgid") or 0), signal.SIGKILL, self.ssh_for(rank))
        kill_group(self.launch.pid, signal.SIGKILL)
        survivors = self.wait_gone(ranks, _GRACE_S) if survivors else []
        try:
            self.launch.wait(timeout=_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        if self.tunnel is not None:
            self.tunnel.kill()
            self.tunnel.wait()
        self.emit(event="stopped", reason=self.reason,
                  survivors=[{"rank": r, "host": self.hosts[r]["ssh"], "pgid": ranks[r].get("pgid")} for r in survivors])

    def wait_gone(self, ranks: dict[int, dict[str, Any]], timeout: float) -> list[int]:
        """Ranks whose group still has a live process after `timeout` (polled; unknown hosts count as alive)."""
        deadline = time.monotonic() + timeout
        while True:
            left = [r for r, info in ranks.items()
                    if live_in_group(int(info.get("pgid") or 0), self.ssh_for(r)) != 0]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m mlxtui.services.cluster_supervisor RUN_DIR", file=sys.stderr)
        return 2
    return Supervisor(Path(sys.argv[1])).run()


if __name__ == "__main__":
    sys.exit(main())

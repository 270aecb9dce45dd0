"""The shared demo Hub: one background server per demo root, reused by every `mlxtui --demo` process.

`ensure_running(root)` seeds the root if needed, then reuses the server recorded in `root/running.json` when
it still answers, or starts a detached one (its own session, so closing a terminal or an SSH connection does
not stop it) and waits for its address. The server exits by itself after `idle_s` seconds without a request
(`MLXTUI_DEMO_IDLE_S`, default 30 minutes), so a URL printed by one command stays reachable for the next,
and nothing lingers for long.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunningHub", "ensure_running", "read_running", "IDLE_S"]

RUNNING_FILE = "running.json"
#: default seconds without a request before the shared demo Hub stops
IDLE_S = 1800.0


@dataclass(frozen=True)
class RunningHub:
    """A demo Hub server in another process."""

    url: str
    pid: int
    started: bool  # True when this call started it

    def stop(self) -> None:
        """Stop it now (tests, `mlxtui devhub` cleanup)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, 15)


def _idle_s() -> float:
    try:
        return max(1.0, float(os.environ.get("MLXTUI_DEMO_IDLE_S", IDLE_S)))
    except ValueError:
        return IDLE_S


def _answers(url: str, timeout: float = 1.0) -> bool:
    host, _, port = url.rpartition("://")[2].partition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # not ours: not our server
    return True


def read_running(root: Path) -> RunningHub | None:
    """The server recorded for `root`, if it is alive and answers."""
    try:
        data = json.loads((root / RUNNING_FILE).read_text(encoding="utf-8"))
        url, pid = str(data["url"]), int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _alive(pid) and _answers(url):
        return RunningHub(url, pid, started=False)
    return None


def _spawn_detached(argv: list[str], log: Path) -> None:
    """Start argv in its own session with no parent to reap it: an intermediate process starts it and exits,
    so a server that stops later never lingers as a zombie of a long-running app."""
    launcher = (
        "import subprocess, sys\n"
        "with open(sys.argv[1], 'ab') as log:\n"
        "    subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=log,\n"
        "                     start_new_session=True, close_fds=True)\n"
    )
    subprocess.run([sys.executable, "-c", launcher, str(log), *argv], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


def ensure_running(root: Path, *, timeout_s: float = 60.0) -> RunningHub:
    """Seed `root` if needed and return its running demo Hub, starting one when there is none."""
    from mlxtui.devhub.demo import root_lock, seed_demo

    root = Path(root).absolute()
    seed_demo(root)
    with root_lock(root, ".daemon.lock"):  # two `--demo` commands started together share one server
        running = read_running(root)
        if running is not None:
            return running
        (root / RUNNING_FILE).unlink(missing_ok=True)
        _spawn_detached([sys.executable, "-m", "mlxtui.devhub.daemon", str(root), str(_idle_s())],
                        root / "daemon.log")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            running = read_running(root)
            if running is not None:
                return RunningHub(running.url, running.pid, started=True)
            time.sleep(0.05)
    from mlxtui.services.errors import MlxtuiError

    raise MlxtuiError(f"The demo Hub did not start; see {root / 'daemon.log'}.")


def serve(root: Path, idle_s: float) -> int:
    """Run the server for `root` until `idle_s` seconds pass without a request (or SIGTERM)."""
    import signal

    from mlxtui.atomic import write_text_atomic
    from mlxtui.devhub.server import DevHub

    hub = DevHub(root, host="127.0.0.1", port=0).start()
    stopping = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal does not stop a shared server
    write_text_atomic(root / RUNNING_FILE, json.dumps({"url": hub.url, "pid": os.getpid()}) + "\n")
    last_count, last_seen = -1, time.monotonic()
    try:
        while not stopping:
            time.sleep(0.5)
            count = hub.log.total
            if count != last_count:
                last_count, last_seen = count, time.monotonic()
            elif time.monotonic() - last_seen > idle_s:
                break
    finally:
        with contextlib.suppress(OSError, ValueError, KeyError):
            recorded = json.loads((root / RUNNING_FILE).read_text(encoding="utf-8"))
            if recorded.get("pid") == os.getpid():
                (root / RUNNING_FILE).unlink()
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1]), float(sys.argv[2])))

"""The wrapper every rank runs under mlx.launch, so that no rank can outlive its cluster.

mlx.launch starts `PYTHON -c WRAPPER mlx_lm server ...` on each host. The wrapper (standard library only:
hosts need no mlxtui) puts the rank in a process group of its own, announces its pid and group on stdout,
runs the server as its child, and relays the server's output line by line, tagged with the rank (mlx.launch
mixes every rank's output into one stream). It stops its whole group when asked (SIGTERM, SIGHUP, SIGINT),
when its lifeline goes (stdin closes: mlx.launch or the SSH connection is gone) or when it is orphaned.
Every line it prints is one `write`, so lines of two ranks never interleave.
"""

from __future__ import annotations

__all__ = ["WRAPPER", "MARK", "parse_line", "wrapped_command"]

#: the prefix of every line a wrapper prints: "@@mlxtui <kind> <rank> <payload>"
MARK = "@@mlxtui"

WRAPPER = r"""
import json, os, signal, socket, subprocess, sys, threading, time
rank = os.environ.get("MLX_RANK", "?")
try:
    os.setpgid(0, 0)
except OSError:
    pass  # already leading a group (a session sshd started)
pgid = os.getpgid(0)
def say(kind, payload):
    data = ("@@mlxtui %s %s %s\n" % (kind, rank, payload.replace("\r", "").replace("\n", " "))).encode("utf-8", "replace")
    try:
        os.write(1, data[:3800] + (b"\n" if len(data) > 3800 else b""))
    except OSError:
        pass
say("rank", json.dumps({"pid": os.getpid(), "pgid": pgid, "host": socket.gethostname()}))
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
lock = threading.Lock()
def stop_all(why):
    if not lock.acquire(blocking=False):
        return
    say("stopping", why)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.time() + 8
        while child.poll() is None and time.time() < deadline:
            time.sleep(0.05)
    finally:
        say("exit", str(child.poll() if child.poll() is not None else -9))
        os.killpg(pgid, signal.SIGKILL)  # anything left, this wrapper included
for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(sig, lambda n, f: stop_all("signal %d" % n))
def lifeline():
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop_all("lifeline closed")
def orphaned(parent=os.getppid()):
    while os.getppid() == parent:
        time.sleep(1.0)
    stop_all("orphaned")
threading.Thread(target=lifeline, daemon=True).start()
threading.Thread(target=orphaned, daemon=True).start()
for raw in iter(child.stdout.readline, b""):
    say("log", raw.decode("utf-8", "replace").rstrip("\n"))
code = child.wait()
if lock.acquire(blocking=False):
    say("exit", str(code))
    sys.exit(code if code >= 0 else 128 - code)
while True:
    time.sleep(1)  # stop_all is running on another thread; it ends this process
"""


def wrapped_command(python: str, argv: list[str]) -> list[str]:
    """The command line mlx.launch runs on every host: the wrapper around `argv`."""
    return [python, "-u", "-c", WRAPPER, *argv]


def parse_line(line: str) -> tuple[str, int | None, str]:
    """(kind, rank, payload) of a line from mlx.launch; kind "launcher" for lines no wrapper wrote."""
    line = line.rstrip("\r\n")
    if line.startswith(MARK + " "):
        parts = line.split(" ", 3)
        if len(parts) >= 3:
            rank = int(parts[2]) if parts[2].isdigit() else None
            return parts[1], rank, parts[3] if len(parts) > 3 else ""
    return "launcher", None, line

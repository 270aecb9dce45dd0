"""Time to first frame of `mlxtui` against a bare Textual app, in a real pseudo-terminal.

Each run starts a fresh process on a pty (120x36) and stops the clock when the first frame's text
reaches the terminal. Runs alternate; prints the medians and their ratio (goal: at most 1.3).
"""

from __future__ import annotations

import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import fcntl
import time
from pathlib import Path

RUNS = 15

BARE = """
from textual.app import App
from textual.widgets import Footer, Header, Static

class Bare(App):
    def compose(self):
        yield Header()
        yield Static("first-frame-marker")
        yield Footer()

Bare().run()
"""


def first_frame_seconds(argv: list[str], marker: bytes, env: dict[str, str], timeout: float = 30.0) -> float:
    """Start argv on a pty; seconds until `marker` appears in what it writes to the terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        while time.perf_counter() - start < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
                if marker in seen:
                    return time.perf_counter() - start
        raise RuntimeError(f"{argv} never drew {marker!r}")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        os.close(master)


def main() -> None:
    mlxtui = str(Path(sys.executable).with_name("mlxtui"))
    with tempfile.TemporaryDirectory() as home:
        # Bytecode caching on, as on a user's machine (this sandbox sets PYTHONDONTWRITEBYTECODE, which
        # would make every run recompile mlxtui's own modules and measure the compiler, not start-up).
        env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "TERM": "xterm-256color",
            "XDG_CONFIG_HOME": home,
            "XDG_DATA_HOME": home,
            "HF_HOME": home,
        }
        bare_cmd = [sys.executable, "-c", BARE]
        app_cmd = [mlxtui, "--endpoint", "http://127.0.0.1:9"]
        first_frame_seconds(bare_cmd, b"first-frame-marker", env)  # warm caches and bytecode
        first_frame_seconds(app_cmd, b"Search", env)
        bare, app, ready = [], [], []
        for _ in range(RUNS):
            bare.append(first_frame_seconds(bare_cmd, b"first-frame-marker", env))
            app.append(first_frame_seconds(app_cmd, b"Search", env))
            # the search box's placeholder: the Search pane mounted right after the first frame
            ready.append(first_frame_seconds(app_cmd, b"earch models (e.g", env))  # the first letter wears the cursor
    b, a, r = statistics.median(bare), statistics.median(app), statistics.median(ready)
    print(f"bare Textual app: {b * 1000:.0f} ms to first frame (median of {RUNS}, pty 120x36)")
    print(f"mlxtui:           {a * 1000:.0f} ms to first frame, {r * 1000:.0f} ms to a usable search box")
    print(f"ratio: {a / b:.2f} (goal <= 1.30); search box ready: {r / b:.2f}")


if __name__ == "__main__":
    main()

"""Time to first frame of `mlxtui` against a bare Textual app, alternating runs in fresh processes.

Prints the median of each and their ratio (goal: at most 1.3).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

RUNS = 10

BARE = """
from textual.app import App
from textual.widgets import Footer, Header, Static

class Bare(App):
    def compose(self):
        yield Header()
        yield Static("hello")
        yield Footer()

async def first_frame(pilot):
    await pilot.pause()
    pilot.app.exit()

Bare().run(headless=True, size=(120, 36), auto_pilot=first_frame)
"""

MLXTUI = """
from mlxtui.cli import build_context, build_parser
from mlxtui.ui.app import MlxtuiApp

async def first_frame(pilot):
    await pilot.pause()
    pilot.app.exit()

ctx, problems = build_context(build_parser().parse_args(["--endpoint", "http://127.0.0.1:9"]))
MlxtuiApp(ctx, startup_notices=problems).run(headless=True, size=(120, 36), auto_pilot=first_frame)
"""


def timed(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    import os

    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "XDG_CONFIG_HOME": home, "XDG_DATA_HOME": home, "HF_HOME": home}
        timed(BARE, env), timed(MLXTUI, env)  # warm the file cache and bytecode
        bare, app = [], []
        for _ in range(RUNS):
            bare.append(timed(BARE, env))
            app.append(timed(MLXTUI, env))
    b, a = statistics.median(bare), statistics.median(app)
    print(f"bare Textual app: {b * 1000:.0f} ms to first frame (median of {RUNS})")
    print(f"mlxtui:           {a * 1000:.0f} ms to first frame (median of {RUNS})")
    print(f"ratio: {a / b:.2f} (goal <= 1.30)")


if __name__ == "__main__":
    main()

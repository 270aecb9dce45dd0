"""Conversion figures: `mlxtui convert` against `python -m mlx_lm convert` on the same ~200M-parameter
generated model with the same options, in alternating runs, plus the CPU the UI uses while a job runs.

1. Wall time and peak memory, as ratios mlxtui / mlx-lm (goals: <= 1.05 and <= 1.10). Each run happens in
   a wrapper process that starts the command, samples the summed RSS of the whole process tree (the CLI and
   its worker both count) every 20 ms, and also reads getrusage(RUSAGE_CHILDREN).ru_maxrss (the largest
   single process) after waiting for it.
2. The UI's own CPU while a conversion runs: the app is driven headless (App.run_test), a conversion is
   started from the Convert pane, and the app process's CPU time over the job's wall time is reported.

    python bench/convert.py [--runs 3] [--parameters 200000000] [--options "-q"]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _models import bench_model  # noqa: E402

# Runs one command, samples its process tree's RSS, prints {"wall_s", "tree_peak_kb", "rusage_max_kb", "rc"}.
_WRAPPER = r"""
import json, os, resource, subprocess, sys, threading, time

def tree_rss_kb(root):
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(pid))
        except OSError:
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total

cmd = json.loads(sys.argv[1])
start = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
peak = 0
stop = threading.Event()
def sample():
    global peak
    while not stop.is_set():
        peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.02)
t = threading.Thread(target=sample, daemon=True)
t.start()
rc = proc.wait()
wall = time.perf_counter() - start
stop.set(); t.join()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall_s": wall, "tree_peak_kb": peak, "rusage_max_kb": usage.ru_maxrss, "rc": rc}))
"""


def measure(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _WRAPPER, json.dumps(cmd)], capture_output=True, text=True, env=env, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"command failed ({result['rc']}): {' '.join(cmd)}")
    return result


def ui_cpu(model: Path, options: list[str], env_dir: Path) -> tuple[float, float]:
    """(UI process CPU seconds, job wall seconds) for one conversion run from the Convert pane, headless."""
    code = r"""
import asyncio, json, resource, sys, time
from mlxtui.services import Context
from mlxtui.services.convert import options_from_label
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.convert import ConvertPane
from textual.widgets import Static

async def main():
    model, out = sys.argv[1], sys.argv[2]
    app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False)
    async with app.run_test(size=(120, 36)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.query(ConvertPane):
                break
        pane = app.query_one(ConvertPane)
        app.query_one("#panes").active = "convert"
        pane.prefill(model)
        await pilot.pause(0.2)
        pane.query_one("#convert-output").value = out
        await pilot.pause(0.2)
        cpu0, t0 = time.process_time(), time.perf_counter()
        pane.action_run()
        while True:
            await asyncio.sleep(0.2)
            text = str(pane.query_one("#convert-job", Static).render())
            if " done." in text or "failed" in text or "Not started" in text:
                break
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        print(json.dumps({"cpu_s": cpu, "wall_s": wall, "status": text}))

asyncio.run(main())
"""
    env = _env(env_dir)
    out_dir = env_dir / "ui-out"
    result = subprocess.run([sys.executable, "-c", code, str(model), str(out_dir)], capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"UI run failed: {result.stderr[-2000:]}")
    data = json.loads(lines[-1])
    if " done." not in data["status"]:
        raise SystemExit(f"UI conversion did not finish: {data['status']}")
    shutil.rmtree(out_dir, ignore_errors=True)
    return data["cpu_s"], data["wall_s"]


_INPROCESS = r"""
import contextlib, io, json, os, shutil, sys, time
model, runs, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
options = json.loads(sys.argv[4])
from mlx_lm import convert
from mlxtui.services import jobs as js
from mlxtui.services.convert import ConvertOptions
from mlxtui.services.convert_worker import run_job

def ours(out):
    job = js.Job(id=js.new_job_id(), source=model, kind="local",
                 variants=[js.Variant(options=ConvertOptions(**options).to_dict(), output=out, label="x")])
    job.dir = js.paths.jobs_dir() / job.id
    job.save()
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_job(job.dir) == 0

def theirs(out):
    with contextlib.redirect_stdout(io.StringIO()):
        convert(model, out, **options)

times = {"mlxtui": [], "mlx_lm": []}
for run in range(runs):
    order = [("mlxtui", ours), ("mlx_lm", theirs)] if run % 2 == 0 else [("mlx_lm", theirs), ("mlxtui", ours)]
    for name, fn in order:
        out = os.path.join(work, f"inproc-{name}")
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        fn(out)
        times[name].append(time.perf_counter() - t)
        shutil.rmtree(out, ignore_errors=True)
print(json.dumps(times))
"""


def in_process(model: Path, runs: int, options: list[str], work: Path) -> dict[str, list[float]]:
    """The conversion alone (no interpreter start-up): run_job against mlx_lm.convert in one process."""
    from mlx_lm.convert import configure_parser

    parsed = vars(configure_parser().parse_args(["--hf-path", "x", *options]))
    kwargs = {k: parsed[k] for k in ("quantize", "q_bits", "q_group_size", "q_mode", "dtype", "dequantize")}
    kwargs["quant_predicate"] = parsed["quant_predicate"]
    out = subprocess.run([sys.executable, "-c", _INPROCESS, str(model), str(runs), str(work), json.dumps(kwargs)],
                         capture_output=True, text=True, env=_env(work), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _env(base: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        XDG_DATA_HOME=str(base / "data"),
        XDG_CONFIG_HOME=str(base / "config"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_OFFLINE="1",
    )
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each tool (alternating)")
    parser.add_argument("--parameters", type=int, default=200_000_000)
    parser.add_argument("--options", default="-q", help="mlx_lm.convert options used for both (default: -q)")
    parser.add_argument("--no-ui", action="store_true", help="skip the UI CPU measurement")
    args = parser.parse_args()

    t = time.perf_counter()
    model = bench_model(args.parameters)
    size = sum(p.stat().st_size for p in model.glob("*.safetensors"))
    print(f"model: {model} ({size / 1e6:.0f} MB of weights, ready in {time.perf_counter() - t:.1f} s)")
    options = args.options.split()
    python = sys.executable
    work = Path(tempfile.mkdtemp(prefix="mlxtui-bench-convert-"))
    env = _env(work)
    results: dict[str, list[dict[str, float]]] = {"mlxtui": [], "mlx_lm": []}
    try:
        for run in range(args.runs):
            order = ["mlxtui", "mlx_lm"] if run % 2 == 0 else ["mlx_lm", "mlxtui"]
            for tool in order:
                out = work / f"out-{tool}-{run}"
                if tool == "mlxtui":
                    cmd = [python, "-m", "mlxtui", "convert", "--hf-path", str(model), "--mlx-path", str(out), *options]
                else:
                    cmd = [python, "-m", "mlx_lm", "convert", "--hf-path", str(model), "--mlx-path", str(out), *options]
                r = measure(cmd, env)
                results[tool].append(r)
                print(f"run {run + 1} {tool:<7} wall {r['wall_s']:6.2f} s  tree peak {r['tree_peak_kb'] / 1024:7.0f} MB  "
                      f"largest process {r['rusage_max_kb'] / 1024:7.0f} MB", flush=True)
                shutil.rmtree(out, ignore_errors=True)

        def med(tool: str, key: str) -> float:
            return statistics.median(r[key] for r in results[tool])

        wall = med("mlxtui", "wall_s") / med("mlx_lm", "wall_s")
        tree = med("mlxtui", "tree_peak_kb") / med("mlx_lm", "tree_peak_kb")
        largest = med("mlxtui", "rusage_max_kb") / med("mlx_lm", "rusage_max_kb")
        print(f"wall time ratio mlxtui/mlx-lm (median of {args.runs}): {wall:.3f}  (goal <= 1.05)")
        print(f"peak memory ratio, whole process tree:            {tree:.3f}  (goal <= 1.10)")
        print(f"peak memory ratio, largest single process:        {largest:.3f}")
        inner = in_process(model, args.runs, options, work)
        ratio = statistics.median(inner["mlxtui"]) / statistics.median(inner["mlx_lm"])
        print(f"conversion alone, in one process (run_job vs mlx_lm.convert): {statistics.median(inner['mlxtui']):.2f} s vs "
              f"{statistics.median(inner['mlx_lm']):.2f} s, ratio {ratio:.3f}")
        if not args.no_ui:
            cpu, job_wall = ui_cpu(model, options, work)
            print(f"UI process CPU while a conversion runs: {cpu:.2f} s over {job_wall:.1f} s = {100 * cpu / job_wall:.1f}% of one core")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

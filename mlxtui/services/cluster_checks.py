"""Check each host over SSH before a launch: reachable, same Python/mlx/mlx-lm, memory, RDMA, the model.

A small probe (standard library only, so it runs on a host without mlxtui) goes over `ssh host PYTHON -c
PROBE` and prints one JSON line. mlx.launch runs the same interpreter path on every host, so the probe uses
this Mac's `sys.executable`: a host without it at that path is told so. Local (127.0.0.1) entries run the
probe here, without SSH.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from mlxtui.format import human_bytes, printable
from mlxtui.services.cluster_hosts import Host, Hosts

__all__ = ["HostCheck", "PROBE", "check_host", "check_hosts", "local_facts", "ssh_argv", "run_on_host"]

#: printed by the probe on one line; standard library only, Python 3.8+
PROBE = r"""
import json, os, platform, subprocess, sys
from importlib import metadata
def version(name):
    try:
        return metadata.version(name)
    except Exception:
        return None
def memory():
    total = free = None
    try:
        if sys.platform == "darwin":
            run = lambda *a: subprocess.run(list(a), capture_output=True, text=True, timeout=5).stdout
            total = int(run("sysctl", "-n", "hw.memsize"))
            out = run("vm_stat")
            page = int(out.split("page size of")[1].split()[0])
            pages = {}
            for line in out.splitlines()[1:]:
                key, _, value = line.partition(":")
                try:
                    pages[key.strip()] = int(value.strip().rstrip("."))
                except ValueError:
                    pass
            free = page * sum(pages.get(k, 0) for k in ("Pages free", "Pages inactive", "Pages speculative", "Pages purgeable"))
        else:
            for line in open("/proc/meminfo"):
                key, _, value = line.partition(":")
                if key == "MemTotal":
                    total = int(value.split()[0]) * 1024
                elif key == "MemAvailable":
                    free = int(value.split()[0]) * 1024
    except Exception:
        pass
    return total, free
def rdma():
    try:
        out = subprocess.run(["ibv_devices"], capture_output=True, text=True, timeout=5).stdout
    except Exception:
        return None
    return [w for w in out.split() if w.startswith("rdma_")]
total, free = memory()
model = sys.argv[1] if len(sys.argv) > 1 else ""
print(json.dumps({
    "python": platform.python_version(), "executable": sys.executable, "platform": sys.platform,
    "machine": platform.machine(), "macos": platform.mac_ver()[0] or None,
    "mlx": version("mlx"), "mlx_lm": version("mlx-lm"), "memory_total": total, "memory_free": free,
    "rdma": rdma(), "model_present": bool(model) and os.path.isfile(os.path.join(model, "config.json")),
}))
"""

_SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR")


@dataclass(frozen=True)
class HostCheck:
    """What one host is like, and the problems (plain sentences) that stop it from taking a rank."""

    host: Host
    reachable: bool
    facts: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def memory_total(self) -> int | None:
        value = self.facts.get("memory_total")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def memory_free(self) -> int | None:
        value = self.facts.get("memory_free")
        return value if isinstance(value, int) and value >= 0 else None

    @property
    def rdma(self) -> list[str] | None:
        value = self.facts.get("rdma")
        return [str(v) for v in value] if isinstance(value, list) else None

    @property
    def model_present(self) -> bool:
        return self.facts.get("model_present") is True

    @property
    def readiness(self) -> str:
        return "ok" if self.ok else "NOT READY"

    def verdict(self) -> str:
        """A few words for a table cell (the whole story is `summary`): ready or not, and why or how much room."""
        if not self.ok:
            return f"{self.readiness} · {self.problems[0]}"  # a check that is not ok always says why
        free = self.memory_free
        room = f"{human_bytes(free)} free" if free is not None else f"mlx {self.facts.get('mlx') or '—'}"
        return f"{self.readiness} · {room}"

    def summary(self) -> str:
        """One line for a table or the CLI: versions, memory, RDMA, then what is wrong."""
        if not self.reachable:
            return "unreachable: " + "; ".join(self.problems)
        f = self.facts
        rdma = self.rdma
        parts = [f"Python {f.get('python')}", f"mlx {f.get('mlx') or '—'}", f"mlx-lm {f.get('mlx_lm') or '—'}",
                 f"{human_bytes(self.memory_free)} free of {human_bytes(self.memory_total)}"
                 if self.memory_total else "memory unknown",
                 "RDMA " + (", ".join(rdma) if rdma else "no")]
        line = " · ".join(parts)
        return line + (" — " + "; ".join(self.problems) if self.problems else "")


def ssh_argv(host: Host, argv: list[str]) -> list[str]:
    """The command that runs `argv` on `host`: as is for 127.0.0.1, else through ssh (no password prompts)."""
    if host.is_local:
        return list(argv)
    return [shutil.which("ssh") or "ssh", *_SSH_OPTIONS, host.ssh, shlex.join(argv)]


def run_on_host(host: Host, argv: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run a short command on a host and wait for it (stdin closed, output captured)."""
    return subprocess.run(ssh_argv(host, argv), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def local_facts() -> dict[str, Any]:
    """The probe's answer for this Mac, run the same way (a subprocess of the same interpreter)."""
    from mlxtui.services.cluster_hosts import LOCAL

    return check_host(Host(LOCAL, (LOCAL,)), None).facts


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return printable(lines[-1], newlines=False)[:300] if lines else ""


def _compare(facts: dict[str, Any], local: dict[str, Any], name: str) -> list[str]:
    problems = []
    for key, label in (("mlx", "mlx"), ("mlx_lm", "mlx-lm")):
        theirs, ours = facts.get(key), local.get(key)
        if not theirs:
            problems.append(f"{label} is not installed in {facts.get('executable')} on {name}")
        elif ours and theirs != ours:
            problems.append(f"{label} {theirs} on {name}, {ours} here: install the same version")
    theirs, ours = str(facts.get("python") or ""), str(local.get("python") or "")
    if theirs.split(".")[:2] != ours.split(".")[:2]:
        problems.append(f"Python {theirs} on {name}, {ours} here: use the same Python")
    return problems


def check_host(host: Host, local: dict[str, Any] | None, model: str | None = None, *, backend: str = "ring",
               timeout: float = 20.0) -> HostCheck:
    """Probe one host (blocking) and compare it with `local` (this Mac's facts; None to skip comparing)."""
    python = sys.executable
    name = printable(host.ssh, newlines=False)
    try:
        done = run_on_host(host, [python, "-c", PROBE, model or ""], timeout=timeout)
    except subprocess.TimeoutExpired:
        return HostCheck(host, False, problems=(f"{name} did not answer within {timeout:.0f} s",))
    except OSError as error:
        return HostCheck(host, False, problems=(f"could not start ssh: {error.strerror or error}",))
    if done.returncode == 255 and not host.is_local:
        why = _last_line(done.stderr) or "ssh failed"
        return HostCheck(host, False, problems=(f"{name} is not reachable over SSH ({why}); set up key login "
                                                f"(ssh-copy-id {name}) and check the name",))
    try:
        facts = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (ValueError, IndexError):
        facts = None
    if not isinstance(facts, dict):
        why = _last_line(done.stderr) or f"exit status {done.returncode}"
        return HostCheck(host, True, problems=(f"no working Python at {python} on {name} ({why}); mlx.launch runs "
                                               "the same path on every host: install the same environment there",))
    problems = _compare(facts, local, name) if local is not None else []
    notes = []
    rdma = facts.get("rdma")
    if backend.startswith("jaccl") and not rdma:
        problems.append(f"{name} has no RDMA device (ibv_devices lists none): enable RDMA over Thunderbolt "
                        "(rdma_ctl enable in recovery) or use the ring backend")
    elif not rdma:
        notes.append("no RDMA here: the ring backend over TCP will be used")
    if model and not facts.get("model_present"):
        notes.append(f"the model is not at {model} yet: it will be copied with mlx_lm.share")
    return HostCheck(host, True, facts, tuple(problems), tuple(notes))


def _recheck(check: HostCheck, local: dict[str, Any]) -> HostCheck:
    """The local probe's answer as a rank's check (versions trivially match; RDMA and model notes stay)."""
    extra = tuple(_compare(check.facts, local, check.host.ssh)) if check.facts else ()
    return HostCheck(check.host, check.reachable, check.facts, check.problems + extra, check.notes)


async def check_hosts(hosts: Hosts, model: str | None = None, *, timeout: float = 20.0) -> list[HostCheck]:
    """Probe every distinct host at once; ranks on the same host share its answer (in rank order)."""
    distinct = list(dict.fromkeys(hosts.hosts))
    here = next((h for h in distinct if h.is_local), None)
    # This Mac's own answer is the reference; a local rank's check is that same answer, compared with itself.
    mine = await asyncio.to_thread(check_host, here or Host("127.0.0.1", ("127.0.0.1",)), None, model,
                                   backend=hosts.backend, timeout=timeout)
    local = mine.facts

    async def one(host: Host) -> HostCheck:
        if host.is_local:
            return _recheck(mine, local)
        return await asyncio.to_thread(check_host, host, local, model, backend=hosts.backend, timeout=timeout)

    results = await asyncio.gather(*(one(h) for h in distinct))
    by_host = dict(zip(distinct, results))
    return [by_host[h] for h in hosts.hosts]

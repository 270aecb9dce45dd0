"""run_stoppable (mlxtui/commands/signals.py): Ctrl-C, SIGTERM and SIGHUP all run a command's clean-up and exit
128 + N; a SIGINT ignored by the shell (a background job) stays ignored; a second signal is not held up; a
signal landing during a clean-up run with run_to_end does not cut it short."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

# The command: says "ready", waits for ever, and on the way out says which signal stopped it. SIGINT starts as
# the test asks (`default_int_handler` is what Python installs when it starts with SIGINT at its default).
COMMAND = """
import asyncio, signal, sys
from mlxtui.commands.signals import run_stoppable

signal.signal(signal.SIGINT, {sigint})

async def main(stop):
    try:
        print("ready", flush=True)
        await asyncio.Event().wait()
    finally:
        print(f"cleaning up after {{stop.name}}", flush=True)
        if {slow}:
            await asyncio.sleep(60)
    return 0

sys.exit(asyncio.run(run_stoppable(main)))
"""


def start(sigint: str = "signal.default_int_handler", slow: bool = False) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", COMMAND.format(sigint=sigint, slow=slow)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_runs_the_clean_up_and_exits_128_plus_n(sig: signal.Signals) -> None:
    process = start()
    process.send_signal(sig)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (128 + sig, f"cleaning up after {sig.name}\n"), err


def test_an_inherited_ignored_sigint_stays_ignored() -> None:
    process = start(sigint="signal.SIG_IGN")
    process.send_signal(signal.SIGINT)  # dropped by the kernel: nothing to wait for
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (128 + signal.SIGTERM, "cleaning up after SIGTERM\n"), err


def test_a_second_signal_during_the_clean_up_acts_as_usual() -> None:
    process = start(slow=True)
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None and process.stdout.readline() == "cleaning up after SIGTERM\n"
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM


# A command that finishes by itself and then cleans up slowly: the clean-up waits until the test's signal has
# been seen, then says it is done (a stand-in for stopping a cluster when the signal lands mid-stop).
CLEAN_UP = """
import asyncio, sys
from mlxtui.commands.signals import run_stoppable, run_to_end

async def clean_up(stop):
    print("cleaning", flush=True)
    while stop.signum is None:
        await asyncio.sleep(0.01)  # polls a condition; the test sends the signal on "cleaning"
    print("cleaned", flush=True)

async def main(stop):
    try:
        return 0
    finally:
        await run_to_end(clean_up(stop))

sys.exit(asyncio.run(run_stoppable(main)))
"""


def test_a_signal_during_the_clean_up_lets_it_finish_and_still_exits_128_plus_n() -> None:
    process = subprocess.Popen([sys.executable, "-c", CLEAN_UP], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    assert process.stdout is not None and process.stdout.readline() == "cleaning\n"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out) == (128 + signal.SIGTERM, "cleaned\n"), err

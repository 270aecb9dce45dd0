"""Starting `python -m mlxtui …` the way a person at a terminal does, whatever started the test run."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

# exec keeps SIG_IGN but resets handlers, so this trampoline hands the real child SIGINT at its default without
# preexec_fn, which is unsafe in a process with threads (pytest-xdist workers have some).
_TRAMPOLINE = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def foreground(python_args: list[str], **popen: Any) -> subprocess.Popen[str]:
    """`python PYTHON_ARGS` as if started in a terminal's foreground: SIGINT at its default (a test run started
    by a script with `&` has SIGINT ignored, and children keep that), in a session of its own so that a
    Ctrl-C meant for pytest does not reach it and its whole group can be killed."""
    return subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, *python_args], start_new_session=True, text=True,
                            **popen)

"""End-to-end tests need tmux (and sshd for the SSH workflow). Without them a developer's run skips them;
under CI (the CI variable set) it fails, so a machine that cannot run them never passes for one that did."""

from __future__ import annotations

import os

import pytest

from tests.e2e.sshd import sshd_available
from tests.e2e.tmux import tmux_available


@pytest.fixture(autouse=True)
def _terminal_tools(request: pytest.FixtureRequest) -> None:
    missing = [] if tmux_available() else ["tmux"]
    if request.node.get_closest_marker("sshd") and not sshd_available():
        missing.append("openssh-server")
    if not missing:
        return
    message = f"needs {' and '.join(missing)} (make system-deps installs them)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the end-to-end tests, but this machine lacks {' and '.join(missing)}")
    pytest.skip(message)

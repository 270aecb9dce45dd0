"""Shared fixtures: every test gets its own HF_HOME and XDG folders, so nothing leaks between tests or to $HOME."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# CI draws the same examples every run, so a red build is the code's doing, not the seed's;
# `make fuzz` explores fresh ones (MLXTUI_HYPOTHESIS=explore) and is where new cases are found.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("MLXTUI_HYPOTHESIS", "ci"))

pytest_plugins = [
    "tests.fixtures.devhub",
    "tests.fixtures.models",
    "tests.fixtures.hub",
    "tests.fixtures.card",
    "tests.fixtures.chat",
]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Own HF_HOME / XDG folders per test; no token from the developer's machine; no progress bars."""
    home = tmp_path / "home"
    for var, sub in [
        ("HF_HOME", "hf"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ]:
        (home / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    # a shared demo Hub that a test's `--demo` command starts stops soon after the test (see below too)
    monkeypatch.setenv("MLXTUI_DEMO_IDLE_S", "120")
    # huggingface_hub reads these once, at import: point the module's copies at this test's folders too
    import huggingface_hub.constants as constants

    hf = home / "hf"
    for name, value in {
        "HF_HOME": hf,
        "HF_HUB_CACHE": hf / "hub",
        "HUGGINGFACE_HUB_CACHE": hf / "hub",
        "HF_ASSETS_CACHE": hf / "assets",
        "HF_TOKEN_PATH": hf / "token",
        "HF_STORED_TOKENS_PATH": hf / "stored_tokens",
        "HF_XET_CACHE": hf / "xet",
    }.items():
        monkeypatch.setattr(constants, name, str(value))
    return home


@pytest.fixture(scope="session", autouse=True)
def _stop_demo_daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Demo Hubs started in the background by tests' `--demo` commands are stopped when the session ends."""
    yield
    import json
    import os
    import signal

    for running in tmp_path_factory.getbasetemp().rglob("running.json"):
        try:
            os.kill(int(json.loads(running.read_text())["pid"]), signal.SIGTERM)
        except (OSError, ValueError, KeyError, TypeError):
            pass

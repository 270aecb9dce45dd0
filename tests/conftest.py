"""Shared fixtures: every test gets its own HF_HOME and XDG folders, so nothing leaks between tests or to $HOME."""

from __future__ import annotations

from pathlib import Path

import pytest

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

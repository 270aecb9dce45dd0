"""The installed `mlxtui` command: --version, --help."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from mlxtui import __version__


def mlxtui_command() -> list[str]:
    exe = Path(sys.executable).with_name("mlxtui")
    return [str(exe)] if exe.exists() else [shutil.which("mlxtui") or "mlxtui"]


def test_version_prints_the_package_version() -> None:
    result = subprocess.run([*mlxtui_command(), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"mlxtui {__version__}"


def test_help_lists_the_global_options_and_subcommands() -> None:
    result = subprocess.run([*mlxtui_command(), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for word in ["--endpoint", "--demo", "--version"]:
        assert word in result.stdout

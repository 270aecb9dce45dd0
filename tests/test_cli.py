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


def _run_with_broken_search(tmp_path: Path, exc: str) -> subprocess.CompletedProcess[str]:
    """`mlxtui search` whose service raises `exc` (a bug, an error, a token in a message)."""
    code = (
        "import sys\n"
        "from mlxtui import cli\n"
        "from mlxtui.commands import search\n"
        "def broken(args, ctx):\n"
        f"    raise {exc}\n"
        "search.run = broken\n"
        "sys.exit(cli.main(['search', 'x', '--endpoint', 'http://127.0.0.1:9']))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)


def test_an_unexpected_error_is_one_line_with_the_log_path_and_exit_70(tmp_path: Path) -> None:
    result = _run_with_broken_search(tmp_path, "KeyError('layers')")
    log = tmp_path / "state" / "mlxtui" / "mlxtui.log"
    assert result.returncode == 70
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("mlxtui: unexpected error: 'layers'") and str(log) in result.stderr
    assert "Traceback" in log.read_text() and "KeyError: 'layers'" in log.read_text()


def test_an_mlxtui_error_gets_its_kinds_exit_code_and_tokens_are_masked(tmp_path: Path) -> None:
    from mlxtui.services.errors import EXIT_CODES

    token = "hf_" + "a" * 34
    result = _run_with_broken_search(
        tmp_path, f"__import__('mlxtui.services.errors').services.errors.NotFoundError('no repo for {token}')")
    assert result.returncode == 3 and 3 in EXIT_CODES
    assert result.stderr.strip() == "mlxtui: no repo for hf_a…[masked]"
    assert token not in (tmp_path / "state" / "mlxtui" / "mlxtui.log").read_text()


def test_terminal_escapes_in_an_error_message_are_shown_not_obeyed(tmp_path: Path) -> None:
    result = _run_with_broken_search(tmp_path, "ValueError('bad \\x1b[2J\\x1b]0;owned\\x07 name')")
    assert result.returncode == 70
    assert "\x1b" not in result.stderr and "^[[2J" in result.stderr and "^G" in result.stderr


def test_every_exit_code_is_documented() -> None:
    from mlxtui.services.errors import EXIT_CODES

    doc = (Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in doc


def test_the_app_only_command_lines_are_read_without_argparse_and_the_rest_with_it() -> None:
    from mlxtui.cli import _app_only_args

    assert _app_only_args([]).command is None
    args = _app_only_args(["--demo", "--endpoint=http://h:1", "--config", "/c.toml"])
    assert args.demo and args.endpoint == "http://h:1" and str(args.config) == "/c.toml"
    for argv in (["search", "x"], ["--endpoint"], ["--endpoint", "--demo"], ["-h"], ["--version"], ["--demoo"]):
        assert _app_only_args(argv) is None

"""A small driver for a program running in a real terminal: tmux send-keys in, capture-pane out."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["Terminal", "tmux_available"]


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


class Terminal:
    """One tmux server (own socket) running one command in a window of the given size."""

    def __init__(self, command: str, *, width: int = 80, height: int = 24, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, term: str = "xterm-256color") -> None:
        self.socket = f"mlxtui-e2e-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        inner = f"cd {shlex.quote(str(cwd or Path.cwd()))} && env TERM={term} {exports} {command}; sleep 600"
        self._tmux(
            "-f", "/dev/null", "new-session", "-d", "-s", "e2e", "-x", str(width), "-y", str(height),
            "bash", "-lc", inner,
        )
        self._tmux("set-option", "-g", "default-terminal", term)

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def screen(self, *, escapes: bool = False) -> str:
        """The visible screen as text; `escapes=True` keeps the colour/style escape sequences."""
        return self._tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "e2e")

    def keys(self, *keys: str, literal: bool = False) -> None:
        if literal:
            self._tmux("send-keys", "-t", "e2e", "-l", *keys)
        else:
            self._tmux("send-keys", "-t", "e2e", *keys)

    def type(self, text: str) -> None:
        self.keys(text, literal=True)

    def resize(self, width: int, height: int) -> None:
        """Resize the window as a user dragging the terminal would; the program gets SIGWINCH."""
        self._tmux("resize-window", "-t", "e2e", "-x", str(width), "-y", str(height))

    def wait_for(self, predicate: Callable[[str], bool] | str, timeout: float = 60.0, interval: float = 0.25) -> str:
        """Poll the screen until `predicate` holds (a string: appears on screen); returns the screen."""
        check = (lambda s: predicate in s) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {predicate!r}; the screen was:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The one failure log: full details of any failure go here; screens and the CLI show one line and this path.

Tokens are masked before anything is written, so a log can be attached to a bug report as it is.
"""

from __future__ import annotations

import re
import time
import traceback
from pathlib import Path

from mlxtui import paths

__all__ = ["log_failure", "mask_secrets", "one_line"]

#: the log is cut to its newest half when it grows past this
MAX_LOG_BYTES = 2_000_000
# Hugging Face, GitHub, OpenAI-style and AWS access keys, and bearer headers
_SECRET = re.compile(
    r"(hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{20,}"
    r"|AKIA[0-9A-Z]{16}|(?i:bearer)\s+[A-Za-z0-9._~+/-]{8,})"
)


def mask_secrets(text: str) -> str:
    """Replace every token-shaped string with its first four characters and a mask."""
    return _SECRET.sub(lambda m: m.group()[:4] + "…[masked]", text)


def one_line(error: BaseException) -> str:
    """An exception as one line for a person: its message, or its type when it has none."""
    from mlxtui.format import printable

    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text or type(error).__name__
    if len(text) > 300:
        text = text[:300] + "…"
    return printable(mask_secrets(text), newlines=False)


def log_failure(error: BaseException, where: str) -> Path | None:
    """Append the traceback of `error` (raised in `where`) to the log; returns the log's path, or None when
    even the log cannot be written (the caller still shows its one line)."""
    path = paths.log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
            tail = path.read_bytes()[-MAX_LOG_BYTES // 2 :]
            path.write_bytes(tail)
        detail = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {stamp} {where}\n{mask_secrets(detail)}\n")
    except OSError:
        return None
    return path

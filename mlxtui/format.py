"""Numbers for people: sizes and counts as the Hub shows them, the same in services, panes and subcommands."""

from __future__ import annotations

import re

__all__ = ["elide_middle", "human_bytes", "human_count", "printable"]


def human_bytes(n: float | None) -> str:
    """1.2 GB style sizes (decimal units, as the Hub shows them)."""
    if n is None:
        return "?"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def human_count(n: int | None, *, digits: int = 2, missing: str = "?") -> str:
    """1.84B / 557.72k style counts; tables use digits=1 and their own mark for an unknown count."""
    if n is None:
        return missing
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.{digits}f}{unit}"
    return str(n)


# C0 controls except tab and newline, DEL, and the C1 controls (0x80-0x9f: 8-bit CSI and friends)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_ALL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"^{chr(code + 64)}" if code < 0x20 else ("^?" if code == 0x7F else f"\\x{code:02x}")


def printable(text: object, *, newlines: bool = True) -> str:
    """Text from outside (model output, file names, card fields) made safe for a terminal.

    Control characters are shown visibly (ESC as ``^[``, DEL as ``^?``, C1 as ``\\x9b``) so nothing a stranger
    wrote can move the cursor, erase the screen or retitle the window. Tab and newline stay unless
    `newlines` is False (one-line fields such as file names), when they are shown as ``^I`` and ``^J`` too.
    """
    pattern = _CONTROL if newlines else _CONTROL_ALL
    return pattern.sub(_visible, str(text))


def elide_middle(text: str, width: int) -> str:
    """`text` in at most `width` cells, cut in the middle with … so both ends stay readable (a repo id's org and
    quantization suffix, a path's root and folder name)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return "…"
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")

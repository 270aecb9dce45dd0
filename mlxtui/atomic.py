"""One atomic write for every file mlxtui keeps: a temporary file beside the target, then os.replace.

A crash, a full disk or a kill leaves the old file or the new one, never half of either.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_bytes_atomic", "write_text_atomic"]


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `path` atomically; `mode` (e.g. 0o600) is set before the name appears."""
    import tempfile  # only when writing: it pulls in shutil and more, which start-up does not need

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """UTF-8 text, newlines kept exactly as given."""
    write_bytes_atomic(path, text.encode("utf-8"), mode=mode)

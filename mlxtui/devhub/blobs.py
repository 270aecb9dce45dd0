"""The content-addressed blob pool: every file's bytes under objects/<aa>/<sha256>, written through a temp file.

Blob paths are built only from validated sha256 ids (64 lowercase hex digits). Each upload's temporary file
is held under an exclusive lock while it is written, so `sweep_temp` at start removes what a killed server or
a dropped upload left behind without touching an upload still running in another process.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from mlxtui.devhub.objects import CommitError, is_sha256

__all__ = ["BlobPool"]

_CHUNK = 1024 * 1024


def _lock(fd: int, blocking: bool) -> bool:
    """flock the file; False when another process holds it (or True when flock is not available)."""
    try:
        import fcntl
    except ImportError:  # no flock: a sweep may then only run while no upload is in flight
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


class _Hashing:
    """A write-only file that hashes what passes through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.handle.write(data)


class BlobPool:
    """Bytes addressed by their sha256, shared by every repo of a store."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "objects"
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where a blob lives; CommitError for anything but 64 lowercase hex digits."""
        if not is_sha256(sha256):
            raise CommitError(f"invalid object id {str(sha256)[:80]!r}: expected 64 lowercase hex digits")
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str, size: int | None = None) -> bool:
        if not is_sha256(sha256):
            return False
        path = self.path(sha256)
        try:
            return path.is_file() and (size is None or path.stat().st_size == size)
        except OSError:
            return False

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not self.has(sha, len(data)):
            self._install(lambda handle: handle.write(data), expected=sha)
        return sha

    def put_stream(self, stream: BinaryIO, size: int, expected_sha256: str | None = None) -> str:
        """Copy exactly `size` bytes from `stream`, checking the hash; CommitError on a short read or mismatch."""
        if expected_sha256 is not None and not is_sha256(expected_sha256):
            raise CommitError(f"invalid object id {str(expected_sha256)[:80]!r}")

        def write(handle: BinaryIO) -> None:
            remaining = size
            while remaining > 0:
                chunk = stream.read(min(remaining, _CHUNK))
                if not chunk:
                    raise CommitError(f"upload ended after {size - remaining} of {size} bytes")
                handle.write(chunk)
                remaining -= len(chunk)

        return self._install(write, expected=expected_sha256)

    def put_file(self, path: Path) -> tuple[str, int]:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            return self.put_stream(handle, size), size

    def _install(self, write: Callable[[BinaryIO], None], *, expected: str | None) -> str:
        """Write into a locked temp file, hash it, then move it into place (a partial blob never appears)."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, prefix="upload-")
        try:
            _lock(fd, blocking=True)
            with os.fdopen(fd, "wb") as handle:
                hashing = _Hashing(handle)
                write(hashing)  # type: ignore[arg-type]
                sha = hashing.digest.hexdigest()
                if expected is not None and sha != expected:
                    raise CommitError(f"uploaded bytes have sha256 {sha}, expected {expected}")
                target = self.path(sha)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            return sha
        finally:
            Path(tmp).unlink(missing_ok=True)

    def sweep_temp(self) -> int:
        """Remove temp files no live writer holds (left by a killed server or upload); returns how many."""
        removed = 0
        for path in list(self.tmp_dir.iterdir()) if self.tmp_dir.is_dir() else []:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                if _lock(fd, blocking=False):
                    path.unlink(missing_ok=True)
                    removed += 1
            finally:
                os.close(fd)
        # old layouts wrote small blobs next to their target as .tmp-*
        for path in self.root.glob("??/.tmp-*"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed

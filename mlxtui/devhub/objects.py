"""What the local Hub's store is made of: its errors, file entries, git and LFS ids, Hub timestamps."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "StoreError", "RepoNotFound", "RepoExists", "RevisionNotFound", "EntryNotFound", "CommitError",
    "FileEntry", "LFS_PATTERNS", "LFS_SIZE_THRESHOLD", "git_blob_oid", "is_lfs_path", "lfs_pointer",
    "utc_now", "iso", "parse_when", "gated_value", "is_sha256", "is_commit_sha", "check_repo_path",
    "check_repo_id", "MAX_PATH_CHARS", "REPO_TYPES", "repo_key", "split_key",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
#: the longest file path accepted in a repo (the Hub's own limit is of this order)
MAX_PATH_CHARS = 1000

#: default .gitattributes of a new Hub repo: files stored through LFS whatever their size
LFS_PATTERNS = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst",
    "*tfevents*", "*.gguf",
)
#: the Hub refuses regular (non-LFS) files above 10 MB; bigger files always go through LFS
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024

class StoreError(Exception):
    """Base class of storage errors; the server maps each kind to a Hub error code."""


class RepoNotFound(StoreError):
    pass


class RepoExists(StoreError):
    pass


class RevisionNotFound(StoreError):
    pass


class EntryNotFound(StoreError):
    pass


class CommitError(StoreError):
    """A commit was refused (missing LFS object, bad path...): nothing was written."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(when: datetime) -> str:
    """The Hub's timestamp format: 2024-05-01T12:00:00.000Z."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_when(value: datetime | str | None) -> datetime:
    if value is None:
        return utc_now()
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def git_blob_oid(data: bytes) -> str:
    """git's object id of a blob: sha1 of "blob <size>\\0" + content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that stands in git for an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def is_lfs_path(path: str, size: int) -> bool:
    """Whether the Hub would store this file through LFS (by pattern or by size)."""
    name = path.rsplit("/", 1)[-1]
    if size >= LFS_SIZE_THRESHOLD:
        return True
    return any(fnmatch.fnmatch(name, pattern) for pattern in LFS_PATTERNS) or path.startswith("saved_model/")


@dataclass(frozen=True)
class FileEntry:
    """One file of a commit snapshot."""

    path: str
    sha256: str
    size: int
    lfs: bool
    #: git object id: sha1 of the content, or of the LFS pointer for LFS files (what the Hub calls blobId/oid)
    oid: str

    @property
    def pointer_size(self) -> int:
        return len(lfs_pointer(self.sha256, self.size))

    @property
    def etag(self) -> str:
        """What resolve answers as (X-Linked-)ETag: sha256 for LFS files, the git oid otherwise."""
        return self.sha256 if self.lfs else self.oid

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "lfs": self.lfs, "oid": self.oid}


def gated_value(gated: bool | str | None) -> bool | str:
    """The Hub's `gated` field: False, "auto" or "manual" (True means manual approval)."""
    if gated in (None, False, "false", "False", ""):
        return False
    if gated in ("auto", "manual"):
        return gated
    return "manual"


def is_sha256(value: object) -> bool:
    """An LFS object id: exactly 64 lowercase hex digits. Nothing else ever becomes part of a blob's path."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def is_commit_sha(value: object) -> bool:
    """A full commit id: exactly 40 lowercase hex digits. Nothing else ever becomes part of a commit's path."""
    return isinstance(value, str) and _COMMIT.fullmatch(value) is not None


def check_repo_id(repo_id: object) -> tuple[str, str]:
    """(owner, name) of a valid owner/name repo id (the Hub's rule, `modelfolder.is_repo_id`); RepoNotFound else."""
    from mlxtui.services.modelfolder import is_repo_id

    if not isinstance(repo_id, str) or not is_repo_id(repo_id):
        raise RepoNotFound(f"invalid repo id {str(repo_id)[:200]!r}: expected owner/name")
    owner, name = repo_id.split("/")
    return owner, name


#: repo type -> the folder of the store holding that type's repos (a dataset and a model may share an id)
REPO_TYPES = {"model": "repos", "dataset": "datasets"}
_DATASET_PREFIX = "datasets/"


def repo_key(repo_id: str, repo_type: str = "model") -> str:
    """The store's key of a repo: its owner/name for a model, "datasets/owner/name" for a dataset.

    `repo_id` must be a plain owner/name (RepoNotFound else), so no id from a request can name the other type.
    """
    if repo_type not in REPO_TYPES:
        raise RepoNotFound(f"devhub has no {str(repo_type)[:40]!r} repos")
    check_repo_id(repo_id)
    return repo_id if repo_type == "model" else _DATASET_PREFIX + repo_id


def split_key(key: str) -> tuple[str, str]:
    """(repo type, owner/name) of a store key (see `repo_key`); a key with two parts is a model's."""
    if isinstance(key, str) and key.startswith(_DATASET_PREFIX) and key.count("/") == 2:
        return "dataset", key[len(_DATASET_PREFIX):]
    return "model", key


def check_repo_path(path: object) -> str:
    """A file path inside a repo, refused (CommitError) unless it is relative, clean and printable.

    Refused: empty, absolute, `.`/`..`/empty segments, backslashes, NUL and other control characters,
    `.git/` internals, and paths longer than MAX_PATH_CHARS. One trailing '/' (a folder) is dropped.
    """
    if not isinstance(path, str):
        raise CommitError(f"a path must be a string, not {type(path).__name__}")
    shown = repr(path[:200])
    if path.endswith("/") and not path.endswith("//"):
        path = path[:-1]
    if not path or len(path) > MAX_PATH_CHARS:
        raise CommitError(f"invalid path in repo: {shown} (empty or longer than {MAX_PATH_CHARS} characters)")
    if path.startswith("/") or "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise CommitError(f"invalid path in repo: {shown} (absolute, backslash or control character)")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts) or parts[0] == ".git":
        raise CommitError(f"invalid path in repo: {shown} (empty, '.', '..' or .git segment)")
    return path

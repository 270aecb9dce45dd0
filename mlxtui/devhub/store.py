"""On-disk storage for the local Hub: repos as immutable commit snapshots over a content-addressed blob pool.

Layout under ``root``::

    tokens.json                       token -> {"user", "orgs", "role"}
    objects/<aa>/<sha256>             every file's bytes, addressed by sha256 (shared by all repos)
    repos/<owner>/<name>/meta.json    private, gated, granted users, downloads, likes, dates, owner
    repos/<owner>/<name>/refs.json    branch -> 40-hex commit sha
    repos/<owner>/<name>/commits/<sha>.json   one snapshot: {path: {sha256, size, oid, lfs}} plus message/date
    datasets/<owner>/<name>/...       dataset repos, laid out as model repos (their own namespace)

Methods take a repo's store key (`repo_key`): owner/name for a model, "datasets/owner/name" for a dataset.

A commit becomes visible only when ``refs.json`` is atomically replaced (``os.replace``), after every blob it
names has been checked, so a failed commit leaves the repo exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Mapping

from mlxtui.atomic import write_text_atomic
from mlxtui.devhub.blobs import BlobPool
from mlxtui.devhub.credentials import TokenFile
from mlxtui.devhub.objects import (
    LFS_PATTERNS,
    LFS_SIZE_THRESHOLD,
    CommitError,
    EntryNotFound,
    FileEntry,
    RepoExists,
    RepoNotFound,
    REPO_TYPES,
    RevisionNotFound,
    StoreError,
    check_repo_id,
    check_repo_path,
    gated_value,
    is_commit_sha,
    git_blob_oid,
    is_lfs_path,
    iso,
    lfs_pointer,
    parse_when,
    repo_key,
    split_key,
    utc_now,
)

__all__ = [
    "HubStore",
    "StoreError",
    "RepoNotFound",
    "RepoExists",
    "RevisionNotFound",
    "EntryNotFound",
    "CommitError",
    "FileEntry",
    "LFS_PATTERNS",
    "LFS_SIZE_THRESHOLD",
    "git_blob_oid",
    "is_lfs_path",
    "lfs_pointer",
    "utc_now",
    "iso",
    "repo_key",
    "split_key",
]

def _write_json_atomic(path: Path, data: Any, *, mode: int | None = None) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True), mode=mode)


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class HubStore:
    """Repos, commits, blobs and tokens of a local Hub, kept under one folder (they survive a restart).

    Thread-safe: writes hold one store-wide lock; reads only ever see committed snapshots.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "objects").mkdir(exist_ok=True)
        (self.root / "repos").mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._tokens = TokenFile(self.root / "tokens.json")
        self.blobs = BlobPool(self.root)
        self._commit_cache: dict[tuple[str, str], dict[str, Any]] = {}
        #: derived, per-commit facts (parsed card, safetensors totals...) cached by the server
        self.derived_cache: dict[tuple[str, str, str], Any] = {}

    # ----------------------------------------------------------------- tokens
    @property
    def tokens_path(self) -> Path:
        return self._tokens.path

    def tokens(self) -> dict[str, dict[str, Any]]:
        """token -> {"user": str, "orgs": [str], "role": "read" | "write"}."""
        return self._tokens.read()

    def set_tokens(self, tokens: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace every token (persisted in tokens.json, mode 0600)."""
        clean = {token: TokenFile.entry(info["user"], info.get("orgs", []), info.get("role", "write"))
                 for token, info in tokens.items()}
        with self._lock:
            self._tokens.write(clean)

    def add_token(self, token: str, user: str, orgs: Iterable[str] = (), role: str = "write") -> None:
        """Add or replace one token."""
        entry = TokenFile.entry(user, orgs, role)
        with self._lock:
            tokens = self._tokens.read()
            tokens[token] = entry
            self._tokens.write(tokens)

    def token_info(self, token: str | None) -> dict[str, Any] | None:
        return self._tokens.lookup(token)

    # ------------------------------------------------------------------ blobs
    def blob_path(self, sha256: str) -> Path:
        """The blob's file; CommitError unless `sha256` is 64 lowercase hex digits."""
        return self.blobs.path(sha256)

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        return self.blobs.has(sha256, size)

    def put_bytes(self, data: bytes) -> str:
        """Store bytes in the blob pool; returns their sha256."""
        return self.blobs.put_bytes(data)

    def put_stream(self, stream: BinaryIO, size: int, expected_sha256: str | None = None) -> str:
        """Copy exactly `size` bytes from `stream` into the pool, checking the hash; raises CommitError on mismatch."""
        return self.blobs.put_stream(stream, size, expected_sha256)

    def put_file(self, path: Path) -> tuple[str, int]:
        """Store a local file in the pool; returns (sha256, size)."""
        return self.blobs.put_file(path)

    # ------------------------------------------------------------ LFS access
    def record_upload(self, repo_id: str, user: str, sha256: str) -> None:
        """Remember that `user` uploaded the bytes of `sha256` to `repo_id` (they proved they hold them)."""
        path = self.repo_dir(repo_id) / "uploads.json"
        with self._lock:
            ledger = self._uploads(repo_id)
            users = ledger.setdefault(sha256, [])
            if user not in users:
                users.append(user)
                _write_json_atomic(path, ledger)

    def uploaded_by(self, repo_id: str, user: str, sha256: str) -> bool:
        return user in self._uploads(repo_id).get(sha256, [])

    def _uploads(self, repo_id: str) -> dict[str, list[str]]:
        try:
            data = _read_json(self.repo_dir(repo_id) / "uploads.json")
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def repos_holding(self, sha256: str) -> list[str]:
        """Repos with `sha256` in any commit reachable from a branch (whoever may read them may fetch the bytes)."""
        keys = [key for repo_type in REPO_TYPES for key in self.list_repos(repo_type)]
        return [repo for repo in keys if sha256 in self._reachable_blobs(repo)]

    def _reachable_blobs(self, repo_id: str) -> frozenset[str]:
        try:
            heads = tuple(sorted(self.refs(repo_id).values()))
        except (RepoNotFound, ValueError):
            return frozenset()
        key = (repo_id, ",".join(heads), "blobs")
        cached = self.derived_cache.get(key)
        if cached is None:
            cached = frozenset(
                entry["sha256"] for head in heads for record in self.history(repo_id, head)
                for entry in record["files"].values()
            )
            self.derived_cache[key] = cached
        return cached

    # ------------------------------------------------------------------ repos
    def repo_dir(self, repo_id: str) -> Path:
        """The folder of a repo, by its store key (owner/name, or datasets/owner/name)."""
        repo_type, plain = split_key(repo_id)
        owner, name = check_repo_id(plain)
        return self.root / REPO_TYPES[repo_type] / owner / name

    def repo_exists(self, repo_id: str) -> bool:
        try:
            return (self.repo_dir(repo_id) / "meta.json").is_file()
        except RepoNotFound:
            return False

    def list_repos(self, repo_type: str = "model") -> list[str]:
        """The store keys of every repo of one type, sorted (a model's key is its id)."""
        out = []
        for meta in sorted((self.root / REPO_TYPES[repo_type]).glob("*/*/meta.json")):
            out.append(repo_key(f"{meta.parent.parent.name}/{meta.parent.name}", repo_type))
        return out

    def meta(self, repo_id: str) -> dict[str, Any]:
        """The repo's meta.json (raises RepoNotFound)."""
        try:
            return _read_json(self.repo_dir(repo_id) / "meta.json")
        except FileNotFoundError:
            raise RepoNotFound(repo_id) from None

    def update_meta(self, repo_id: str, **fields: Any) -> dict[str, Any]:
        """Change some meta.json fields (private, gated, downloads, likes, trendingScore...)."""
        with self._lock:
            meta = self.meta(repo_id)
            if "gated" in fields:
                fields["gated"] = gated_value(fields["gated"])
            for key in ("createdAt", "lastModified"):
                if key in fields and not isinstance(fields[key], str):
                    fields[key] = iso(parse_when(fields[key]))
            meta.update(fields)
            _write_json_atomic(self.repo_dir(repo_id) / "meta.json", meta)
            return meta

    def create_repo(
        self,
        repo_id: str,
        *,
        private: bool = False,
        gated: bool | str = False,
        downloads: int = 0,
        likes: int = 0,
        created_at: datetime | str | None = None,
    ) -> dict[str, Any]:
        """Create an empty repo (by its store key) with an initial commit holding a .gitattributes (as the Hub does)."""
        owner, _ = check_repo_id(split_key(repo_id)[1])
        with self._lock:
            if self.repo_exists(repo_id):
                raise RepoExists(repo_id)
            when = parse_when(created_at)
            meta = {
                "id": split_key(repo_id)[1],
                "owner": owner,
                "private": bool(private),
                "gated": gated_value(gated),
                "granted": [],
                "downloads": int(downloads),
                "likes": int(likes),
                "trendingScore": int(likes),
                "createdAt": iso(when),
                "lastModified": iso(when),
            }
            repo = self.repo_dir(repo_id)
            (repo / "commits").mkdir(parents=True, exist_ok=True)
            gitattributes = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS).encode()
            sha = self.put_bytes(gitattributes)
            files = {".gitattributes": FileEntry(".gitattributes", sha, len(gitattributes), False, git_blob_oid(gitattributes))}
            commit_sha = self._write_commit(repo_id, None, files, "initial commit", "", meta["owner"], when)
            _write_json_atomic(repo / "meta.json", meta)
            _write_json_atomic(repo / "refs.json", {"main": commit_sha})
            return meta

    def delete_repo(self, repo_id: str) -> None:
        """Remove a repo (its blobs stay in the shared pool)."""
        with self._lock:
            if not self.repo_exists(repo_id):
                raise RepoNotFound(repo_id)
            shutil.rmtree(self.repo_dir(repo_id))
            self._commit_cache = {k: v for k, v in self._commit_cache.items() if k[0] != repo_id}

    def grant_access(self, repo_id: str, user: str) -> None:
        """Let `user` download the files of a gated repo."""
        with self._lock:
            meta = self.meta(repo_id)
            if user not in meta.get("granted", []):
                meta.setdefault("granted", []).append(user)
                _write_json_atomic(self.repo_dir(repo_id) / "meta.json", meta)

    # ---------------------------------------------------------------- commits
    def refs(self, repo_id: str) -> dict[str, str]:
        try:
            return _read_json(self.repo_dir(repo_id) / "refs.json")
        except FileNotFoundError:
            raise RepoNotFound(repo_id) from None

    def resolve_revision(self, repo_id: str, revision: str | None) -> str:
        """Branch name or (full or >=7-hex prefix) commit sha -> full commit sha; raises RevisionNotFound."""
        revision = revision or "main"
        if not isinstance(revision, str) or len(revision) > 255 or "\0" in revision:
            raise RevisionNotFound(f"{repo_id}@{str(revision)[:80]}")
        refs = self.refs(repo_id)
        if revision in refs:
            return refs[revision]
        if revision.startswith("refs/heads/") and revision[11:] in refs:
            return refs[revision[11:]]
        commits_dir = self.repo_dir(repo_id) / "commits"
        if is_commit_sha(revision) and (commits_dir / f"{revision}.json").is_file():
            return revision
        if 7 <= len(revision) < 40 and all(c in "0123456789abcdef" for c in revision):
            matches = [p.stem for p in commits_dir.glob(f"{revision}*.json")]
            if len(matches) == 1:
                return matches[0]
        raise RevisionNotFound(f"{repo_id}@{revision}")

    def commit_record(self, repo_id: str, sha: str) -> dict[str, Any]:
        """The stored commit (title, message, author, date, parents, files)."""
        if not is_commit_sha(sha):  # only 40 hex digits ever name a commit file
            raise RevisionNotFound(f"{repo_id}@{str(sha)[:80]}")
        key = (repo_id, sha)
        record = self._commit_cache.get(key)
        if record is None:
            try:
                record = _read_json(self.repo_dir(repo_id) / "commits" / f"{sha}.json")
            except FileNotFoundError:
                raise RevisionNotFound(f"{repo_id}@{sha}") from None
            self._commit_cache[key] = record
        return record

    def files(self, repo_id: str, sha: str) -> dict[str, FileEntry]:
        """path -> FileEntry of one commit snapshot."""
        record = self.commit_record(repo_id, sha)
        return {path: FileEntry(path=path, **entry) for path, entry in record["files"].items()}

    def entry(self, repo_id: str, sha: str, path: str) -> FileEntry:
        found = self.files(repo_id, sha).get(path.strip("/"))
        if found is None:
            raise EntryNotFound(f"{repo_id}@{sha}:{path}")
        return found

    def read_bytes(self, repo_id: str, sha: str, path: str) -> bytes:
        return self.blob_path(self.entry(repo_id, sha, path).sha256).read_bytes()

    def history(self, repo_id: str, sha: str) -> list[dict[str, Any]]:
        """Commits from `sha` back to the first one."""
        out = []
        current: str | None = sha
        while current:
            record = self.commit_record(repo_id, current)
            out.append(record)
            current = record["parents"][0] if record["parents"] else None
        return out

    def _write_commit(
        self,
        repo_id: str,
        parent: str | None,
        files: Mapping[str, FileEntry],
        title: str,
        message: str,
        author: str,
        when: datetime,
    ) -> str:
        """Write the (not yet visible) commit snapshot file; returns its 40-hex sha."""
        body = {
            "parents": [parent] if parent else [],
            "title": title,
            "message": message,
            "author": author,
            "date": iso(when),
            "files": {path: files[path].to_json() for path in sorted(files)},
        }
        sha = hashlib.sha1(json.dumps(body, sort_keys=True).encode() + os.urandom(8)).hexdigest()
        body["sha"] = sha
        _write_json_atomic(self.repo_dir(repo_id) / "commits" / f"{sha}.json", body)
        return sha

    def commit(
        self,
        repo_id: str,
        operations: Iterable[Mapping[str, Any]],
        *,
        revision: str = "main",
        title: str = "Update",
        message: str = "",
        author: str = "devhub",
        parent_commit: str | None = None,
        replace_all: bool = False,
        when: datetime | str | None = None,
        before_publish=None,
    ) -> str:
        """Apply operations atomically and return the new commit sha.

        Operations are dicts: ``{"op": "add", "path", "sha256", "size"?, "lfs"}``, ``{"op": "delete", "path"}``,
        ``{"op": "delete_folder", "path"}``. Every blob must already be in the pool. Everything is validated before
        the branch moves; `before_publish` (a fault hook) may raise to abort at the last moment. `replace_all`
        starts from an empty tree (a full snapshot import).
        """
        with self._lock:
            if not self.repo_exists(repo_id):
                raise RepoNotFound(repo_id)
            refs = self.refs(repo_id)
            branch = revision[11:] if revision.startswith("refs/heads/") else revision
            if branch not in refs:
                raise RevisionNotFound(f"{repo_id}@{revision}")
            head = refs[branch]
            if parent_commit is not None:
                self.resolve_revision(repo_id, parent_commit)
            files = {} if replace_all else dict(self.files(repo_id, head))
            for op in operations:
                kind = op.get("op")
                path = check_repo_path(op.get("path"))
                if kind == "add":
                    sha256 = str(op.get("sha256") or "")
                    if not self.has_blob(sha256):
                        raise CommitError(f"{path}: object {sha256 or '?'} was not uploaded")
                    size = self.blob_path(sha256).stat().st_size
                    if op.get("size") is not None and int(op["size"]) != size:
                        raise CommitError(f"{path}: size {op['size']} does not match the uploaded object ({size})")
                    lfs = bool(op.get("lfs"))
                    if lfs:
                        oid = git_blob_oid(lfs_pointer(sha256, size))
                    else:
                        oid = git_blob_oid(self.blob_path(sha256).read_bytes())
                    if any(other.startswith(path + "/") for other in files):
                        raise CommitError(f"{path}: a folder of that name exists")
                    parts = path.split("/")
                    if any("/".join(parts[:i]) in files for i in range(1, len(parts))):
                        raise CommitError(f"{path}: a parent folder is a file")
                    files[path] = FileEntry(path, sha256, size, lfs, oid)
                elif kind == "delete":
                    if path not in files:
                        raise CommitError(f"cannot delete {path}: no such file")
                    del files[path]
                elif kind == "delete_folder":
                    doomed = [p for p in files if p.startswith(path + "/")]
                    if not doomed:
                        raise CommitError(f"cannot delete folder {path}: no such folder")
                    for p in doomed:
                        del files[p]
                else:
                    raise CommitError(f"unknown operation {kind!r}")
            when_dt = parse_when(when)
            sha = self._write_commit(repo_id, head, files, title, message, author, when_dt)
            try:
                if before_publish is not None:
                    before_publish()
                meta = self.meta(repo_id)
                meta["lastModified"] = iso(when_dt)
                # refs.json is the single switch that publishes the commit; meta follows (it only holds dates)
                _write_json_atomic(self.repo_dir(repo_id) / "refs.json", {**refs, branch: sha})
            except BaseException:
                (self.repo_dir(repo_id) / "commits" / f"{sha}.json").unlink(missing_ok=True)
                raise
            _write_json_atomic(self.repo_dir(repo_id) / "meta.json", meta)
            return sha

    # ----------------------------------------------------------------- import
    def import_folder(
        self,
        repo_id: str,
        folder: Path,
        *,
        private: bool | None = None,
        gated: bool | str | None = None,
        downloads: int | None = None,
        likes: int | None = None,
        created_at: datetime | str | None = None,
        message: str = "Import",
        repo_type: str = "model",
    ) -> str:
        """Publish a local folder as the full content of `repo_id` (created when missing); returns the commit sha.

        `repo_type` "dataset" publishes it as a dataset repo (its own namespace: a model may have the same id).

        Files are stored through LFS as the Hub would (weights by pattern, anything >= 10 MB); an existing repo
        gets a new commit whose tree is exactly the folder (plus .gitattributes). A flag left at None keeps the
        existing repo's value (a new repo: public, not gated, no downloads or likes). A link out of the folder,
        or a file name the Hub refuses, raises `ImportRefused` before anything changes.
        """
        from mlxtui.devhub.importer import import_folder

        return import_folder(self, repo_key(repo_id, repo_type), folder, private=private, gated=gated, downloads=downloads, likes=likes,
                             created_at=created_at, message=message)

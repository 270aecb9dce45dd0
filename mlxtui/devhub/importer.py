"""Publishing a local folder as a repo of the store (`mlxtui devhub import`, the demo seeding, test fixtures).

Nothing is read through a link that leaves the folder (a Hugging Face cache snapshot, whose files link into
that repo's own blobs/, still imports), and every file name must be a valid repo path; both are checked
before the repo is created or changed.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxtui.devhub.objects import CommitError, StoreError, check_repo_path, is_lfs_path, split_key

if TYPE_CHECKING:
    from mlxtui.devhub.store import HubStore

__all__ = ["ImportRefused", "folder_files", "import_folder"]

#: folders never imported from a local model folder
SKIP_DIRS = {".git", ".cache", "__pycache__", ".huggingface"}


class ImportRefused(StoreError):
    """The folder cannot be imported as it is (a link out of it, a name the Hub refuses); nothing was changed."""


def _allowed_roots(folder: Path) -> list[Path]:
    real = folder.resolve()
    roots = [real]
    if real.parent.name == "snapshots":  # <cache>/models--owner--name/snapshots/<rev>: files link to ../../blobs
        roots.append(real.parent.parent / "blobs")
    return roots


def folder_files(folder: Path) -> list[tuple[str, Path]]:
    """(repo path, file) of every file to import, sorted; ImportRefused for a link out of the folder or a bad name."""
    roots = _allowed_roots(folder)
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in SKIP_DIRS for part in rel.parts):
            continue
        target = path.resolve()
        if not any(target == root or target.is_relative_to(root) for root in roots):
            raise ImportRefused(f"{rel.as_posix()} links to {target}, outside {folder}: not imported. "
                                "Copy the file into the folder if you mean to publish it.")
        if not path.is_file():
            continue
        try:
            out.append((check_repo_path(rel.as_posix()), path))
        except CommitError as error:
            raise ImportRefused(f"{error}: rename it in {folder}.") from None
    return out


def import_folder(
    store: HubStore,
    repo_id: str,
    folder: Path,
    *,
    private: bool | None = None,
    gated: bool | str | None = None,
    downloads: int | None = None,
    likes: int | None = None,
    created_at: datetime | str | None = None,
    message: str = "Import",
) -> str:
    """See `HubStore.import_folder` (`repo_id` here is the store key)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    files = folder_files(folder)
    with store._lock:
        if not store.repo_exists(repo_id):
            store.create_repo(repo_id, private=bool(private), gated=gated or False, downloads=downloads or 0,
                              likes=likes or 0, created_at=created_at)
            fresh = True
        else:
            fresh = len(store.history(repo_id, store.resolve_revision(repo_id, "main"))) == 1
            fields: dict[str, Any] = {}
            if private is not None:
                fields["private"] = bool(private)
            if gated is not None:
                fields["gated"] = gated
            if downloads is not None:
                fields["downloads"] = downloads
            if likes is not None:
                fields["likes"] = fields["trendingScore"] = likes
            if created_at is not None:
                fields["createdAt"] = created_at
            store.update_meta(repo_id, **fields)
        operations: list[dict[str, Any]] = []
        for rel, path in files:
            sha256, size = store.put_file(path)
            operations.append({"op": "add", "path": rel, "sha256": sha256, "size": size, "lfs": is_lfs_path(rel, size)})
        if not any(rel == ".gitattributes" for rel, _ in files):
            keep = store.files(repo_id, store.resolve_revision(repo_id, "main")).get(".gitattributes")
            if keep is not None:
                operations.insert(0, {"op": "add", "path": ".gitattributes", "sha256": keep.sha256, "lfs": False})
        when = created_at if created_at is not None and fresh else None
        return store.commit(repo_id, operations, title=message, author=split_key(repo_id)[1].split("/")[0], replace_all=True,
                            when=when)

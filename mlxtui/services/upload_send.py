"""The blocking half of an upload: repo and visibility, hashing bound to the checked bytes, one commit, verify.

Runs on one worker thread (`UploadService.upload` drives it). It never changes `os.environ` or
`huggingface_hub.constants`: the endpoint is the Context's, passed to `HfApi` explicitly, and the Xet/LFS
decision was made once on the main thread at start-up. `SendState` tells the caller whether the commit request
was sent, so a cancel or a dropped connection is reported truthfully.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlxtui.format import human_bytes, printable
from mlxtui.services import hubclient
from mlxtui.services.errors import CancelledByUser, UploadError
from mlxtui.services.events import UploadFinished, UploadStage
from mlxtui.services.upload_preflight import UploadPlan, loadable
from mlxtui.services.upload_progress import NOTHING_PUBLISHED, ProgressSink, progress_hook
from mlxtui.services.upload_scan import is_weights, open_checked

__all__ = ["SendState", "send", "remote_files", "compare", "stored_on_hub", "INLINE_BYTES"]

log = logging.getLogger(__name__)

#: checked files up to this size are read once and sent from memory: the bytes sent are the bytes scanned
INLINE_BYTES = 64_000_000
_NEVER_DELETE = (".gitattributes",)


@dataclass
class SendState:
    """What the sending thread has done so far (read by the event loop after a cancel or an error)."""

    commit_sent: bool = False
    commit: str | None = None
    visibility_changed: bool = False
    #: the visibility the repo must end with (the plan's, or the repo's own when nobody asked and none was shown)
    private: bool | None = None


def _git_blob_sha1(data: bytes | None, path: str | None, size: int) -> str:
    """The git blob id the Hub reports for regular (non-LFS) files."""
    digest = hashlib.sha1(b"blob %d\0" % size)
    if data is not None:
        digest.update(data)
    else:
        with open(path or "", "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def remote_files(api: Any, repo_id: str) -> dict[str, Any]:
    """The repo's files (path -> RepoFile); empty for a repo that does not exist or has no tree yet."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.hf_api import RepoFile

    try:
        return {item.path: item for item in api.list_repo_tree(repo_id, recursive=True, repo_type="model")
                if isinstance(item, RepoFile)}
    except (EntryNotFoundError, RevisionNotFoundError, RepositoryNotFoundError):
        return {}


def _same(op: Any, remote: Any) -> bool:
    """Is this local file already on the server, byte for byte (sha256 for LFS, git blob id otherwise)?"""
    if remote is None or remote.size != op.upload_info.size:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == op.upload_info.sha256.hex()
    data = op.path_or_fileobj if isinstance(op.path_or_fileobj, bytes) else None
    path = op.path_or_fileobj if isinstance(op.path_or_fileobj, str) else None
    return remote.blob_id == _git_blob_sha1(data, path, op.upload_info.size)


def compare(api: Any, plan: UploadPlan, ops: list[Any], deleted: list[str], private: bool | None = None) -> list[str]:
    """What differs between the repo and the folder (blocking): missing or different files, files that should be
    gone, the wrong visibility. Empty when the repo serves the folder."""
    remote = remote_files(api, plan.repo_id)
    problems: list[str] = []
    for op in ops:
        entry = remote.get(op.path_in_repo)
        name = printable(op.path_in_repo, newlines=False)
        if entry is None:
            problems.append(f"{name} is missing")
        elif not _same(op, entry):
            problems.append(f"{name} differs")
    problems += [f"{printable(p, newlines=False)} is still there" for p in deleted if p in remote]
    wanted = plan.private if private is None else private
    now = bool(getattr(api.model_info(plan.repo_id), "private", False))
    if now != wanted:
        problems.append(f"the repo is {'private' if now else 'public'}, not {'private' if wanted else 'public'}")
    return problems


def _stat_changes(plan: UploadPlan) -> list[str]:
    """Files whose size, time or identity changed since the check (cheap: no reading)."""
    changed = []
    for path, real, size, mtime_ns, inode in plan.binding.stats if plan.binding else ():
        try:
            info = os.stat(real)
        except OSError:
            changed.append(path)
            continue
        if (info.st_size, info.st_mtime_ns, info.st_ino) != (size, mtime_ns, inode):
            changed.append(path)
    return changed


def _changed_error(paths: list[str]) -> UploadError:
    return UploadError(f"{printable(', '.join(paths[:4]), newlines=False)} changed after the check; nothing was published.",
                       hint="Check again (ctrl+r, or run the command again), then upload.")


def _operations(plan: UploadPlan, cancel: threading.Event) -> list[Any]:
    """One CommitOperationAdd per file, from the bytes that were checked (a changed file stops the upload)."""
    from huggingface_hub import CommitOperationAdd

    ops = []
    for f in plan.files:
        if cancel.is_set():
            raise CancelledByUser(NOTHING_PUBLISHED, hint="Run it again to resume.")
        checked = plan.binding.digest(f.path) if plan.binding else None
        if not is_weights(f.path) and f.size <= INLINE_BYTES:
            try:
                with open_checked(f.real) as handle:
                    data = handle.read(INLINE_BYTES + 1)
            except OSError:
                raise _changed_error([f.path]) from None
            if checked is not None and hashlib.sha256(data).hexdigest() != checked:
                raise _changed_error([f.path])
            ops.append(CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=data))
            continue
        op = CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.real)
        if not is_weights(f.path) and checked is not None and op.upload_info.sha256.hex() != checked:
            raise _changed_error([f.path])
        ops.append(op)
    changed = _stat_changes(plan)
    if changed:
        raise _changed_error(changed)
    return ops


def _visibility(api: Any, plan: UploadPlan, emit: Callable[[Any], None], state: SendState) -> None:
    """Create the repo if needed and give it the visibility asked for, before any file is sent.

    A visibility is changed only when asked for, or when the confirmation showed the change: a repo the check
    could not see, with no visibility asked for, keeps its own."""
    emit(UploadStage("repo", f"Creating {plan.repo_id} ({'private' if plan.private else 'public'}) if needed"))
    api.create_repo(plan.repo_id, private=plan.private, exist_ok=True, repo_type="model")
    private = bool(getattr(api.model_info(plan.repo_id), "private", False))
    state.private = plan.private
    if private != plan.private and not plan.visibility_asked and plan.private_now is None:
        state.private = private  # nobody asked, nothing was shown: keep it
    elif private != plan.private:
        emit(UploadStage("repo", f"Making {plan.repo_id} {'private' if plan.private else 'public'} before sending anything"))
        api.update_repo_settings(plan.repo_id, private=plan.private, repo_type="model")
        state.visibility_changed = True


def _may_ask() -> bool:
    """Whether `stored_on_hub` asks the Hub: only on the huggingface_hub major it was written for (it uses
    private helpers), and only for plain LFS (Xet, the real Hub's path, reads every byte to chunk it anyway)."""
    if hubclient.installed_major() != hubclient.HF_HUB_MAJOR:
        return False
    from huggingface_hub.utils._runtime import is_xet_available

    return not is_xet_available()  # False when HF_HUB_DISABLE_XET (decided once at start-up) or without hf_xet


def stored_on_hub(api: Any, repo_id: str, ops: list[Any], cancel: threading.Event) -> set[int] | None:
    """The ops (by id) whose LFS object the Hub already stores, though this repo does not hold it yet: another
    repo's copy (a second name for the same conversion) or an earlier interrupted upload. Blocking.

    Asks what huggingface_hub's own LFS step would ask, earlier: the preupload endpoint decides each file's
    upload mode (set on the ops, so huggingface_hub does not ask again), then one LFS batch request per 256
    objects (one for any model folder) names the objects that need no upload (no "actions"). The sha256 is
    the one huggingface_hub computes for that step anyway, kept on the op: no file is hashed twice.
    None (not known: every file counts as sent, as before) on another huggingface_hub major, with Xet (it
    reads every byte of a file to chunk it, known or not), or when the batch request fails: the upload's own
    LFS step then asks again and reports any lasting failure.
    """
    if not ops:
        return set()
    if not _may_ask():
        return None
    from huggingface_hub._commit_api import UPLOAD_BATCH_MAX_NUM_FILES, _fetch_upload_modes
    from huggingface_hub.lfs import post_lfs_batch_info

    headers = api._build_hf_headers()
    # the same request preupload_lfs_files would make (errors go the same way: mapped by the caller)
    gitignore = next((op.path_or_fileobj.decode("utf-8", "replace") for op in ops if op.path_in_repo == ".gitignore"
                      and isinstance(op.path_or_fileobj, bytes)), None)
    _fetch_upload_modes(additions=[op for op in ops if op._upload_mode is None], repo_type="model",
                        repo_id=repo_id, headers=headers, revision="main", endpoint=api.endpoint,
                        gitignore_content=gitignore)
    lfs = [op for op in ops if op._upload_mode == "lfs" and not op._should_ignore]
    for op in lfs:  # hashing a large file takes a while: stop between files when asked
        if cancel.is_set():
            raise CancelledByUser(NOTHING_PUBLISHED, hint="Run it again to resume.")
        op.upload_info.sha256  # noqa: B018 - computed once here, kept on the op for huggingface_hub's own step
    present: set[str] = set()
    try:
        for start in range(0, len(lfs), UPLOAD_BATCH_MAX_NUM_FILES):
            chunk = lfs[start:start + UPLOAD_BATCH_MAX_NUM_FILES]
            answers, _errors, _transfer = post_lfs_batch_info(
                upload_infos=[op.upload_info for op in chunk], token=None, repo_type="model", repo_id=repo_id,
                revision="main", endpoint=api.endpoint, headers=headers, transfers=["basic", "multipart"])
            present |= {a["oid"] for a in answers if isinstance(a, dict) and a.get("actions") is None}
    except Exception as error:  # noqa: BLE001 - only the counts depend on it: fall back to "every file is sent"
        log.info("LFS batch check of %s failed, counting every file as sent: %s", repo_id,
                 hubclient.map_error(error, repo_id, api.endpoint, writing=True))
        return None
    return {id(op) for op in lfs if op.upload_info.sha256.hex() in present}


def send(api: Any, plan: UploadPlan, emit: Callable[[Any], None], cancel: threading.Event, state: SendState) -> None:
    """Repo and visibility, hashing, comparing, LFS bytes, one commit (adds and deletes), verification."""
    from huggingface_hub import CommitOperationDelete

    def stop_if_cancelled() -> None:
        if cancel.is_set():
            raise CancelledByUser(NOTHING_PUBLISHED, hint="Run it again to resume.")

    stop_if_cancelled()
    # everything that can refuse the upload comes before the first change on the Hub (repo, visibility)
    emit(UploadStage("hashing", f"Hashing {len(plan.files)} files"))
    ops = _operations(plan, cancel)
    emit(UploadStage("comparing", "Comparing with the files already on the server"))
    remote = remote_files(api, plan.repo_id)
    local = {f.path for f in plan.files}
    deletes = sorted(p for p in remote if p not in local and p not in _NEVER_DELETE
                     and (loadable(p) or plan.delete_others))
    unconfirmed = sorted(set(deletes) - set(plan.deletions))
    if unconfirmed:  # the repo changed since the confirmation (or could not be read then): never delete unseen
        raise UploadError(f"{plan.repo_id} now holds {printable(', '.join(unconfirmed[:4]), newlines=False)}, which the "
                          "folder lacks and the confirmation did not list; nothing was published.",
                          hint="Check again, then upload: the new list of files to delete will be shown.")
    stop_if_cancelled()
    _visibility(api, plan, emit, state)
    to_send = [op for op in ops if not _same(op, remote.get(op.path_in_repo))]
    sizes = {f.path: f.size for f in plan.files}
    sending = {id(op) for op in to_send}
    skipped = [op for op in ops if id(op) not in sending]
    if to_send and _may_ask():
        emit(UploadStage("comparing", "Asking the Hub which of the new files it already stores"))
    # in the commit (this repo must reference them) but not sent: the Hub has their bytes from elsewhere
    asked = stored_on_hub(api, plan.repo_id, to_send, cancel)
    stored = [op for op in to_send if id(op) in (asked or ())]
    transfer = [op for op in to_send if id(op) not in (asked or ())]
    send_bytes = sum(sizes[op.path_in_repo] for op in transfer)
    already = len(skipped) + len(stored)
    sink = ProgressSink(emit, len(transfer), send_bytes, cancel)
    sent_bytes = 0
    if to_send or deletes:
        if transfer:
            emit(UploadStage("sending", f"Sending {len(transfer)} files ({human_bytes(send_bytes)}); "
                             f"{already} already on the Hub"))
            sink.report()
        elif to_send:
            emit(UploadStage("sending", f"Nothing to send: all {already} files are already on the Hub"))
        with progress_hook(sink):
            # LFS bytes first, as their own step: a cancel before the commit publishes nothing
            if to_send:
                api.preupload_lfs_files(plan.repo_id, additions=to_send, repo_type="model")
        stop_if_cancelled()
        changed = _stat_changes(plan)
        if changed:
            raise _changed_error(changed)
        state.commit_sent = True  # from here on, the commit may land whatever happens to this thread
        what = f"{len(to_send)} files" + (f", deleting {len(deletes)}" if deletes else "")
        emit(UploadStage("committing", f"Committing {what} to {plan.repo_id}"))
        info = api.create_commit(
            plan.repo_id,
            operations=[*to_send, *(CommitOperationDelete(path_in_repo=p) for p in deletes)],
            commit_message=f"Upload {plan.folder.name} with mlxtui",
            repo_type="model",
        )
        state.commit = getattr(info, "oid", None)
        if asked is not None:  # each file of `transfer` went whole: a PUT, or inside the commit
            sent_bytes = send_bytes
        else:  # regular files travel inside the commit; LFS blobs the server already had were never read
            regular = sum(sizes[op.path_in_repo] for op in to_send if getattr(op, "_upload_mode", None) == "regular")
            sent_bytes = sink.bytes_done + regular
        sink.files_done, sink.bytes_done = len(transfer), send_bytes
        sink.report()
        if cancel.is_set():
            raise CancelledByUser("Cancelled after the commit was sent.")
    else:
        emit(UploadStage("sending", f"Nothing to send: all {len(skipped)} files are already there"))
    emit(UploadStage("verifying", "Verifying the remote files and visibility against the local folder"))
    problems = compare(api, plan, ops, deletes, state.private)
    if problems:
        raise UploadError(f"Verification of {plan.repo_id} failed: " + "; ".join(problems[:5])
                          + ("…" if len(problems) > 5 else ""), hint="Run the upload again to send the files that differ.")
    not_sent = [*skipped, *stored]
    emit(UploadFinished(plan.repo_id, plan.url, state.commit, len(transfer), len(not_sent), sent_bytes, len(ops),
                        skipped_bytes=sum(sizes[op.path_in_repo] for op in not_sent), deleted_files=tuple(deletes),
                        private=state.private, visibility_changed=state.visibility_changed,
                        stored_files=len(stored), stored_bytes=sum(sizes[op.path_in_repo] for op in stored)))

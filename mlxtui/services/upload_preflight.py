"""The upload preflight: everything checked before a byte is sent, as a checklist bound to the bytes checked.

`check_folder` (blocking) walks the folder (upload_scan), checks it is an MLX model, and scans every file but
the tensors for secrets; `remote_state` (blocking) reads the target repo's visibility and files. The result
goes into an `UploadPlan` with a `Binding`: the real path, size, mtime, inode and digest of every file the
verdict holds for, so the upload can tell whether anything changed since.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxtui.format import human_bytes, printable
from mlxtui.services.bounded import BadFileError, read_json_object
from mlxtui.services.modelfolder import ALLOW_PATTERNS, CARD_FILE, CONFIG_FILE, PROVENANCE_FILE, config_str
from mlxtui.services.upload_identity import Identity
from mlxtui.services.upload_scan import (
    FOREIGN_WEIGHTS,
    Finding,
    FolderWalk,
    Hidden,
    LocalFile,
    file_digest,
    is_weights,
    scan_file,
    scan_name,
    walk_folder,
)

__all__ = [
    "CheckItem",
    "UploadPlan",
    "Binding",
    "FolderCheck",
    "RemoteState",
    "check_folder",
    "remote_state",
    "loadable",
    "binding_changes",
]

#: what an mlx-lm output folder may hold; anything else above STRAY_BYTES is a stray large file
_EXPECTED = ("*.safetensors", "*.json", "*.jinja", "*.md", "*.txt", "*.model", "*.tiktoken", "*.py", ".gitattributes",
             "LICENSE*", "NOTICE*", "USE_POLICY*")
STRAY_BYTES = 1_000_000
INDEX_FILE = "model.safetensors.index.json"
#: remote files that are never deleted by a mirror (the Hub's own bookkeeping)
_NEVER_DELETE = (".gitattributes",)


@dataclass(frozen=True)
class CheckItem:
    """One line of the preflight checklist. `status` is "ok", "warning" or "error" (errors block the upload)."""

    name: str
    status: str
    detail: str = ""
    #: the relative paths this line is about (the ones a user may exclude)
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Binding:
    """What the verdict was given for: per file (real path, size, mtime, inode) and the digest of what was read,
    plus every refused name (a new link or key file is a change too)."""

    stats: tuple[tuple[str, str, int, int, int], ...]
    digests: tuple[tuple[str, str], ...]
    refused: tuple[str, ...]

    def digest(self, path: str) -> str | None:
        return dict(self.digests).get(path)


@dataclass
class FolderCheck:
    """The folder half of a preflight (blocking, no network)."""

    walk: FolderWalk
    checks: list[CheckItem]
    findings: list[Finding]
    binding: Binding


@dataclass
class RemoteState:
    """The target repo as it is now: whether it exists, its visibility, its files (path -> size)."""

    exists: bool | None = None
    private: bool | None = None
    files: dict[str, int] = field(default_factory=dict)


@dataclass
class UploadPlan:
    """What would be sent where; shown in the confirmation before anything leaves the machine.

    `private` is the visibility asked for; `private_now` the repo's current one (None: it does not exist yet).
    `remote_delete` are remote files mlx-lm would load that the folder lacks (deleted in the same commit);
    `remote_keep` the other remote files the folder lacks (kept, unless `delete_others`).
    """

    folder: Path
    repo_id: str
    private: bool
    endpoint: str
    files: list[LocalFile]
    checks: list[CheckItem] = field(default_factory=list)
    identity: Identity | None = None
    repo_exists: bool | None = None
    private_now: bool | None = None
    remote_delete: list[str] = field(default_factory=list)
    remote_keep: list[str] = field(default_factory=list)
    delete_others: bool = False
    #: whether `private` was asked for (False: it is the existing repo's, or public for a new one)
    visibility_asked: bool = True
    exclude: tuple[str, ...] = ()
    findings: list[Finding] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    binding: Binding | None = field(default=None, repr=False)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def ok(self) -> bool:
        return not any(c.status == "error" for c in self.checks)

    @property
    def errors(self) -> list[CheckItem]:
        return [c for c in self.checks if c.status == "error"]

    @property
    def url(self) -> str:
        return f"{self.endpoint.rstrip('/')}/{self.repo_id}"

    @property
    def visibility_change(self) -> str | None:
        """"public → private" when the repo exists with the other visibility, else None."""
        if self.private_now is None or self.private_now == self.private:
            return None
        return "public → private" if self.private else "private → PUBLIC"

    @property
    def deletions(self) -> list[str]:
        """Remote files this upload deletes in its commit."""
        return sorted(self.remote_delete + (self.remote_keep if self.delete_others else []))


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def loadable(path: str) -> bool:
    """Whether mlx-lm would download (and so may load) this repo file: its download patterns, any safetensors."""
    return is_weights(path) or _matches(path, ALLOW_PATTERNS)


def _short(items: list[str], n: int = 6) -> str:
    return ", ".join(items[:n]) + (f" … ({len(items)} in all)" if len(items) > n else "")


# --- the folder --------------------------------------------------------------------------------------------


def _config_check(folder: Path, names: set[str]) -> tuple[CheckItem, dict[str, Any]]:
    if CONFIG_FILE not in names:
        return CheckItem(CONFIG_FILE, "error", "No config.json: this folder is not an MLX model."), {}
    try:
        config = read_json_object(folder / CONFIG_FILE)
    except (OSError, BadFileError) as error:
        return CheckItem(CONFIG_FILE, "error", f"config.json can't be read: {error}"), {}
    if not config_str(config, "model_type"):
        return CheckItem(CONFIG_FILE, "error", "config.json has no model_type (a name): this is not an MLX model."), config
    return CheckItem(CONFIG_FILE, "ok", f"model_type {printable(config['model_type'], newlines=False)}"), config


def _index_check(folder: Path, weights: list[str]) -> CheckItem:
    try:
        index = read_json_object(folder / INDEX_FILE)
        weight_map = index.get("weight_map") or {}
        referenced = {str(v) for v in weight_map.values()} if isinstance(weight_map, dict) else set()
    except (OSError, BadFileError) as error:
        return CheckItem("Weights", "error", f"{INDEX_FILE} can't be read: {error}")
    missing = sorted(referenced - set(weights))
    extra = sorted(set(weights) - referenced)
    if missing:
        return CheckItem("Weights", "error", f"The index names {printable(', '.join(missing), newlines=False)}, which is missing.")
    if extra:
        return CheckItem("Weights", "error",
                         f"{printable(', '.join(extra), newlines=False)} is not in the index: a leftover from another run?")
    metadata = index.get("metadata") if isinstance(index.get("metadata"), dict) else {}
    total = metadata.get("total_size")
    detail = f"{len(weights)} shard{'s' if len(weights) != 1 else ''}, consistent with the index"
    if isinstance(total, int) and not isinstance(total, bool):
        detail += f" ({human_bytes(total)} of tensors)"
    return CheckItem("Weights", "ok", detail)


def _model_checks(folder: Path, files: list[LocalFile]) -> list[CheckItem]:
    names = {f.path for f in files}
    config_item, config = _config_check(folder, names)
    checks = [config_item]
    weights = sorted(n for n in names if is_weights(n))
    foreign = sorted(n for n in names if _matches(Path(n).name.lower(), FOREIGN_WEIGHTS))
    if foreign:
        checks.append(CheckItem("Weights", "error", f"{printable(', '.join(foreign[:3]), newlines=False)}: "
                                "PyTorch/other weights, not MLX. Convert the model first."))
    elif not weights:
        checks.append(CheckItem("Weights", "error", "No .safetensors weights: this folder is not an MLX model."))
    elif INDEX_FILE in names:
        checks.append(_index_check(folder, weights))
    elif len(weights) > 1:
        checks.append(CheckItem("Weights", "error", f"{len(weights)} weight files but no {INDEX_FILE}."))
    else:
        size = next(f.size for f in files if f.path == weights[0])
        checks.append(CheckItem("Weights", "ok", f"{printable(weights[0], newlines=False)} ({human_bytes(size)})"))
    # MLX, not a Hugging Face checkout: mlx-lm always leaves one of these marks
    if config and not (PROVENANCE_FILE in names or "quantization" in config or _card_says_mlx(folder, names)):
        checks.append(CheckItem("MLX", "error",
                                "Nothing marks this as an MLX conversion (no mlxtui-provenance.json, no quantization in "
                                "config.json, README.md without library_name: mlx). Convert it first."))
    return checks


def _card_says_mlx(folder: Path, names: set[str]) -> bool:
    if CARD_FILE not in names:
        return False
    from mlxtui.services.card import split_card
    from mlxtui.services.modelfolder import read_text

    try:
        meta = split_card(read_text(folder / CARD_FILE)).meta or {}
    except (OSError, BadFileError):
        return False
    return isinstance(meta, dict) and meta.get("library_name") == "mlx"


def _refusal_checks(walk: FolderWalk) -> list[CheckItem]:
    checks: list[CheckItem] = []
    links = walk.labels("link")
    if links:
        checks.append(CheckItem("Links", "error", _short(links, 4) + ": nothing is read through a link that leaves the "
                                "folder. Copy the file in, or exclude it.", tuple(walk.paths("link"))))
    unexpected = walk.labels("secret", "junk", "special")
    if unexpected:
        what = " (credentials, by their name)" if walk.labels("secret") else ""
        checks.append(CheckItem("Unexpected files", "error", f"{_short(unexpected)}{what}: remove or exclude them "
                                "(they are never uploaded, but check nothing else leaked).",
                                tuple(walk.paths("secret", "junk", "special"))))
    stray = [f for f in walk.files if f.size > STRAY_BYTES and not _matches(Path(f.path).name, _EXPECTED)]
    if stray:
        checks.append(CheckItem("Stray large files", "error", ", ".join(
            f"{printable(f.path, newlines=False)} ({human_bytes(f.size)})" for f in stray[:4]) + ": not part of a model.",
            tuple(f.path for f in stray)))
    if not unexpected and not stray and not links:
        checks.append(CheckItem("Files", "ok", f"{len(walk.files)} files, {human_bytes(sum(f.size for f in walk.files))}"))
    if walk.excluded:
        checks.append(CheckItem("Excluded", "ok", f"not sent: {printable(_short(walk.excluded), newlines=False)}"))
    return checks


def _secret_checks(files: list[LocalFile], token: Hidden) -> tuple[CheckItem, list[Finding], dict[str, str]]:
    findings: list[Finding] = []
    digests: dict[str, str] = {}
    unreadable: list[str] = []
    scanned = 0
    for f in files:
        findings += scan_name(f.path, (token,))
        if _matches(Path(f.path).name.lower(), FOREIGN_WEIGHTS):
            continue  # refused above; not worth reading gigabytes of tensors
        try:
            found, digest = scan_file(f, (token,))
        except (OSError, BadFileError) as error:
            unreadable.append(f"{printable(f.path, newlines=False)} ({error})")
            continue
        scanned += f.size
        findings += found
        digests[f.path] = digest
    if findings:
        files_with = sorted({x.path for x in findings})
        shown = sorted({x.shown or printable(x.path, newlines=False) for x in findings})
        detail = "; ".join(str(x) for x in findings[:6]) + (f" … ({len(findings)} in all)" if len(findings) > 6 else "")
        return (CheckItem("Secrets", "error", f"{detail}. Remove the secret, or exclude "
                          f"{'the file' if len(files_with) == 1 else 'the files'} ({', '.join(shown)}); "
                          "a key or token is never uploaded.", tuple(files_with)), findings, digests)
    if unreadable:
        return CheckItem("Secrets", "error", f"can't be checked: {_short(unreadable, 3)}"), findings, digests
    return (CheckItem("Secrets", "ok", f"no keys or tokens in {len(digests)} files (weights: metadata only)"),
            findings, digests)


def _binding(walk: FolderWalk, digests: dict[str, str]) -> Binding:
    stats = tuple((f.path, f.real, f.size, f.mtime_ns, f.inode) for f in walk.files)
    refused = tuple(r.label for r in walk.refused)
    return Binding(stats, tuple(sorted(digests.items())), refused)


def check_folder(folder: Path, token: Hidden, exclude: tuple[str, ...] = ()) -> FolderCheck:
    """Walk, check and scan the folder (blocking): the folder half of the preflight."""
    walk = walk_folder(folder, exclude)
    checks = _model_checks(folder, walk.files) + _refusal_checks(walk)
    secret_item, findings, digests = _secret_checks(walk.files, token)
    checks.append(secret_item)
    return FolderCheck(walk, checks, findings, _binding(walk, digests))


def binding_changes(folder: Path, binding: Binding, exclude: tuple[str, ...] = ()) -> list[str]:
    """What changed since `binding` was made: files that appeared, vanished or changed (size, time, content)."""
    walk = walk_folder(folder, exclude)
    now = {s[0]: s[1:] for s in _binding(walk, {}).stats}
    before = {s[0]: s[1:] for s in binding.stats}
    changes = [f"{p} appeared" for p in sorted(now.keys() - before.keys())]
    changes += [f"{p} vanished" for p in sorted(before.keys() - now.keys())]
    refused = {r.label for r in walk.refused}
    changes += [f"{p} appeared" for p in sorted(refused - set(binding.refused))]
    digests = dict(binding.digests)
    for f in walk.files:
        if f.path not in before:
            continue
        if now[f.path] != before[f.path]:
            changes.append(f"{f.path} changed")
            continue
        if f.path in digests:
            try:
                same = file_digest(f) == digests[f.path]
            except OSError:
                same = False
            if not same:
                changes.append(f"{f.path} changed")
    return [printable(c, newlines=False) for c in changes]


# --- the remote repo ---------------------------------------------------------------------------------------


def remote_state(api: Any, repo_id: str) -> RemoteState:
    """The repo's existence, visibility and files (blocking). A repo we can't see counts as not existing."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.hf_api import RepoFile

    try:
        info = api.model_info(repo_id)
    except RepositoryNotFoundError:
        return RemoteState(exists=False)
    state = RemoteState(exists=True, private=bool(getattr(info, "private", False)))
    try:
        for item in api.list_repo_tree(repo_id, recursive=True, repo_type="model"):
            if isinstance(item, RepoFile):
                state.files[item.path] = item.size
    except (EntryNotFoundError, RevisionNotFoundError):
        pass  # an empty repo has no tree yet
    return state


def remote_checks(plan: UploadPlan, state: RemoteState) -> list[CheckItem]:
    """Fill the plan's remote half from `state`; the checklist lines that say what will change on the Hub."""
    plan.repo_exists = state.exists
    plan.private_now = state.private if state.exists else None
    local = {f.path for f in plan.files}
    missing = sorted(p for p in state.files if p not in local and p not in _NEVER_DELETE)
    plan.remote_delete = [p for p in missing if loadable(p)]
    plan.remote_keep = [p for p in missing if not loadable(p)]
    checks: list[CheckItem] = []
    if not state.exists:
        return checks
    checks.append(CheckItem("Repo", "ok", f"{plan.repo_id} exists: files it already has are not sent again"))
    if plan.visibility_change:
        checks.append(CheckItem("Visibility", "warning", f"{plan.repo_id} is {'public' if not plan.private_now else 'private'}"
                                f" now; it will be made {'private' if plan.private else 'PUBLIC'} before any file is sent"))
    if plan.remote_delete:
        checks.append(CheckItem("Remote files", "warning", "mlx-lm would load these, and the folder lacks them: deleted "
                                f"in the same commit: {printable(_short(plan.remote_delete), newlines=False)}"))
    if plan.remote_keep:
        verb = "deleted (asked for)" if plan.delete_others else "kept"
        checks.append(CheckItem("Other remote files", "ok" if not plan.delete_others else "warning",
                                f"{verb}: {printable(_short(plan.remote_keep), newlines=False)}"))
    return checks

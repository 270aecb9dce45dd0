"""Upload an MLX folder to the Hub: who am I, preflight, a resumable upload with progress, verification.

Everything goes through huggingface_hub (never mlx-lm's upload helper, which rewrites README.md and fails with
huggingface_hub 2.x). Xet (the real Hub) versus plain LFS (the local devhub, mirrors) is decided in one place,
`mlxtui.services.configure_hub_environment`. The token comes from the Context, HF_TOKEN or the standard token
file; it is passed to huggingface_hub and never shown, logged or written anywhere by mlxtui.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from mlxtui.format import human_bytes
from mlxtui.services import Context, configure_hub_environment
from mlxtui.services.card import CARD_FILE, PROVENANCE_FILE, CardService, quant_label, read_provenance, split_card
from mlxtui.services.errors import (
    AuthError,
    CancelledByUser,
    InvalidInputError,
    MlxtuiError,
    NotFoundError,
    RateLimitedError,
    UploadError,
)
from mlxtui.services.events import UploadFinished, UploadProgress, UploadStage

__all__ = [
    "Identity",
    "CheckItem",
    "LocalFile",
    "UploadPlan",
    "UploadService",
    "suggest_repo_name",
    "looks_like_token",
    "scan_folder",
]

#: files whose name says "secret" or "junk": never uploaded
_UNEXPECTED = (
    ".env", ".env.*", "*.env", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.pem", "*.key", "*.p12", "*.pfx",
    ".netrc", ".git-credentials", ".npmrc", ".pypirc", "credentials*", ".DS_Store", "Thumbs.db", "*.pyc", "*.swp",
    "*~", "*.tmp", ".*.tmp",
)
_UNEXPECTED_DIRS = ("__pycache__", ".git", ".ipynb_checkpoints", ".cache", ".huggingface", ".venv")
#: what an mlx-lm output folder may hold; anything else above _STRAY_BYTES is a stray large file
_EXPECTED = (
    "*.safetensors", "*.json", "*.jinja", "*.md", "*.txt", "*.model", "*.tiktoken", "*.py", ".gitattributes",
    "*.py", "LICENSE*", "NOTICE*", "USE_POLICY*",
)
_STRAY_BYTES = 1_000_000
_FOREIGN_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.gguf", "*.ckpt", "*.h5", "*.msgpack", "*.onnx")
#: Hugging Face user access tokens: "hf_" and 30+ letters and digits
_TOKEN_PATTERN = re.compile(rb"\bhf_[A-Za-z0-9]{30,}\b")
_SCAN_BYTES = 5_000_000
_WRITE_ROLES = {"admin", "write", "contributor"}
#: huggingface_hub patches are process-wide: one upload at a time
_UPLOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class Identity:
    """Who the token belongs to and where it may write (own namespace first)."""

    user: str
    orgs: tuple[str, ...]
    writable: tuple[str, ...]
    role: str

    def can_write(self, namespace: str) -> bool:
        return namespace in self.writable


@dataclass(frozen=True)
class CheckItem:
    """One line of the preflight checklist. `status` is "ok", "warning" or "error" (errors block the upload)."""

    name: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class LocalFile:
    path: str  # relative, with "/" separators, as in the repo
    size: int


@dataclass
class UploadPlan:
    """What would be sent where; shown in the confirmation before anything leaves the machine."""

    folder: Path
    repo_id: str
    private: bool
    endpoint: str
    files: list[LocalFile]
    checks: list[CheckItem] = field(default_factory=list)
    identity: Identity | None = None
    repo_exists: bool | None = None

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


# --- pure helpers -------------------------------------------------------------------------------------


def suggest_repo_name(folder: Path | str) -> str:
    """"<model>-<quantization>", e.g. h2o-danube2-tiny-chat-4bit, from the provenance (else the folder name)."""
    folder = Path(folder)
    provenance = read_provenance(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    source = (provenance or {}).get("source")
    base = Path(str(source)).name if source else folder.name
    label = quant_label(provenance, config if isinstance(config, dict) else {})
    if not provenance and not (isinstance(config, dict) and config.get("quantization")):
        return folder.name
    return base if base.endswith(label) else f"{base}-{label}"


def looks_like_token(data: bytes) -> bool:
    """True when bytes contain something shaped like a Hugging Face token (hf_ + 30 or more letters/digits)."""
    return _TOKEN_PATTERN.search(data) is not None


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def scan_folder(folder: Path) -> tuple[list[LocalFile], list[str]]:
    """All files to upload (sorted) and the unexpected ones found (which are never uploaded)."""
    files: list[LocalFile] = []
    unexpected: list[str] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        parts = rel.split("/")
        if any(part in _UNEXPECTED_DIRS for part in parts[:-1]):
            if path.is_file():
                top = next(p for p in parts if p in _UNEXPECTED_DIRS)
                label = "/".join(parts[: parts.index(top) + 1]) + "/"
                if label not in unexpected:
                    unexpected.append(label)
            continue
        if path.is_dir():
            if path.name in _UNEXPECTED_DIRS and f"{rel}/" not in unexpected:
                unexpected.append(f"{rel}/")
            continue
        if not path.is_file():
            continue
        if _matches(path.name, _UNEXPECTED):
            unexpected.append(rel)
            continue
        files.append(LocalFile(rel, path.stat().st_size))
    return files, unexpected


def _git_blob_sha1(path: Path) -> str:
    """The git blob id the Hub reports for regular (non-LFS) files."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()




# --- error mapping ------------------------------------------------------------------------------------


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_connection_error(error: BaseException) -> bool:
    for item in _chain(error):
        module = type(item).__module__ or ""
        name = type(item).__name__
        if module.startswith(("httpx", "httpcore", "h11")) and name not in ("HTTPStatusError",):
            return True
        if isinstance(item, (ConnectionError, TimeoutError)):
            return True
    return False


def _status(error: BaseException) -> int | None:
    for item in _chain(error):
        response = getattr(item, "response", None)
        code = getattr(response, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def map_hub_error(error: BaseException, repo_id: str, endpoint: str) -> MlxtuiError:
    """A huggingface_hub / transport failure as a sentence a person can act on."""
    if isinstance(error, MlxtuiError):
        return error
    for item in _chain(error):
        if isinstance(item, MlxtuiError):
            return item
    from huggingface_hub.errors import HFValidationError, LocalTokenNotFoundError, RepositoryNotFoundError

    namespace = repo_id.split("/")[0]
    if isinstance(error, HFValidationError):
        return InvalidInputError(f"{repo_id!r} is not a valid repo id: {error}")
    if isinstance(error, LocalTokenNotFoundError):
        return AuthError("No Hugging Face token found.", hint="Set HF_TOKEN or run `hf auth login`.")
    status = _status(error)
    if status == 401:
        return AuthError(f"{endpoint} refused the token (401).", hint="Check HF_TOKEN or run `hf auth login` again.")
    if status == 403:
        return AuthError(
            f"You can't write to {repo_id}: the token is read-only or has no write access to {namespace!r} (403).",
            hint="Use a token with write access, or pick a namespace you own.",
        )
    if status == 429:
        return RateLimitedError(f"{endpoint} is rate limiting uploads (429).", hint="Wait a minute and run it again.")
    if isinstance(error, RepositoryNotFoundError):
        return NotFoundError(f"{repo_id} was not found on {endpoint}, or you can't see it.")
    if _is_connection_error(error):
        return UploadError(
            f"The connection to {endpoint} dropped during the upload; nothing was published.",
            hint="Run the same upload again: files the server already has are not sent again.",
        )
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return UploadError(f"The upload to {repo_id} failed: {detail}")


# --- progress through huggingface_hub's tqdm ------------------------------------------------------------


class _ProgressSink:
    """Counts bytes the LFS path reads from files (huggingface_hub has no upload callback; see hub-protocol.md)."""

    def __init__(self, emit: Callable[[Any], None], files_total: int, bytes_total: int, cancel: threading.Event) -> None:
        self.emit = emit
        self.files_total = files_total
        self.bytes_total = bytes_total
        self.cancel = cancel
        self.files_done = 0
        self.bytes_done = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        if self.cancel.is_set():
            raise CancelledByUser("Upload cancelled; nothing was published.", hint="Run it again to resume.")
        with self._lock:
            self.bytes_done += n
            now = time.monotonic()
            due = now - self._last >= 0.2
            if due:
                self._last = now
        if due:
            self.report()

    def file_done(self, size: int = 0) -> None:
        with self._lock:
            self.files_done += 1
            self.bytes_done += size
        self.report()

    def report(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.emit(
            UploadProgress(
                self.files_done, self.files_total, min(self.bytes_done, self.bytes_total), self.bytes_total,
                self.bytes_done / elapsed,
            )
        )


class _Bar:
    """Stands in for huggingface_hub.utils.tqdm.tqdm while an upload runs; feeds the active sink."""

    sink: _ProgressSink | None = None

    def __init__(self, *args: Any, total: float | None = None, **kwargs: Any) -> None:
        self.total = total or 0
        self.n = 0
        self._closed = False

    def update(self, n: float | None = 1) -> None:
        n = int(n or 0)
        self.n += n
        if self.sink is not None:
            self.sink.add(n)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.sink is not None and self.total and self.n >= self.total:
                self.sink.file_done()

    def __enter__(self) -> "_Bar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Callable[..., None]:  # refresh, set_description, ... are no-ops
        return lambda *a, **k: None


class _XetReporter:
    """Stands in for huggingface_hub's XetUploadProgressReporter (the real Hub's Xet path): same two calls,
    reports go to the active sink instead of terminal bars. Never raises: progress must not break an upload."""

    sink: _ProgressSink | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._done_bytes = 0
        self._finished: set[str] = set()

    def update_progress(self, group_report: Any, item_reports: Any = None) -> None:
        sink = self.sink
        if sink is None:
            return
        try:
            completed = int(getattr(group_report, "total_bytes_completed", 0) or 0)
            increment = max(0, completed - self._done_bytes)
            self._done_bytes = max(self._done_bytes, completed)
            items = item_reports.values() if isinstance(item_reports, dict) else (item_reports or [])
            for item in items:
                name = getattr(item, "item_name", None)
                if name and name not in self._finished and item.bytes_completed == item.total_bytes:
                    self._finished.add(name)
                    sink.file_done()
        except Exception:  # noqa: BLE001 - a report we don't understand only costs the readout
            return
        if increment:
            sink.add(increment)

    def reset_for_next_commit(self) -> None:
        self._done_bytes = 0

    def close(self) -> None:
        return None


@contextmanager
def _progress_hook(sink: _ProgressSink) -> Iterator[None]:
    """Point huggingface_hub's upload progress at `sink` for the duration of one upload.

    Plain LFS reads the module attribute huggingface_hub.utils.tqdm.tqdm (tqdm_stream_file); Xet creates a
    XetUploadProgressReporter (looked up at each call, and only while progress bars are enabled).
    """
    import huggingface_hub.constants as constants
    import huggingface_hub.utils.tqdm  # noqa: F401 - make sure the module is loaded
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    module = sys.modules["huggingface_hub.utils.tqdm"]
    original = module.tqdm
    bar = type("_SinkBar", (_Bar,), {"sink": sink})
    was_disabled = are_progress_bars_disabled()
    module.tqdm = bar  # type: ignore[attr-defined]
    xet_module = None
    xet_original = None
    if not constants.HF_HUB_DISABLE_XET:
        try:
            import huggingface_hub.utils._xet_progress_reporting as xet_module  # type: ignore[no-redef]

            xet_original = xet_module.XetUploadProgressReporter
            xet_module.XetUploadProgressReporter = type("_SinkXet", (_XetReporter,), {"sink": sink})  # type: ignore[attr-defined]
        except (ImportError, AttributeError):
            xet_module = None
    if xet_module is None:
        disable_progress_bars()  # the LFS path's other bars would write to the terminal under the TUI
    try:
        yield
    finally:
        module.tqdm = original  # type: ignore[attr-defined]
        if xet_module is not None:
            xet_module.XetUploadProgressReporter = xet_original  # type: ignore[attr-defined]
        elif not was_disabled:
            enable_progress_bars()


# --- the service --------------------------------------------------------------------------------------


class UploadService:
    """whoami, preflight, upload and verify, against ctx.endpoint."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def token(self) -> str | None:
        """ctx.token, else HF_TOKEN or the standard token file (huggingface_hub's own lookup)."""
        if self.ctx.token:
            return self.ctx.token
        from huggingface_hub import get_token

        return get_token()

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.ctx.endpoint, token=self.token() or False)

    # -- identity -------------------------------------------------------------------------------------

    async def whoami(self) -> Identity:
        """The token's user, its orgs, and the namespaces it may write to."""
        if not self.token():
            raise AuthError("No Hugging Face token found.", hint="Set HF_TOKEN or run `hf auth login`.")

        def call() -> dict[str, Any]:
            return self._api().whoami()

        try:
            info = await asyncio.to_thread(call)
        except Exception as error:
            raise map_hub_error(error, "", self.ctx.endpoint) from error
        return _identity(info)

    # -- validation -----------------------------------------------------------------------------------

    @staticmethod
    def normalise_repo_id(repo_id: str, identity: Identity | None = None) -> str:
        """"name" -> "<user>/name"; raises InvalidInputError for anything the Hub would refuse."""
        repo_id = repo_id.strip()
        if "/" not in repo_id and identity is not None:
            repo_id = f"{identity.user}/{repo_id}"
        from huggingface_hub.errors import HFValidationError
        from huggingface_hub.utils import validate_repo_id

        problem = None
        try:
            validate_repo_id(repo_id)
        except HFValidationError as error:
            problem = str(error).split("\n")[0]
        if problem is None and repo_id.count("/") != 1:
            problem = "it needs the form owner/name"
        if problem is None and len(repo_id.split("/")[1]) > 96:
            problem = "the name is longer than 96 characters"
        if problem:
            raise InvalidInputError(
                f"{repo_id!r} is not a valid repo id ({problem}).",
                hint="Use owner/name with letters, digits, '-', '_' and '.', e.g. mlx-community/model-4bit.",
            )
        return repo_id

    # -- preflight ------------------------------------------------------------------------------------

    async def preflight(self, folder: Path | str, repo_id: str, *, private: bool = False) -> UploadPlan:
        """Everything checked before a byte is sent: the folder, the card, secrets, the token and the target."""
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise InvalidInputError(f"{folder} is not a folder.", hint="Give the path of a converted MLX model.")
        checks: list[CheckItem] = []
        identity: Identity | None = None
        try:
            identity = await self.whoami()
        except AuthError as error:
            checks.append(CheckItem("Token", "error", str(error)))
        except MlxtuiError as error:
            checks.append(CheckItem("Token", "error", f"Could not check the token: {error}"))
        else:
            orgs = ", ".join(identity.orgs) or "no orgs"
            checks.append(CheckItem("Token", "ok" if identity.role != "read" else "error",
                                    f"{identity.user} ({orgs}); {identity.role} token"
                                    + (": it can't upload" if identity.role == "read" else "")))
        if "/" not in repo_id.strip() and identity is None:
            # no account to default the namespace to: still check the folder, and say what is missing
            repo_id = repo_id.strip()
            checks.append(CheckItem("Target", "error", f"Give the repo as owner/{repo_id}: without a working token "
                                    "there is no namespace to default to."))
        else:
            repo_id = self.normalise_repo_id(repo_id, identity)
        namespace = repo_id.split("/")[0]
        if identity is not None and identity.role != "read":
            if identity.can_write(namespace):
                checks.append(CheckItem("Target", "ok", f"{identity.user} may write to {namespace}"))
            elif namespace in identity.orgs:
                checks.append(CheckItem("Target", "error", f"{identity.user} has no write access to the org {namespace!r}."))
            else:
                checks.append(CheckItem("Target", "error",
                                        f"{namespace!r} belongs to someone else: {identity.user} may write to "
                                        f"{', '.join(identity.writable)}."))

        files, unexpected = await asyncio.to_thread(scan_folder, folder)
        checks += await asyncio.to_thread(self._folder_checks, folder, files, unexpected)
        checks += await self._card_checks(folder)
        plan = UploadPlan(folder, repo_id, private, self.ctx.endpoint, files, checks, identity)
        if identity is not None:
            plan.repo_exists = await self._repo_exists(repo_id)
            if plan.repo_exists:
                checks.append(CheckItem("Repo", "ok", f"{repo_id} exists: files it already has are not sent again"))
        return plan

    async def _repo_exists(self, repo_id: str) -> bool | None:
        def call() -> bool:
            return self._api().repo_exists(repo_id)

        try:
            return await asyncio.to_thread(call)
        except Exception:
            return None

    def _folder_checks(self, folder: Path, files: list[LocalFile], unexpected: list[str]) -> list[CheckItem]:
        checks: list[CheckItem] = []
        names = {f.path for f in files}
        # config.json and model_type: what makes it a model at all
        config: dict[str, Any] = {}
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            config = config if isinstance(config, dict) else {}
            if config.get("model_type"):
                checks.append(CheckItem("config.json", "ok", f"model_type {config['model_type']}"))
            else:
                checks.append(CheckItem("config.json", "error", "config.json has no model_type: this is not an MLX model."))
        except FileNotFoundError:
            checks.append(CheckItem("config.json", "error", "No config.json: this folder is not an MLX model."))
        except (OSError, ValueError) as error:
            checks.append(CheckItem("config.json", "error", f"config.json can't be read: {error}"))
        # weights, consistent with the index
        weights = sorted(n for n in names if n.endswith(".safetensors"))
        foreign = sorted(n for n in names if _matches(Path(n).name, _FOREIGN_WEIGHTS))
        index_name = "model.safetensors.index.json"
        if foreign:
            checks.append(CheckItem("Weights", "error",
                                    f"{', '.join(foreign[:3])}: PyTorch/other weights, not MLX. Convert the model first."))
        elif not weights:
            checks.append(CheckItem("Weights", "error", "No .safetensors weights: this folder is not an MLX model."))
        elif index_name in names:
            checks.append(self._index_check(folder, index_name, weights))
        elif len(weights) > 1:
            checks.append(CheckItem("Weights", "error", f"{len(weights)} weight files but no {index_name}."))
        else:
            checks.append(CheckItem("Weights", "ok", f"{weights[0]} ({human_bytes((folder / weights[0]).stat().st_size)})"))
        # MLX, not a Hugging Face checkout: mlx-lm always leaves one of these marks
        card_meta = {}
        if CARD_FILE in names:
            try:
                card_meta = split_card((folder / CARD_FILE).read_text(encoding="utf-8")).meta or {}
            except (OSError, UnicodeDecodeError):
                card_meta = {}
        if config and not (PROVENANCE_FILE in names or "quantization" in config or card_meta.get("library_name") == "mlx"):
            checks.append(CheckItem("MLX", "error",
                                    "Nothing marks this as an MLX conversion (no mlxtui-provenance.json, no quantization in "
                                    "config.json, README.md without library_name: mlx). Convert it first."))
        # unexpected and stray large files
        if unexpected:
            checks.append(CheckItem("Unexpected files", "error",
                                    f"{', '.join(unexpected[:6])}{' …' if len(unexpected) > 6 else ''}: remove them "
                                    "(they would never be uploaded, but check nothing else leaked)."))
        stray = [f for f in files if f.size > _STRAY_BYTES and not _matches(Path(f.path).name, _EXPECTED)]
        if stray:
            checks.append(CheckItem("Stray large files", "error",
                                    ", ".join(f"{f.path} ({human_bytes(f.size)})" for f in stray[:4]) + ": not part of a model."))
        if not unexpected and not stray:
            checks.append(CheckItem("Files", "ok", f"{len(files)} files, {human_bytes(sum(f.size for f in files))}"))
        # anything that looks like a token in the text files
        token = self.token()
        leaks: list[str] = []
        for f in files:
            if f.path.endswith(".safetensors") or f.size > _SCAN_BYTES:
                continue
            data = (folder / f.path).read_bytes()
            if looks_like_token(data) or (token and len(token) >= 8 and token.encode() in data):
                leaks.append(f.path)
        if leaks:
            checks.append(CheckItem("Secrets", "error",
                                    f"Something that looks like a Hugging Face token is in {', '.join(leaks)}: remove it."))
        else:
            checks.append(CheckItem("Secrets", "ok", "no token-like text found"))
        return checks

    @staticmethod
    def _index_check(folder: Path, index_name: str, weights: list[str]) -> CheckItem:
        try:
            index = json.loads((folder / index_name).read_text(encoding="utf-8"))
            referenced = set((index.get("weight_map") or {}).values())
        except (OSError, ValueError, AttributeError) as error:
            return CheckItem("Weights", "error", f"{index_name} can't be read: {error}")
        missing = sorted(referenced - set(weights))
        extra = sorted(set(weights) - referenced)
        if missing:
            return CheckItem("Weights", "error", f"The index names {', '.join(missing)}, which is missing.")
        if extra:
            return CheckItem("Weights", "error", f"{', '.join(extra)} is not in the index: a leftover from another run?")
        total = (index.get("metadata") or {}).get("total_size")
        detail = f"{len(weights)} shard{'s' if len(weights) != 1 else ''}, consistent with the index"
        return CheckItem("Weights", "ok", detail + (f" ({human_bytes(int(total))} of tensors)" if total else ""))

    async def _card_checks(self, folder: Path) -> list[CheckItem]:
        path = folder / CARD_FILE
        if not path.is_file():
            return [CheckItem("README.md", "error", "No README.md: write one in the Card pane or with `mlxtui card PATH`.")]
        text = path.read_text(encoding="utf-8", errors="replace")
        cards = CardService(self.ctx)
        source = (read_provenance(folder) or {}).get("source")
        problems, notes = await cards.lint(text, source)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            return [CheckItem("README.md", "error", " ".join(p.message for p in errors))]
        warnings = [p.message for p in problems if p.severity == "warning"] + notes
        if warnings:
            return [CheckItem("README.md", "warning", " ".join(warnings))]
        return [CheckItem("README.md", "ok", "lint-clean")]

    # -- upload ---------------------------------------------------------------------------------------

    async def upload(self, plan: UploadPlan, *, cancel: threading.Event | None = None) -> AsyncIterator[Any]:
        """Create the repo (exist_ok), send what the server lacks, commit once, verify. Yields upload events.

        Refuses a plan whose preflight has errors. Cancelling (the event, or closing the iterator) stops
        the byte stream at the next read; nothing is published and a re-run resumes.
        """
        if not plan.ok:
            raise UploadError("The preflight found problems: " + "; ".join(f"{c.name}: {c.detail}" for c in plan.errors))
        cancel = cancel or threading.Event()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()

        def emit(event: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        def run() -> None:
            try:
                with _UPLOAD_LOCK:
                    self._upload_blocking(plan, emit, cancel)
            except BaseException as error:  # handed to the consumer, re-raised there
                emit(error)
            finally:
                emit(done)

        thread = threading.Thread(target=run, name="mlxtui-upload", daemon=True)
        thread.start()
        try:
            while True:
                event = await queue.get()
                if event is done:
                    break
                if isinstance(event, BaseException):
                    if cancel.is_set():
                        raise CancelledByUser("Upload cancelled; nothing was published.", hint="Run it again to resume.")
                    raise map_hub_error(event, plan.repo_id, plan.endpoint) from event
                yield event
        finally:
            cancel.set()  # a consumer that stopped early (Escape) stops the sender too
            await asyncio.to_thread(thread.join, 30)

    def _upload_blocking(self, plan: UploadPlan, emit: Callable[[Any], None], cancel: threading.Event) -> None:
        from huggingface_hub import CommitOperationAdd

        # The real Hub takes uploads through Xet; others (the devhub) plain LFS: decided in one place.
        configure_hub_environment(plan.endpoint)
        api = self._api()
        emit(UploadStage("repo", f"Creating {plan.repo_id} ({'private' if plan.private else 'public'}) if needed"))
        api.create_repo(plan.repo_id, private=plan.private, exist_ok=True, repo_type="model")

        emit(UploadStage("hashing", f"Hashing {len(plan.files)} files"))
        operations = []
        for i, f in enumerate(plan.files, start=1):
            if cancel.is_set():
                raise CancelledByUser("Upload cancelled; nothing was published.")
            operations.append(CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=str(plan.folder / f.path)))

        emit(UploadStage("comparing", "Comparing with the files already on the server"))
        remote = self._remote_files(api, plan.repo_id)
        to_send = [op for op in operations if not self._same(plan.folder, op, remote.get(op.path_in_repo))]
        skipped = len(operations) - len(to_send)
        sizes = {f.path: f.size for f in plan.files}
        send_bytes = sum(sizes[op.path_in_repo] for op in to_send)
        sink = _ProgressSink(emit, len(to_send), send_bytes, cancel)
        commit: str | None = None
        sent_bytes = 0
        if to_send:
            emit(UploadStage("sending", f"Sending {len(to_send)} files ({human_bytes(send_bytes)}); {skipped} already there"))
            sink.report()
            with _progress_hook(sink):
                # LFS bytes first, as their own step, so a cancel between upload and commit publishes nothing
                api.preupload_lfs_files(plan.repo_id, additions=to_send, repo_type="model")
                if cancel.is_set():
                    raise CancelledByUser("Upload cancelled; nothing was published.", hint="Run it again to resume.")
                emit(UploadStage("committing", f"Committing {len(to_send)} files to {plan.repo_id}"))
                info = api.create_commit(
                    plan.repo_id,
                    operations=to_send,
                    commit_message=f"Upload {plan.folder.name} with mlxtui",
                    repo_type="model",
                )
            commit = getattr(info, "oid", None)
            # regular (non-LFS) files travel inside the commit itself; LFS files the server already had
            # (blobs from an interrupted run) were never read, so `streamed` is what really went out
            regular = sum(sizes[op.path_in_repo] for op in to_send if getattr(op, "_upload_mode", None) == "regular")
            sent_bytes = sink.bytes_done + regular
            sink.files_done, sink.bytes_done = len(to_send), send_bytes
            sink.report()
        else:
            emit(UploadStage("sending", f"Nothing to send: all {skipped} files are already there"))

        emit(UploadStage("verifying", "Verifying the remote files against the local folder"))
        verified = self.verify_blocking(api, plan, operations)
        emit(UploadFinished(plan.repo_id, plan.url, commit, len(to_send), skipped, sent_bytes, verified))

    @staticmethod
    def _remote_files(api: Any, repo_id: str) -> dict[str, Any]:
        from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError
        from huggingface_hub.hf_api import RepoFile

        try:
            return {
                item.path: item
                for item in api.list_repo_tree(repo_id, recursive=True, repo_type="model")
                if isinstance(item, RepoFile)
            }
        except (EntryNotFoundError, RevisionNotFoundError):
            return {}  # an empty repo has no tree yet

    @staticmethod
    def _same(folder: Path, op: Any, remote: Any) -> bool:
        """Is this local file already on the server, byte for byte (by sha256 for LFS, git blob id otherwise)?"""
        if remote is None or remote.size != op.upload_info.size:
            return False
        if remote.lfs is not None:
            return remote.lfs.sha256 == op.upload_info.sha256.hex()
        return remote.blob_id == _git_blob_sha1(folder / op.path_in_repo)

    def verify_blocking(self, api: Any, plan: UploadPlan, operations: list[Any] | None = None) -> int:
        """Every local file is in the remote tree with the same size and hash; returns how many were checked."""
        remote = self._remote_files(api, plan.repo_id)
        problems: list[str] = []
        hashes = {op.path_in_repo: op for op in operations or []}
        for f in plan.files:
            entry = remote.get(f.path)
            if entry is None:
                problems.append(f"{f.path} is missing")
            elif entry.size != f.size:
                problems.append(f"{f.path} has {entry.size} bytes, not {f.size}")
            elif entry.lfs is not None:
                op = hashes.get(f.path)
                local = op.upload_info.sha256.hex() if op is not None else _sha256(plan.folder / f.path)
                if entry.lfs.sha256 != local:
                    problems.append(f"{f.path} differs (sha256)")
            elif entry.blob_id != _git_blob_sha1(plan.folder / f.path):
                problems.append(f"{f.path} differs (git blob id)")
        if problems:
            raise UploadError(
                f"Verification of {plan.repo_id} failed: " + "; ".join(problems[:5]) + ("…" if len(problems) > 5 else ""),
                hint="Run the upload again to send the files that differ.",
            )
        return len(plan.files)

    async def verify(self, plan: UploadPlan) -> int:
        """Compare the remote repo with the local folder now (without uploading)."""
        try:
            return await asyncio.to_thread(self.verify_blocking, self._api(), plan)
        except MlxtuiError:
            raise
        except Exception as error:
            raise map_hub_error(error, plan.repo_id, plan.endpoint) from error


def _identity(info: dict[str, Any]) -> Identity:
    user = str(info.get("name") or "")
    auth = (info.get("auth") or {}).get("accessToken") or {}
    role = str(auth.get("role") or "write")
    orgs = tuple(str(o.get("name")) for o in info.get("orgs") or [] if o.get("name"))
    if role == "read":
        writable: tuple[str, ...] = ()
    elif role == "fineGrained":
        # fine-grained scopes are checked by the server itself; offer every namespace the user belongs to
        writable = (user, *orgs)
    else:
        writable = (user, *(str(o["name"]) for o in info.get("orgs") or [] if o.get("roleInOrg", "write") in _WRITE_ROLES))
    return Identity(user=user, orgs=orgs, writable=writable, role=role)

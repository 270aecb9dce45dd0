"""Checks made before a model is loaded for chat: is it an MLX folder, is it whole, does it fit, what is it called."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxtui.format import human_bytes, printable
from mlxtui.services.bounded import BadFileError, read_safetensors_header
from mlxtui.services.errors import (
    CancelledByUser,
    ChatError,
    InvalidInputError,
    MlxtuiError,
    NotFoundError,
    UnsupportedModelError,
)
from mlxtui.services.events import LoadProgress, Notice
from mlxtui.services.hubclient import Result, in_daemon_thread, map_error, resolve_token
from mlxtui.services.modelfolder import ALLOW_PATTERNS, CONFIG_FILE, read_config, validate_repo_id

if TYPE_CHECKING:
    from mlxtui.services import Context

__all__ = [
    "available_memory_bytes",
    "check_model_folder",
    "check_memory",
    "check_supported",
    "download_model",
    "estimate_load_bytes",
    "model_name",
]


def _safetensors_problem(path: Path) -> str | None:
    """Read a safetensors header (bounded, type-checked) and check its offsets against the file size."""
    try:
        tensors, _ = read_safetensors_header(path)
        size = path.stat().st_size
        with path.open("rb") as handle:
            header_len = int.from_bytes(handle.read(8), "little")
    except BadFileError as error:
        return str(error).rstrip(".")
    except OSError as error:
        return f"it could not be read ({error.strerror or error})"
    end = max((info["data_offsets"][1] for info in tensors.values() if info.get("data_offsets")), default=0)
    if 8 + header_len + end != size:
        return f"it holds {size:,} bytes but its header describes {8 + header_len + end:,} (truncated or damaged)"
    return None


def check_model_folder(folder: Path) -> dict[str, Any]:
    """Check that `folder` is a model mlx-lm can load; return its config. Raises with a clear message."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFoundError(f"There is no folder at {printable(folder, newlines=False)}.")
    if not (folder / CONFIG_FILE).is_file():
        raise InvalidInputError(
            f"{printable(folder, newlines=False)} is not an MLX model folder: it has no config.json.",
            hint="Pick the folder a conversion wrote (it holds config.json and *.safetensors).",
        )
    config = read_config(folder)  # bounded; BadFileError names the problem
    if not isinstance(config.get("model_type"), str):
        raise InvalidInputError(f"{folder / CONFIG_FILE} has no model_type, so mlx-lm cannot tell which architecture to build.")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        others = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".gguf", ".pth")]
        hint = f" It has {', '.join(printable(o, newlines=False) for o in others[:3])}: convert it to MLX first." if others else ""
        raise InvalidInputError(f"{folder} is not an MLX model folder: it has no *.safetensors weights.{hint}")
    for path in weights:
        problem = _safetensors_problem(path)
        if problem:
            raise InvalidInputError(
                f"{printable(path.name, newlines=False)} in {folder} is damaged: {problem}.",
                hint="Download or convert the model again.",
            )
    return config


def check_supported(config: dict[str, Any]) -> None:
    """UnsupportedModelError when the installed mlx-lm has no architecture for config's model_type."""
    from mlx_lm.utils import _get_classes

    try:
        _get_classes(config)
    except (ValueError, ImportError):
        raise UnsupportedModelError(
            f"The installed mlx-lm does not support model_type {printable(config.get('model_type'), newlines=False)!r}.",
            hint="Upgrade mlx-lm (pip install -U mlx-lm) or pick another model.",
        ) from None


def estimate_load_bytes(folder: Path) -> int:
    """Memory a load needs: the weights as stored plus a tenth for activations and the KV cache."""
    weights = sum(p.stat().st_size for p in Path(folder).glob("*.safetensors"))
    return int(weights * 1.1) + 64 * 2**20


def available_memory_bytes() -> int | None:
    """Memory this machine can give a new model now (MemAvailable on Linux, physical memory elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(folder: Path, available: int | None) -> None:
    """ChatError when loading `folder` needs more memory than `available` (None: what the machine reports)."""
    need = estimate_load_bytes(folder)
    have = available if available is not None else available_memory_bytes()
    if have is not None and need > have:
        raise ChatError(
            f"{folder.name} needs about {human_bytes(need)} of memory to load and about {human_bytes(have)} is available.",
            hint="Pick a smaller or more quantized conversion (e.g. 4-bit), or close other programs.",
        )


def model_name(source: str, folder: Path) -> str:
    """What to call a model: its repo id (also for a folder in the Hugging Face cache), else the folder's name.

    Never a snapshot's commit hash: `…/models--org--name/snapshots/<hash>` is `org/name`.
    """
    parts = Path(folder).resolve().parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        return parts[-3][len("models--"):].replace("--", "/")
    if not Path(source).expanduser().exists() and source.strip():
        return source.strip().strip("/")
    return printable(Path(folder).resolve().name or str(folder), newlines=False)


# --- downloading a repo id ----------------------------------------------------------------------------


def _progress_class(repo_id: str, emit: Callable[[Any], None], stop: threading.Event) -> type:
    """A tqdm for snapshot_download that draws nothing, reports the bytes received as LoadProgress, and
    raises CancelledByUser at its next update once `stop` is set (Esc, or the app quitting)."""
    from tqdm.auto import tqdm

    last = [0.0]

    class DownloadProgress(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # huggingface_hub 2.x sums every file's bytes into the bar named "Reconstructing …"
            self.counts_bytes = kwargs.get("unit") == "B" and str(kwargs.get("desc", "")).startswith("Reconstruct")
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            if stop.is_set():
                raise CancelledByUser(f"The download of {repo_id} was cancelled; what arrived is kept for next time.")
            self.n += n or 0
            now = time.monotonic()
            if self.counts_bytes and self.total and (now - last[0] > 0.1 or self.n >= self.total):
                last[0] = now
                done = min(1.0, self.n / self.total)
                emit(LoadProgress(f"Downloading {repo_id}: {human_bytes(self.n)} of {human_bytes(self.total)}", 0.05 + 0.3 * done))
            return None

    return DownloadProgress


async def download_model(ctx: Context, repo_id: str) -> AsyncIterator[LoadProgress | Notice | Path]:
    """Download `repo_id` (mlx-lm's file patterns) from ctx.endpoint into the HF cache; yield progress, then
    the snapshot folder. Closing the iterator (Esc, quit) stops the download at its next chunk; it runs on a
    daemon thread, so quitting never waits for the network."""
    validate_repo_id(repo_id, namespaced=True)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def post(event: Any) -> None:  # on a download thread
        try:
            loop.call_soon_threadsafe(queue.put_nowait, event)
        except RuntimeError:
            pass  # the loop has closed: nobody is listening

    def fetch() -> Path:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                repo_id,
                endpoint=ctx.endpoint,
                token=resolve_token(ctx),
                allow_patterns=list(ALLOW_PATTERNS),
                tqdm_class=_progress_class(repo_id, post, stop),
            )
        )

    async def bridge() -> None:
        try:
            async for event in in_daemon_thread(fetch):
                queue.put_nowait(event)
        except BaseException as error:  # handed to the reading side below
            queue.put_nowait(error)

    task = asyncio.ensure_future(bridge())
    try:
        while True:
            event = await queue.get()
            if isinstance(event, Result):
                yield event.value
                return
            if isinstance(event, MlxtuiError):
                raise event
            if isinstance(event, BaseException):
                raise map_error(event, repo_id, ctx.endpoint) from None
            yield event
    finally:
        stop.set()
        task.cancel()

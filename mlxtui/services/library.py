"""The local library: model folders under the models directory and the models in the Hugging Face cache.

Each entry says how big it is, how it is quantized and where it came from (the provenance file mlxtui writes,
else the card's base_model, else the repo id), so the UI can open it in Chat or Card, or delete it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxtui.services import Context
from mlxtui.services.errors import InvalidInputError, NotFoundError

__all__ = ["LocalModel", "LibraryService", "quantization_label", "hub_cache_dir"]

PROVENANCE_FILE = "mlxtui-provenance.json"
_DTYPE_LABELS = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}


@dataclass(frozen=True)
class LocalModel:
    """One model on this machine."""

    name: str  # folder name, or repo id for the cache
    path: str  # the folder to load (for the cache: the snapshot of the newest revision)
    kind: str  # "folder" (under the models directory) or "cache" (Hugging Face cache)
    size_bytes: int
    quantization: str  # "4bit", "mixed_3_6", "mxfp4", "bf16", "?"
    source: str | None  # where it came from
    model_type: str | None
    is_mlx: bool
    modified: float
    repo_id: str | None = None  # cache entries
    revisions: tuple[str, ...] = ()  # cache entries: every cached commit
    has_weights: bool = True  # False: only small files are cached (Inspect read them), nothing to load


def hub_cache_dir() -> Path:
    """The huggingface_hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(home) / "hub"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def quantization_label(config: dict[str, Any] | None, provenance: dict[str, Any] | None = None) -> str:
    """How a model is stored, in the words the default folder names use."""
    options = (provenance or {}).get("options") or {}
    if options.get("quantize"):
        if options.get("quant_predicate"):
            return str(options["quant_predicate"])
        if options.get("q_mode") not in (None, "affine"):
            return str(options["q_mode"])
    if not config:
        return "?"
    quant = config.get("quantization")
    if isinstance(quant, dict):
        mode = quant.get("mode", "affine")
        if mode and mode != "affine":
            return str(mode)
        bits = {quant.get("bits")} | {
            v.get("bits") for v in quant.values() if isinstance(v, dict) and v.get("bits") is not None
        }
        bits.discard(None)
        if len(bits) > 1:
            return "mixed " + "/".join(str(b) for b in sorted(bits))
        return f"{quant.get('bits')}bit"
    dtype = config.get("torch_dtype") or (config.get("text_config") or {}).get("dtype") or config.get("dtype")
    return _DTYPE_LABELS.get(str(dtype), str(dtype) if dtype else "?")


def _card_base_model(folder: Path) -> str | None:
    try:
        text = (folder / "README.md").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("---"):
        return None
    front = text.split("---", 2)[1] if text.count("---") >= 2 else ""
    for line in front.splitlines():
        if line.startswith("base_model:"):
            value = line.split(":", 1)[1].strip().strip("'\"")
            return value or None
    return None


def _folder_size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _is_mlx(config: dict[str, Any] | None, folder: Path) -> bool:
    if (folder / PROVENANCE_FILE).exists():
        return True
    if isinstance((config or {}).get("quantization"), dict):
        return True
    # mlx-lm's create_model_card sets library_name: mlx
    try:
        head = (folder / "README.md").read_text(encoding="utf-8")[:4000]
    except (OSError, UnicodeDecodeError):
        return False
    return head.startswith("---") and "\nlibrary_name: mlx" in head.split("---", 2)[1] if head.count("---") >= 2 else False


class LibraryService:
    """Lists and deletes local models. Blocking file work runs in a thread."""

    def __init__(self, ctx: Context, *, models_dir: Path | None = None, cache_dir: Path | None = None) -> None:
        self.ctx = ctx
        self._models_dir = models_dir
        self._cache_dir = cache_dir

    @property
    def models_dir(self) -> Path:
        return self._models_dir or self.ctx.settings.models_dir()

    @property
    def cache_dir(self) -> Path:
        return self._cache_dir or hub_cache_dir()

    async def list(self) -> list[LocalModel]:
        """Converted folders first (newest first), then the cache (by repo id)."""
        return await asyncio.to_thread(self.list_sync)

    def list_sync(self) -> list[LocalModel]:
        return self._folders() + self._cache()

    def _folders(self) -> list[LocalModel]:
        root = self.models_dir
        if not root.is_dir():
            return []
        out = []
        for folder in root.iterdir():
            if folder.name.startswith(".") or not folder.is_dir():
                continue  # hidden: partial outputs of running conversions
            config = _read_json(folder / "config.json")
            if config is None:
                continue
            provenance = _read_json(folder / PROVENANCE_FILE)
            out.append(
                LocalModel(
                    name=folder.name,
                    path=str(folder),
                    kind="folder",
                    size_bytes=_folder_size(folder),
                    quantization=quantization_label(config, provenance),
                    source=(provenance or {}).get("source") or _card_base_model(folder),
                    model_type=config.get("model_type"),
                    is_mlx=_is_mlx(config, folder),
                    modified=folder.stat().st_mtime,
                )
            )
        out.sort(key=lambda m: m.modified, reverse=True)
        return out

    def _cache(self) -> list[LocalModel]:
        if not self.cache_dir.is_dir():
            return []
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound

        try:
            info = scan_cache_dir(self.cache_dir)
        except (CacheNotFound, OSError):
            return []
        out = []
        for repo in info.repos:
            if repo.repo_type != "model" or not repo.revisions:
                continue
            newest = max(repo.revisions, key=lambda r: r.last_modified)
            for revision in repo.revisions:
                if "main" in revision.refs:
                    newest = revision
            snapshot = Path(newest.snapshot_path)
            config = _read_json(snapshot / "config.json")
            out.append(
                LocalModel(
                    name=repo.repo_id,
                    path=str(snapshot),
                    kind="cache",
                    size_bytes=int(repo.size_on_disk),
                    quantization=quantization_label(config),
                    source=repo.repo_id,
                    model_type=(config or {}).get("model_type"),
                    is_mlx=_is_mlx(config, snapshot),
                    modified=float(repo.last_modified),
                    repo_id=repo.repo_id,
                    revisions=tuple(r.commit_hash for r in repo.revisions),
                    has_weights=any(snapshot.glob("*.safetensors")),
                )
            )
        out.sort(key=lambda m: m.name.lower())
        return out

    async def delete(self, model: LocalModel) -> None:
        """Delete a converted folder, or every cached revision of a repo. The UI asks first."""
        await asyncio.to_thread(self.delete_sync, model)

    def delete_sync(self, model: LocalModel) -> None:
        if model.kind == "folder":
            folder = Path(model.path).resolve()
            root = self.models_dir.resolve()
            if folder.parent != root:
                raise InvalidInputError(f"{folder} is not a folder of the library ({root}); it was not deleted.")
            if not folder.is_dir():
                raise NotFoundError(f"{folder} is already gone.")
            shutil.rmtree(folder)
            return
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(self.cache_dir)
        hashes = [r.commit_hash for repo in info.repos if repo.repo_id == model.repo_id for r in repo.revisions]
        if not hashes:
            raise NotFoundError(f"{model.name} is no longer in the Hugging Face cache.")
        info.delete_revisions(*hashes).execute()

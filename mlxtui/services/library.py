"""The local library: model folders under the models directory and the models in the Hugging Face cache.

Each entry says how big it is, how it is quantized and where it came from (the provenance file mlxtui writes,
else the card's base_model, else the repo id), so the UI can open it in Chat or Card, or delete it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxtui.services import Context
from mlxtui.services.card_frontmatter import card_data, first_base_model
from mlxtui.services.errors import InvalidInputError, MlxtuiError, NotFoundError
from mlxtui.services.modelfolder import CARD_FILE, PROVENANCE_FILE, config_str, quant_label, read_config, read_provenance, read_text

__all__ = ["LocalModel", "LibraryService", "hub_cache_dir"]

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
    in_models_dir: bool = True  # folders: False for a job's output written elsewhere (--mlx-path)


def hub_cache_dir() -> Path:
    """The huggingface_hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(home) / "hub"


def _config(folder: Path) -> dict[str, Any] | None:
    """config.json of a folder, or None when absent or malformed (one bad folder never hides the others)."""
    try:
        return read_config(folder)
    except MlxtuiError:
        return None


def _card(folder: Path) -> dict[str, Any]:
    """The card's metadata, read as every pane reads it (huggingface_hub's ModelCard, bounded)."""
    try:
        return card_data(read_text(folder / CARD_FILE))
    except (OSError, MlxtuiError):
        return {}


def _folder_size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _is_mlx(config: dict[str, Any] | None, folder: Path, card: dict[str, Any]) -> bool:
    if (folder / PROVENANCE_FILE).exists() or isinstance((config or {}).get("quantization"), dict):
        return True
    return card.get("library_name") == "mlx"  # mlx-lm's create_model_card sets library_name: mlx


def _source(provenance: dict[str, Any] | None, card: dict[str, Any]) -> str | None:
    """Where a folder came from: the provenance file's source, else the card's (first) base_model."""
    source = (provenance or {}).get("source")
    return source if isinstance(source, str) and source else first_base_model(card)


def _folder_entry(folder: Path, *, in_models_dir: bool = True) -> LocalModel | None:
    """One model folder as the library shows it; None when it has no readable config.json."""
    config = _config(folder)
    if config is None:
        return None
    provenance = read_provenance(folder)  # type-checked; None when malformed
    card = _card(folder)
    try:
        modified = folder.stat().st_mtime
    except OSError:
        return None
    return LocalModel(
        name=folder.name,
        path=str(folder),
        kind="folder",
        size_bytes=_folder_size(folder),
        quantization=quant_label(config, (provenance or {}).get("options")),
        source=_source(provenance, card),
        model_type=config_str(config, "model_type"),
        is_mlx=_is_mlx(config, folder, card),
        modified=modified,
        in_models_dir=in_models_dir,
    )


class LibraryService:
    """Lists and deletes local models. Blocking file work runs in a thread."""

    def __init__(
        self, ctx: Context, *, models_dir: Path | None = None, cache_dir: Path | None = None, jobs_dir: Path | None = None
    ) -> None:
        self.ctx = ctx
        self._models_dir = models_dir
        self._cache_dir = cache_dir
        self._jobs_dir = jobs_dir

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
        return self.folders() + self._cache()

    def folders(self) -> list[LocalModel]:
        """The models directory's folders plus every folder a conversion job wrote elsewhere, newest first."""
        root = self.models_dir
        out = []
        seen: set[Path] = set()
        if root.is_dir():
            for folder in root.iterdir():
                if folder.name.startswith(".") or not folder.is_dir():
                    continue  # hidden: partial outputs of running conversions
                seen.add(folder.resolve())
                entry = _folder_entry(folder)
                if entry is not None:
                    out.append(entry)
        for folder in self._job_outputs():
            if folder.resolve() not in seen:
                seen.add(folder.resolve())
                entry = _folder_entry(folder, in_models_dir=False)
                if entry is not None:
                    out.append(entry)
        out.sort(key=lambda m: m.modified, reverse=True)
        return out

    def _job_outputs(self) -> list[Path]:
        """Outputs of finished conversions (the job store), wherever they were written (`--mlx-path`)."""
        from mlxtui.services.jobs import list_jobs

        try:
            jobs = list_jobs(self._jobs_dir)
        except OSError:
            return []
        return [Path(v.output) for job in jobs for v in job.variants
                if v.state == "done" and isinstance(v.output, str) and Path(v.output).is_dir()]

    def newest_conversion(self) -> LocalModel | None:
        """The most recent converted MLX folder (the models directory or a job's output), for a pane reached
        with nothing open (Card, Upload)."""
        return next((m for m in self.folders() if m.is_mlx), None)

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
            config = _config(snapshot)
            out.append(
                LocalModel(
                    name=repo.repo_id,
                    path=str(snapshot),
                    kind="cache",
                    size_bytes=int(repo.size_on_disk),
                    quantization=quant_label(config),
                    source=repo.repo_id,
                    model_type=config_str(config, "model_type"),
                    is_mlx=_is_mlx(config, snapshot, _card(snapshot)),
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

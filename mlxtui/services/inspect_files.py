"""The small files Inspect reads about a model (never weights), from a local folder or from Hub downloads.

`ModelFiles` is what the Hub service and the local-folder reader hand to the report; every file is read through
the bounded readers of the model-folder layer, and a file that is malformed becomes a line in `file_notes`
instead of a traceback, so the report still shows what could be read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlxtui.services.bounded import MAX_JSON_BYTES, BadFileError, read_json_object
from mlxtui.services.card_frontmatter import parse_front_matter
from mlxtui.services.errors import InvalidInputError, NotFoundError
from mlxtui.services.modelfolder import read_text, safetensors_totals

__all__ = ["ModelFiles", "MAX_LISTED_FILES", "read_local_folder", "looks_like_path", "fill_from_paths",
           "safe_file_names", "apply_card"]

#: files listed for one model; a folder with more is not a model folder (or is the user's home)
MAX_LISTED_FILES = 5000


@dataclass
class ModelFiles:
    """The small files and facts gathered about a model: what `build_report` needs, nothing downloaded big."""

    source: str
    revision: str | None = None
    sha: str | None = None
    local: bool = False
    config_text: str | None = None
    tokenizer_config: dict[str, Any] | None = None
    chat_template_file: str | None = None
    generation_config: dict[str, Any] | None = None
    card_data: dict[str, Any] = field(default_factory=dict)
    #: file name -> size in bytes (None when unknown)
    files: dict[str, int | None] = field(default_factory=dict)
    safetensors_total: int | None = None
    safetensors_dtypes: dict[str, int] = field(default_factory=dict)
    index: dict[str, Any] | None = None
    gated: bool | str = False
    private: bool = False
    license: str | None = None
    tags: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    library_name: str | None = None
    last_modified: str | None = None
    downloads: int | None = None
    likes: int | None = None
    from_cache: bool = False
    conversions: list[dict[str, Any]] = field(default_factory=list)
    #: set when the repo is gated and this account has no access yet (only model_info could be read)
    gated_message: str | None = None
    #: small files that could not be used, one line each ("tokenizer_config.json is not valid JSON ...")
    file_notes: list[str] = field(default_factory=list)
    #: why config.json could not be read at all (gated, unreadable), when that is the reason it is missing
    config_error: str | None = None


def safe_file_names(names: Any) -> tuple[list[str], list[str]]:
    """(usable names, refused names): a name that is absolute, climbs out with '..', or holds control
    characters or backslashes is never used as a path."""
    good, bad = [], []
    for name in names:
        if not isinstance(name, str) or not name:
            continue
        parts = PurePosixPath(name).parts
        if (name.startswith("/") or ".." in parts or "\\" in name
                or any(ord(c) < 32 or ord(c) == 127 for c in name)):
            bad.append(name)
        else:
            good.append(name)
    return good, bad


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def apply_card(files: ModelFiles, readme: str) -> None:
    """Fill license, library_name, pipeline_tag and tags from a README's front matter (when the Hub did not)."""
    parsed = parse_front_matter(readme)
    if parsed.meta is None:
        files.file_notes.append(f"README.md: {parsed.error}")
        return
    if not files.card_data:
        files.card_data = parsed.meta
    meta = files.card_data
    files.license = files.license or _str_or_none(meta.get("license"))
    files.library_name = files.library_name or _str_or_none(meta.get("library_name"))
    files.pipeline_tag = files.pipeline_tag or _str_or_none(meta.get("pipeline_tag"))


def _json_object(path: Path, name: str, notes: list[str]) -> dict[str, Any] | None:
    try:
        return read_json_object(path, name=name)
    except BadFileError as error:
        notes.append(str(error))
    except OSError as error:
        notes.append(f"{name} could not be read: {error.strerror or error}.")
    return None


def _text(path: Path, name: str, notes: list[str], max_bytes: int = MAX_JSON_BYTES) -> str | None:
    try:
        return read_text(path, max_bytes=max_bytes)
    except BadFileError as error:
        notes.append(str(error))
    except OSError as error:
        notes.append(f"{name} could not be read: {error.strerror or error}.")
    return None


def fill_from_paths(files: ModelFiles, paths: dict[str, str | None]) -> None:
    """Fill ModelFiles from downloaded small files (name -> local path; missing ones stay None)."""
    notes = files.file_notes

    def path(name: str) -> Path | None:
        value = paths.get(name)
        return Path(value) if value else None

    if (p := path("config.json")) is not None:
        files.config_text = _text(p, "config.json", notes)
    if (p := path("tokenizer_config.json")) is not None:
        files.tokenizer_config = _json_object(p, "tokenizer_config.json", notes)
    if (p := path("chat_template.jinja")) is not None:
        files.chat_template_file = _text(p, "chat_template.jinja", notes)
    if (p := path("generation_config.json")) is not None:
        files.generation_config = _json_object(p, "generation_config.json", notes)
    if (p := path("model.safetensors.index.json")) is not None:
        files.index = _json_object(p, "model.safetensors.index.json", notes)
    if (p := path("README.md")) is not None:
        readme = _text(p, "README.md", notes)
        if readme is not None:
            apply_card(files, readme)
    if files.from_cache:
        files.files = {name: None for name in paths}


def read_local_folder(path: Path) -> ModelFiles:
    """Gather the small files of a local model folder. NotFoundError when the path does not exist."""
    path = Path(path).expanduser()
    if not path.exists():
        raise NotFoundError(f"{path} does not exist.", hint="Check the path, or give a Hub repo id like org/name.")
    if not path.is_dir():
        raise InvalidInputError(f"{path} is a file; give the folder that holds config.json.")
    files = ModelFiles(source=str(path), local=True)
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != ".cache")
        for name in sorted(names):
            child = Path(root) / name
            try:
                files.files[str(child.relative_to(path))] = child.stat().st_size
            except OSError:
                continue
            if len(files.files) >= MAX_LISTED_FILES:
                files.file_notes.append(f"{path} holds more than {MAX_LISTED_FILES:,} files; only those are listed.")
                break
        else:
            continue
        break
    local = {name: str(path / name) for name in ("config.json", "tokenizer_config.json", "chat_template.jinja",
                                                  "generation_config.json", "model.safetensors.index.json", "README.md")
             if (path / name).is_file()}
    fill_from_paths(files, local)
    if files.index is None:
        try:
            totals = safetensors_totals(path)
        except BadFileError as error:
            files.file_notes.append(str(error))
            totals = None
        if totals:
            files.safetensors_total, files.safetensors_dtypes = totals
    return files


def looks_like_path(source: str) -> bool:
    """A local path rather than a repo id: starts with / . ~, or names something that exists."""
    return source.startswith(("/", ".", "~")) or os.sep + os.sep in source or Path(source).expanduser().exists()

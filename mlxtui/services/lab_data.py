"""The lab's evaluation text from a Hub dataset: `hf://datasets/OWNER/NAME[@REVISION][/PATH]`.

Everything goes through huggingface_hub via the one client layer (`hubclient.make_api`, `map_error`): one
`dataset_info` to learn the commit, the files and their sizes, then one `hf_hub_download` of the chosen file
at that commit. A file larger than the bound is refused from its listed size, before it is fetched, and read
no further than the bound afterwards. With no PATH the repo's one .txt file is taken, else its one .jsonl or
.json file; more than one candidate is an error that names them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxtui.services import Context
from mlxtui.services.bounded import BadFileError, parse_json, read_bytes
from mlxtui.services.errors import InvalidInputError, NotFoundError
from mlxtui.services.modelfolder import is_repo_id

__all__ = ["HF_DATASETS", "HubText", "is_hub_url", "parse_hub_url", "read_hub_text"]

HF_DATASETS = "hf://datasets/"
#: file kinds the lab reads: plain text, or rows with a "text" field
TEXT_SUFFIXES = (".txt",)
ROW_SUFFIXES = (".jsonl", ".json")
_FORM = "hf://datasets/OWNER/NAME[/PATH]"
_REVISION = re.compile(r"[A-Za-z0-9._\-/]{1,200}")


@dataclass(frozen=True)
class HubText:
    """Where a Hub dataset's text is: the repo, an optional revision, an optional file path inside it."""

    repo_id: str
    revision: str | None
    path: str | None


def is_hub_url(data: str | None) -> bool:
    """Whether `--data` names a Hub location (hf://...) rather than a local file."""
    return bool(data) and data.startswith("hf://")


def parse_hub_url(url: str) -> HubText:
    """The parts of an hf://datasets/ URL; InvalidInputError (one sentence, the expected form) when malformed."""
    if not url.startswith(HF_DATASETS):
        kind = url[len("hf://"):].split("/", 1)[0] if url.startswith("hf://") else ""
        what = f"a {kind} repo" if kind in ("models", "spaces", "buckets") else "not a dataset URL"
        raise InvalidInputError(f"{url[:200]!r} is {what}; give a Hub dataset as {_FORM}.")
    rest = url[len(HF_DATASETS):]
    parts = rest.split("/")
    if len(parts) < 2 or any(c in rest for c in "\\?#") or any(ord(c) < 32 for c in rest):
        raise InvalidInputError(f"{url[:200]!r} is not a Hub dataset URL; give {_FORM}.")
    owner, name = parts[0], parts[1]
    revision = None
    if "@" in name:
        name, revision = name.split("@", 1)
        if not _REVISION.fullmatch(revision) or ".." in revision:
            raise InvalidInputError(f"{url[:200]!r} names an invalid revision; give {_FORM} or NAME@BRANCH.")
    repo_id = f"{owner}/{name}"
    if not is_repo_id(repo_id):
        raise InvalidInputError(f"{url[:200]!r}: {repo_id[:200]!r} is not a valid dataset id (owner/name); give {_FORM}.")
    path_parts = parts[2:]
    if path_parts and path_parts[-1] == "":
        path_parts = path_parts[:-1]  # one trailing slash: a folder
    if any(part in ("", ".", "..") for part in path_parts):
        raise InvalidInputError(f"{url[:200]!r} has an empty, '.' or '..' path segment; give {_FORM}.")
    return HubText(repo_id, revision, "/".join(path_parts) or None)


def read_hub_text(ctx: Context, url: str, max_bytes: int) -> tuple[str, str, str]:
    """(name, description, text) of a Hub dataset's file; MlxtuiError with one sentence on any problem."""
    from mlxtui.services.hubclient import make_api, map_error

    where = parse_hub_url(url)
    subject = f"datasets/{where.repo_id}"
    api = make_api(ctx)
    try:
        info = api.dataset_info(where.repo_id, revision=where.revision, files_metadata=True)
    except Exception as error:  # noqa: BLE001 - every Hub failure becomes one sentence
        what = f"revision {where.revision!r}" if where.revision else ""
        raise map_error(error, subject, ctx.endpoint, what=what) from None
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    path = _choose(where, sizes)
    size = sizes.get(path)
    if size is not None and size > max_bytes:
        raise InvalidInputError(f"{subject}/{path} is {size:,} bytes, more than the lab reads "
                                f"({max_bytes:,}); give a smaller file with hf://datasets/{where.repo_id}/PATH.")
    try:
        local = Path(api.hf_hub_download(where.repo_id, path, repo_type="dataset", revision=info.sha))
    except Exception as error:  # noqa: BLE001
        raise map_error(error, subject, ctx.endpoint, what=f"file {path}") from None
    try:
        raw = read_bytes(local, max_bytes=max_bytes)
    except BadFileError:
        raise InvalidInputError(f"{subject}/{path} is larger than the lab reads ({max_bytes:,} bytes); "
                                "give a smaller file.") from None
    text = _parse(raw, path, f"{subject}/{path}")
    name = f"{HF_DATASETS}{where.repo_id}/{path}"
    sha = (info.sha or "?")[:12]
    return name, f"Hub dataset {name} at commit {sha} ({len(text)} characters)", text


def _choose(where: HubText, sizes: dict[str, Any]) -> str:
    """The file to read: the one named, or the one text-like file under the named folder (or the repo)."""
    repo = f"datasets/{where.repo_id}"
    if where.path is not None and where.path in sizes:
        return where.path
    prefix = f"{where.path}/" if where.path else ""
    under = sorted(p for p in sizes if p.startswith(prefix))
    if where.path is not None and not under:
        raise NotFoundError(f"{repo} has no file {where.path}; its files: {_some(sizes)}.")
    for suffixes in (TEXT_SUFFIXES, ROW_SUFFIXES):
        found = [p for p in under if p.lower().endswith(suffixes)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            where_ = f"{where.path}/" if where.path else ""
            raise InvalidInputError(f"{repo}/{where_} has several candidate files ({_some(found)}); name one, "
                                    f"e.g. hf://datasets/{where.repo_id}/{found[0]}.")
    raise InvalidInputError(f"{repo}/{prefix} has no .txt, .jsonl or .json file (the lab reads those); "
                            f"its files: {_some(under or list(sizes))}.")


def _some(paths: Any, limit: int = 6) -> str:
    paths = sorted(paths)
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "") if paths else "none"


def _parse(raw: bytes, path: str, name: str) -> str:
    """The text of a .txt file, or the "text" fields of a .jsonl/.json file's rows joined by newlines."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"{name} is not UTF-8 text ({error.reason} at byte {error.start}).") from None
    lower = path.lower()
    if lower.endswith(".jsonl"):
        texts = []
        for number, line in enumerate(decoded.splitlines(), start=1):
            if line.strip():
                texts.append(_row_text(parse_json(line, f"{name} line {number}"), f"{name} line {number}"))
        return "\n".join(texts)
    if lower.endswith(".json"):
        rows = parse_json(decoded, name, max_bytes=len(raw))
        if isinstance(rows, dict) and isinstance(rows.get("text"), str):
            return rows["text"]
        if not isinstance(rows, list):
            raise InvalidInputError(f"{name} must be a list of {{\"text\": ...}} objects (or one such object).")
        return "\n".join(_row_text(row, f"{name} item {index}") for index, row in enumerate(rows))
    if lower.endswith(TEXT_SUFFIXES):
        return decoded
    raise InvalidInputError(f"{name}: the lab reads .txt, .jsonl or .json files with a \"text\" field, "
                            f"not {Path(path).suffix or 'a file without a suffix'}.")


def _row_text(row: Any, where: str) -> str:
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise InvalidInputError(f"{where} has no string \"text\" field (each row must be {{\"text\": \"...\"}}).")
    return row["text"]

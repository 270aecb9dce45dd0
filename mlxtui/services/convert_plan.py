"""The checks made before a conversion job starts, so nothing is downloaded or written for a job that cannot
finish: the source (a local folder or a Hub repo: config.json and the file list only), the shared support
verdict (the one Inspect shows), the output folders (absolute, free, creatable, writable) and the free disk
space for the download plus the outputs.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlxtui.format import human_bytes
from mlxtui.services import modelfolder
from mlxtui.services.bounded import BadFileError
from mlxtui.services.convert_options import ConvertOptions
from mlxtui.services.errors import ConversionError, InvalidInputError, MlxtuiError, NotFoundError, UnsupportedModelError

__all__ = [
    "ConvertPlan",
    "free_output",
    "disk_free",
    "report_problems",
    "support_problems",
    "inspect_local",
    "inspect_repo",
    "check_outputs",
    "check_disk",
    "check_writable",
    "absolute",
]

#: headroom on top of the estimate before we call the disk big enough
DISK_MARGIN = 1.10


@dataclass(frozen=True)
class ConvertPlan:
    """Everything checked before a job starts: where the model comes from, what it is, where outputs go."""

    source: str  # repo id, or an absolute local folder
    kind: str  # "repo" | "local"
    revision: str | None
    commit: str | None
    config: dict[str, Any]
    files: dict[str, int]  # files the conversion reads -> size in bytes
    download_bytes: int  # bytes not in the cache yet
    source_dtype: str | None
    parameters: int
    variants: tuple[tuple[ConvertOptions, Path], ...]
    needed_bytes: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)


def absolute(path: str | Path) -> Path:
    """`path` made absolute against the directory the user ran mlxtui in (the worker runs elsewhere)."""
    return Path(os.path.abspath(Path(path).expanduser()))


def free_output(path: Path, reserved: Iterable[Path] = ()) -> Path:
    """`path` if nothing is there (and no job is about to write it), else path-2, path-3, ..."""
    taken = {Path(p) for p in reserved}
    if not path.exists() and path not in taken:
        return path
    n = 2
    while True:
        candidate = path.with_name(f"{path.name}-{n}")
        if not candidate.exists() and candidate not in taken:
            return candidate
        n += 1


def _existing(path: Path) -> Path:
    """The nearest part of `path` that exists (itself, or a parent)."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem that will hold `path` (tests replace this)."""
    from mlxtui.services.sizes import free_disk

    free = free_disk(path)
    return free if free is not None else 1 << 62  # unknown: do not refuse for it


def report_problems(report: dict[str, Any] | None) -> list[str]:
    """Why Inspect found a model unsupported, from the report it passed along (empty when fine or unknown)."""
    if not report:
        return []
    for key in ("support_problems", "problems", "unsupported"):
        value = report.get(key)
        if isinstance(value, list) and value:
            return [str(v) for v in value]
        if isinstance(value, str) and value:
            return [value]
    if report.get("supported") is False:
        return [str(report.get("reason") or "Inspect found that the installed mlx-lm cannot convert this model.")]
    return []


def support_problems(config: dict[str, Any], files: list[str], **card: Any) -> list[str]:
    """The shared support verdict (mlxtui.services.support, the one Inspect shows), weights format included."""
    from mlxtui.services import support

    try:
        return list(support.verdict(config, files, **card).problems)
    except (TypeError, ValueError, AttributeError, KeyError) as error:
        # the verdict's notes choked on a value of the wrong type; its problems (validated first) still stand
        try:
            problems = list(support.support_problems(config, files))
        except (TypeError, ValueError, AttributeError, KeyError):
            problems = []
        return problems or [f"config.json holds a value of the wrong type ({type(error).__name__}: {error})"]


def _read_config(folder: Path, where: str) -> dict[str, Any]:
    """config.json through the bounded model-folder reader; a one-line error naming `where`."""
    try:
        config = modelfolder.read_config(folder)
    except NotFoundError:
        raise InvalidInputError(f"{where} has no config.json, so it is not a Hugging Face model folder.") from None
    except BadFileError as error:
        raise BadFileError(f"{where}: {error} It needs fixing before the model can be converted.") from None
    if not isinstance(config.get("model_type"), str):
        raise InvalidInputError(f"The config.json of {where} has no model_type, so mlx-lm can't tell what model it is.")
    return config


def _plan_from(source: str, kind: str, commit: str | None, config: dict[str, Any], files: dict[str, int],
               missing: int, parameters: int | None = None) -> ConvertPlan:
    from mlxtui.services.sizes import dtype_bytes, estimate_parameters

    dtype = modelfolder.source_dtype(config)
    if parameters is None:
        weight_bytes = sum(size for name, size in files.items() if fnmatch.fnmatch(Path(name).name, "model*.safetensors"))
        parameters = weight_bytes // max(1, dtype_bytes(dtype)) or estimate_parameters(config) or 0
    return ConvertPlan(source=source, kind=kind, revision=None, commit=commit, config=config, files=files,
                       download_bytes=missing, source_dtype=dtype, parameters=int(parameters), variants=())


def inspect_local(folder: Path) -> tuple[ConvertPlan, list[str], str | None]:
    """A local model folder: (its plan, every file name in it for the support verdict, no library name)."""
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is a file; choose the model's folder.")
    config = _read_config(folder, str(folder))
    names = sorted(p.name for p in folder.iterdir())
    files = {n: (folder / n).stat().st_size for n in names
             if (folder / n).is_file() and any(fnmatch.fnmatch(n, pat) for pat in modelfolder.ALLOW_PATTERNS)}
    parameters = None
    try:
        totals = modelfolder.safetensors_totals(folder)
        parameters = totals[0] if totals else None
    except BadFileError as error:
        raise BadFileError(f"{folder}: {error} mlx-lm could not load these weights.") from None
    return _plan_from(str(folder), "local", None, config, files, 0, parameters), names, None


def inspect_repo(ctx: Any, repo_id: str, revision: str | None) -> tuple[ConvertPlan, list[str], str | None]:
    """A Hub repo from config.json and its file list only (no weights): (its plan, its file names, the library
    its card names)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    from mlxtui.services.hubclient import make_api, map_error, resolve_token
    from mlxtui.services.inspect_files import safe_file_names
    from mlxtui.services.library import hub_cache_dir

    # a path is named as a path, a repo id as a repo (issue 14: not "no repo '/tmp/…'")
    if repo_id.startswith(("/", ".", "~")) or "\\" in repo_id or repo_id.count("/") > 1:
        raise NotFoundError(f"There is no folder {repo_id}.", hint="Check the path (or give a repo id, owner/name).")
    if "/" in repo_id:
        no_such = f"There is no repo {repo_id!r} on {ctx.endpoint} (and no folder of that name here)."
    else:
        no_such = (f"There is no folder {repo_id!r} here and no repo {repo_id!r} on {ctx.endpoint}. "
                   "Check the spelling (a repo id looks like owner/name).")
    if not modelfolder.is_repo_id(repo_id):
        raise NotFoundError(no_such)  # neither a folder nor a valid repo id: huggingface_hub would only call it bad
    try:
        info = make_api(ctx).model_info(repo_id, revision=revision, files_metadata=True)
        siblings = {s.rfilename: int(s.size or 0) for s in (info.siblings or [])}
        _, outside = safe_file_names(siblings)  # the one rule Inspect uses too
        if outside:  # checked before anything is downloaded
            from mlxtui.format import printable

            raise InvalidInputError(f"{repo_id} lists a file named {printable(repr(outside[0]))}, which is not a safe "
                                    "path (outside the download folder, or control characters); mlxtui does not "
                                    "download this repo.")
        if "config.json" not in siblings:
            raise InvalidInputError(f"{repo_id} has no config.json, so it is not a model mlx-lm can convert.")
        cache = hub_cache_dir()
        check_writable(cache / "download", f"The download into the Hugging Face cache ({cache})")
        config_path = hf_hub_download(repo_id, "config.json", revision=info.sha, endpoint=ctx.endpoint,
                                      token=resolve_token(ctx) or False)
    except MlxtuiError:
        raise
    except Exception as error:  # noqa: BLE001 - mapped to the one Hub error map
        mapped = map_error(error, repo_id, ctx.endpoint, what=f"revision {revision!r}" if revision else "")
        if isinstance(mapped, NotFoundError) and "revision" not in str(mapped):
            from mlxtui.services.hub import with_close_matches

            raise with_close_matches(ctx, NotFoundError(no_such), repo_id) from None
        raise mapped from None
    config = _read_config(Path(config_path).parent, repo_id)
    files = {name: size for name, size in siblings.items()
             if any(fnmatch.fnmatch(name, p) for p in modelfolder.ALLOW_PATTERNS)}
    missing = sum(size for name, size in files.items()
                  if not isinstance(try_to_load_from_cache(repo_id, name, revision=info.sha), str))
    library = getattr(info, "library_name", None)
    plan = _plan_from(repo_id, "repo", info.sha, config, files, missing)
    return plan, sorted(siblings), library if isinstance(library, str) else None


def check_writable(output: Path, what: str = "") -> None:
    """Refuse a folder that cannot be created: under a file, or where we may not write (a read-only disk).
    `what` names it for people (default: the path itself, an output folder)."""
    hint = ("Choose another output folder (Settings: convert.output_dir)." if not what else
            "Point HF_HOME (or HF_HUB_CACHE) at a writable folder." if "cache" in what else
            "Point XDG_DATA_HOME at a writable folder.")
    what = what or str(output)
    parent = _existing(output.parent)
    if not parent.is_dir():
        raise InvalidInputError(f"{what} can't be created: {parent} is a file, not a folder. {hint}")
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=".mlxtui-write-check-"):
            pass
    except OSError as error:
        why = "it is on a read-only disk" if error.errno == errno.EROFS else (error.strerror or str(error)).lower()
        raise InvalidInputError(f"{what} can't be created: {parent} is not writable ({why}). {hint}") from None


def check_outputs(plan: ConvertPlan, variants: list[ConvertOptions], outputs: list[str | Path | None],
                  default: Any, taken: set[Path]) -> ConvertPlan:
    """Give each variant an absolute, free, writable output folder (an explicit one that exists is refused)."""
    chosen: list[tuple[ConvertOptions, Path]] = []
    for options, out in zip(variants, outputs):
        if out is None or str(out).strip() == "":
            path = free_output(absolute(default(plan.source, options, plan.source_dtype)), taken)
        else:
            path = absolute(out)
            if os.path.lexists(path):
                suggestion = free_output(path, taken)
                raise InvalidInputError(
                    f"{path} already exists and is never overwritten. Use {suggestion.name} instead, "
                    "or delete the old folder first."
                )
            if path in taken or path in {p for _, p in chosen}:
                raise InvalidInputError(f"Another conversion is already writing {path}; choose another folder.")
        check_writable(path)
        taken.add(path)
        chosen.append((options, path))
    return replace(plan, variants=tuple(chosen))


def check_disk(plan: ConvertPlan, cache: Path) -> ConvertPlan:
    """Refuse when the outputs (plus the download, on the same disk) would not fit."""
    from mlxtui.services.sizes import estimate_bytes

    if plan.download_bytes:
        check_writable(cache / "download", f"The download into the Hugging Face cache ({cache})")
    download = int(plan.download_bytes * DISK_MARGIN)
    # bytes needed per disk: each output on the disk of its folder, the download on the cache's
    needs: dict[int, list[Any]] = {}

    def add(where: Path, amount: int, what: str) -> None:
        try:
            device = os.stat(_existing(where)).st_dev
        except OSError:
            device = -1
        entry = needs.setdefault(device, [where, 0, what])
        entry[1] += amount

    outputs = 0
    for options, path in plan.variants:
        size = int(estimate_bytes(plan.parameters, options, plan.source_dtype, plan.config) * DISK_MARGIN)
        outputs += size
        add(path.parent, size, "the output folder")
    if download:
        add(cache, download, "the Hugging Face cache")
    for where, need, what in needs.values():
        free = disk_free(where)
        if need > free:
            raise ConversionError(
                f"Not enough disk space on {what} ({where}): about {human_bytes(need)} is needed and "
                f"{human_bytes(free)} is free. Free some space or choose another output folder (Settings: convert.output_dir)."
            )
    return replace(plan, needed_bytes=outputs + download)


def check_support(plan: ConvertPlan, names: list[str], variants: list[ConvertOptions], where: str,
                  library_name: str | None = None) -> None:
    """The shared verdict, raised as one UnsupportedModelError (dequantizing an MLX model is what -d is for)."""
    problems = support_problems(plan.config, names, library_name=library_name)
    if any(o.dequantize for o in variants):
        problems = [p for p in problems if "already an MLX" not in p]
    if problems:
        raise UnsupportedModelError(f"{where} can't be converted: " + "; ".join(problems) + ".")

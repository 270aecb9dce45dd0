"""What a model is before anything is downloaded: the report Inspect shows and `mlxtui inspect` prints.

The parts live in their own modules and are re-exported here for callers that know this one:
`support` (the mlx-lm verdict Convert also obeys), `sizes` (the one size estimator), `template_check` (the
bounded chat-template dry run), `inspect_files` (the small files of a repo or local folder). This module turns
gathered files into an `InspectReport`; `InspectService` gathers them through `HubService` or a local folder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlxtui.services import Context
from mlxtui.services.bounded import BadFileError, parse_json
from mlxtui.services.errors import InvalidInputError, MlxtuiError
from mlxtui.services.events import Notice
from mlxtui.services.inspect_files import ModelFiles, looks_like_path, read_local_folder, safe_file_names
from mlxtui.services.modelfolder import (
    ALLOW_PATTERNS,
    RANDOM_WEIGHTS_NOTE,
    chat_template_of,
    config_architectures,
    config_str,
    has_random_weights,
    source_dtype,
)
from mlxtui.services.sizes import (
    DTYPE_BYTES,
    KV_CONTEXTS,
    QUANTIZATIONS,
    bits_per_weight,
    estimate_bytes,
    estimate_parameters,
    free_disk,
    kv_cache_bytes,
    machine_memory_bytes,
)
from mlxtui.services.support import mlx_lm_module_for, mlx_lm_version, support_notes, support_problems, validate_config
from mlxtui.services.support import verdict as support_verdict
from mlxtui.services.template_check import chat_template_dry_run

__all__ = [
    "QUANTIZATIONS",
    "KV_CONTEXTS",
    "InspectReport",
    "InspectService",
    "ModelFiles",
    "support_problems",
    "support_notes",
    "mlx_lm_module_for",
    "bits_per_weight",
    "estimate_bytes",
    "estimate_parameters",
    "kv_cache_bytes",
    "chat_template_of",
    "chat_template_dry_run",
    "machine_memory_bytes",
    "validate_config",
    "parse_config",
    "build_report",
    "read_local_folder",
    "looks_like_path",
]


def parse_config(text: str | bytes) -> dict[str, Any]:
    """Parse config.json text under the bounded reader's limits; InvalidInputError saying what is wrong."""
    try:
        config = parse_json(text, "config.json")
    except BadFileError as error:
        raise InvalidInputError(str(error)) from None
    if not isinstance(config, dict):
        raise InvalidInputError(f"config.json holds a {type(config).__name__}, not a JSON object.")
    return config


@dataclass
class InspectReport:
    """Everything Inspect shows about one model. `to_dict()` is the `mlxtui inspect --json` document."""

    repo_id: str
    revision: str | None
    sha: str | None
    local: bool
    model_type: str | None
    architectures: list[str]
    supported: bool
    problems: list[str]
    notes: list[str]
    parameters: int | None
    parameters_source: str | None
    dtype: str
    estimates: list[dict[str, Any]]
    kv_cache: dict[str, int | None]
    memory: dict[str, Any]
    disk: dict[str, Any]
    chat_template: dict[str, Any]
    license: str | None
    gated: bool | str
    private: bool
    tags: list[str]
    pipeline_tag: str | None
    library_name: str | None
    base_model: Any
    files: dict[str, int | None]
    generation_config: dict[str, Any] | None
    existing_conversions: list[str]
    conversions: list[dict[str, Any]]
    config: dict[str, Any] | None
    config_text: str | None
    from_cache: bool = False
    mlx_lm_version: str | None = None
    #: why some files could not be read (a gated repo without access): the CLI exits non-zero after the report
    incomplete: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the raw config text is left out; `config` holds the parsed object)."""
        data = asdict(self)
        data.pop("config_text", None)
        return data


def _parameters(files: ModelFiles, config: dict[str, Any] | None) -> tuple[int | None, str | None]:
    if config is not None and isinstance(config.get("quantization"), dict):
        # MLX-quantized weights are packed into uint32, so the stored element count is not the parameter count
        estimated = estimate_parameters(config)
        if estimated:
            return estimated, "estimated from config.json (weights are packed)"
    if isinstance(files.safetensors_total, int) and files.safetensors_total > 0:
        return files.safetensors_total, "safetensors metadata"
    index = files.index if isinstance(files.index, dict) else {}
    meta = index.get("metadata") if isinstance(index.get("metadata"), dict) else {}
    total_parameters = meta.get("total_parameters", index.get("total_parameters"))
    if isinstance(total_parameters, int) and not isinstance(total_parameters, bool) and total_parameters > 0:
        return total_parameters, "safetensors index"
    total_size = meta.get("total_size", index.get("total_size"))
    if isinstance(total_size, int) and not isinstance(total_size, bool) and total_size > 0 and config is not None:
        return total_size // DTYPE_BYTES.get(_dtype_of(config), 2), "safetensors index size"
    if config is not None:
        estimated = estimate_parameters(config)
        if estimated:
            return estimated, "estimated from config.json"
    return None, None


def _dtype_of(config: dict[str, Any] | None) -> str:
    return source_dtype(config) or "bfloat16"


def _download_bytes(files: dict[str, int | None]) -> int | None:
    """Bytes mlx-lm's convert downloads: its allow patterns (json, model*.safetensors, py, tokenizer files...)."""
    import fnmatch

    sizes = [size for name, size in files.items() if any(fnmatch.fnmatch(name, p) for p in ALLOW_PATTERNS)]
    if not sizes or any(not isinstance(s, int) for s in sizes):
        return None
    return int(sum(s for s in sizes if s is not None))


def _chat_facts(files: ModelFiles) -> dict[str, Any]:
    template = chat_template_of(files.tokenizer_config, files.chat_template_file)
    chat: dict[str, Any] = {"present": template is not None, "system_role": None, "renders": None, "error": None,
                            "source": None, "preview": "", "readable": files.config_error is None}
    if template is not None:
        chat["source"] = "chat_template.jinja" if files.chat_template_file else "tokenizer_config.json"
        chat.update(chat_template_dry_run(template, files.tokenizer_config))
    return chat


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def build_report(files: ModelFiles, *, models_dir: Path | None = None, memory_bytes: int | None = None,
                 free_disk_bytes: int | None = None, default_quantization: str = "4bit") -> InspectReport:
    """Turn gathered small files into a report. Pure apart from reading memory/disk when not given."""
    problems: list[str] = []
    config: dict[str, Any] | None = None
    names, refused = safe_file_names(files.files)
    listing = {name: files.files[name] for name in names}
    if files.config_error:
        problems.append(files.config_error.rstrip("."))
    elif files.config_text is None:
        problems.append("there is no config.json, so this is not a Transformers-format model mlx-lm can convert")
    else:
        try:
            config = parse_config(files.config_text)
        except InvalidInputError as error:
            problems.append(str(error).rstrip("."))
    card = files.card_data if isinstance(files.card_data, dict) else {}
    tags = [t for t in (files.tags or card.get("tags") or []) if isinstance(t, str)]
    library_name = _str(files.library_name) or _str(card.get("library_name"))
    notes: list[str] = [RANDOM_WEIGHTS_NOTE] if has_random_weights(tags) else []
    if config is not None:
        # the file list is known for a repo and a folder, not for an offline cache read
        found = support_verdict(config, None if files.from_cache else names, library_name=library_name, tags=tags)
        problems += found.problems
        notes += found.notes
    if files.gated_message and files.gated_message.rstrip(".") not in problems:
        notes.insert(0, files.gated_message)
    notes += files.file_notes
    if refused:
        notes.append(f"the file list names {len(refused)} file(s) with unsafe paths (e.g. {refused[0][:60]!r}); "
                     "they are ignored")
    dtype = _dtype_of(config)
    scale_bits = 8 * DTYPE_BYTES.get(dtype, 2)
    parameters, parameters_source = (_parameters(files, config) if config is not None or files.safetensors_total
                                     else (None, None))
    estimates = []
    if parameters:
        for q in QUANTIZATIONS:
            bpw = bits_per_weight(q, scale_bits=scale_bits, config=config)
            estimates.append({"quantization": q, "bits_per_weight": round(bpw, 3), "bytes": estimate_bytes(
                parameters, q, dtype, config, scale_bits=scale_bits)})
    kv = {str(n): (kv_cache_bytes(config, n, DTYPE_BYTES.get(dtype, 2)) if config else None) for n in KV_CONTEXTS}
    total_memory = memory_bytes if memory_bytes is not None else machine_memory_bytes()
    # Apple silicon lets the GPU wire about 75% of unified memory by default; use that as the budget.
    budget = int(total_memory * 0.75) if total_memory else None
    kv4 = kv.get(str(KV_CONTEXTS[0])) or 0
    fits = {e["quantization"]: (e["bytes"] + kv4 <= budget) if budget else None for e in estimates}
    memory = {"total_bytes": total_memory, "budget_bytes": budget, "fits": fits}
    download = _download_bytes(listing) if not files.local else 0
    if download is None and estimates:
        download = next(e["bytes"] for e in estimates if e["quantization"] == "bf16")
    free = free_disk_bytes if free_disk_bytes is not None else (free_disk(models_dir) if models_dir else None)
    output = next((e["bytes"] for e in estimates if e["quantization"] == default_quantization), None)
    need = (download or 0) + (output or 0) if output is not None else None
    disk = {"free_bytes": free, "download_bytes": download, "output_quantization": default_quantization,
            "output_bytes": output, "needed_bytes": need,
            "fits": (need <= free) if (need is not None and free is not None) else None,
            "models_dir": str(models_dir) if models_dir else None}
    architectures = config_architectures(config)
    model_type = config_str(config, "model_type")
    return InspectReport(
        repo_id=files.source,
        revision=files.revision,
        sha=files.sha,
        local=files.local,
        model_type=model_type,
        architectures=architectures,
        supported=not problems,
        problems=problems,
        notes=notes,
        parameters=parameters,
        parameters_source=parameters_source,
        dtype=dtype,
        estimates=estimates,
        kv_cache=kv,
        memory=memory,
        disk=disk,
        chat_template=_chat_facts(files),
        license=_str(files.license) or _str(card.get("license")),
        gated=files.gated,
        private=files.private,
        tags=tags,
        pipeline_tag=_str(files.pipeline_tag) or _str(card.get("pipeline_tag")),
        library_name=library_name,
        base_model=card.get("base_model"),
        files=listing,
        generation_config=files.generation_config,
        existing_conversions=[c["repo_id"] for c in files.conversions if isinstance(c, dict) and "repo_id" in c],
        conversions=list(files.conversions),
        config=config,
        config_text=files.config_text,
        from_cache=files.from_cache,
        mlx_lm_version=mlx_lm_version(),
        incomplete=files.config_error or files.gated_message,
    )


class InspectService:
    """Builds an InspectReport for a repo id (small files through HubService) or a local folder."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def inspect(self, source: str, revision: str | None = None, *, conversions: bool = True
                      ) -> AsyncIterator[Notice | InspectReport]:
        """Yield Notice events (rate limits, cache fallback) and finally the InspectReport.

        Raises MlxtuiError kinds: NotFoundError, GatedError, OfflineError, InvalidInputError, RateLimitedError.
        """
        import asyncio

        source = source.strip()
        if not source:
            raise InvalidInputError("Give a repo id (org/name) or a local folder to inspect.")
        if looks_like_path(source):
            files = await asyncio.to_thread(read_local_folder, Path(source))
        else:
            from mlxtui.services.hub import HubService

            hub = HubService(self.ctx)
            files = None
            held: list[Notice] = []
            async for event in hub.fetch_model_files(source, revision, conversions=conversions):
                if isinstance(event, ModelFiles):
                    files = event
                elif isinstance(event, Notice) and event.severity == "warning" and "gated" in event.text:
                    held.append(event)  # said by the report, when the report carries it (each message once)
                else:
                    yield event
            for notice in held:
                if files is None or notice.text not in (files.gated_message, files.config_error):
                    yield notice
            if files is None:  # pragma: no cover - fetch_model_files always ends with the files or raises
                raise MlxtuiError(f"Nothing was read for {source}.")
            if files.from_cache:
                yield Notice("The Hub could not be reached: showing the files cached on this machine.", "warning")
        report = await asyncio.to_thread(
            build_report, files, models_dir=self.ctx.settings.models_dir(),
            default_quantization=f"{self.ctx.settings.convert.q_bits}bit",
        )
        yield report

    async def report(self, source: str, revision: str | None = None) -> InspectReport:
        """The report alone (notices dropped): for the CLI and other services."""
        result: InspectReport | None = None
        async for event in self.inspect(source, revision):
            if isinstance(event, InspectReport):
                result = event
        assert result is not None
        return result

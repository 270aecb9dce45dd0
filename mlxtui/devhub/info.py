"""What the Hub derives from a commit's files: card data, trimmed config, safetensors totals, tags, library, task.

Computed once per (repo, commit) and cached: commits are immutable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mlxtui.devhub.store import FileEntry, HubStore
from mlxtui.services.bounded import MAX_YAML_BYTES, BadFileError, load_yaml, read_json_object, read_safetensors_header, tensor_elements

__all__ = ["RepoFacts", "repo_facts", "parse_front_matter", "FrontMatterError"]

#: config.json keys the Hub keeps in model_info's `config`
_CONFIG_KEYS = ("architectures", "model_type", "quantization_config", "quantization", "task_specific_params", "auto_map")
#: tokenizer_config.json keys the Hub copies into config.tokenizer_config
_TOKENIZER_KEYS = ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template", "use_default_system_prompt")


#: card data in model_info, as JSON, at most (a README's text is read only up to MAX_README_READ)
MAX_CARD_JSON = 2_000_000
MAX_README_READ = MAX_YAML_BYTES + 65_536


class FrontMatterError(ValueError):
    """README.md front matter that is not valid YAML, or not a mapping."""


def parse_front_matter(text: str) -> dict[str, Any] | None:
    """The YAML front matter of a model card (None when there is none); raises FrontMatterError when invalid.

    Read through `bounded.load_yaml` (size, alias and expansion caps), as every other reader of cards does.
    """
    import yaml

    if not text.startswith("---"):
        return None
    lines = text.splitlines()
    if lines[0].strip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            body = "\n".join(lines[1:index])
            break
    else:
        raise FrontMatterError("front matter is not closed by a '---' line")
    try:
        data = load_yaml(body, "README.md front matter")
    except BadFileError as error:
        raise FrontMatterError(str(error)) from None
    except yaml.YAMLError as error:
        raise FrontMatterError(f"invalid YAML in front matter: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter must be a YAML mapping")
    # as JSON (dates and other YAML-only types become strings), and no larger than the text allows:
    # aliases may repeat a node, but never turn a few hundred bytes into megabytes of model_info
    encoded = json.dumps(data, default=str, ensure_ascii=False)
    limit = min(MAX_CARD_JSON, 4 * len(body) + 64_000)
    if len(encoded) > limit:
        raise FrontMatterError(f"front matter expands to {len(encoded):,} characters of data "
                               f"from {len(body):,} of text (at most {limit:,})")
    return json.loads(encoded)


@dataclass
class RepoFacts:
    """Everything model_info needs that comes from file contents."""

    card_data: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    safetensors: dict[str, Any] | None = None
    library_name: str | None = None
    pipeline_tag: str | None = None
    tags: list[str] = field(default_factory=list)
    #: total size of the files (usedStorage)
    used_storage: int = 0


def _safetensors_header(store: HubStore, entry: FileEntry) -> dict[str, Any] | None:
    """The checked tensor table of a stored safetensors blob; None when it is not a valid one."""
    try:
        tensors, _ = read_safetensors_header(store.blob_path(entry.sha256))
    except (OSError, BadFileError):
        return None
    return tensors


def _safetensors_totals(store: HubStore, files: dict[str, FileEntry]) -> dict[str, Any] | None:
    """{"parameters": {dtype: count}, "total": n} over every *.safetensors file, as the Hub reports it."""
    parameters: dict[str, int] = {}
    found = False
    for path, entry in sorted(files.items()):
        if not path.endswith(".safetensors"):
            continue
        header = _safetensors_header(store, entry)
        if header is None:
            continue
        found = True
        for dtype, count in tensor_elements(header)[1].items():
            parameters[dtype] = parameters.get(dtype, 0) + count
    if not found:
        return None
    return {"parameters": parameters, "total": sum(parameters.values())}


def _read_json_file(store: HubStore, files: dict[str, FileEntry], path: str) -> dict[str, Any] | None:
    entry = files.get(path)
    if entry is None:
        return None
    try:
        return read_json_object(store.blob_path(entry.sha256), name=path)
    except (OSError, BadFileError):
        return None  # a malformed config.json gives no config, as on the Hub


def _text(value: Any) -> str | None:
    """A card field that must be one string (a list or mapping there is ignored, as the Hub does)."""
    return value if isinstance(value, str) and value else None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def repo_facts(store: HubStore, repo_id: str, sha: str) -> RepoFacts:
    """Derive (and cache) the facts of one commit."""
    key = (repo_id, sha, "facts")
    cached = store.derived_cache.get(key)
    if cached is not None:
        return cached
    files = store.files(repo_id, sha)
    facts = RepoFacts(used_storage=sum(entry.size for entry in files.values()))

    readme = files.get("README.md")
    if readme is not None:
        try:
            with open(store.blob_path(readme.sha256), "rb") as handle:  # front matter sits at the top
                head = handle.read(MAX_README_READ).decode("utf-8", errors="replace")
            facts.card_data = parse_front_matter(head)
        except (FrontMatterError, OSError):
            facts.card_data = None
    card = facts.card_data or {}

    raw_config = _read_json_file(store, files, "config.json")
    if raw_config is not None:
        config = {k: raw_config[k] for k in _CONFIG_KEYS if k in raw_config}
        tokenizer = _read_json_file(store, files, "tokenizer_config.json")
        if tokenizer is not None:
            kept = {k: tokenizer[k] for k in _TOKENIZER_KEYS if k in tokenizer}
            if kept:
                config["tokenizer_config"] = kept
        facts.config = config
    facts.safetensors = _safetensors_totals(store, files)

    architectures = _as_list((facts.config or {}).get("architectures"))
    facts.library_name = _text(card.get("library_name")) or (
        "transformers" if raw_config is not None and architectures else None
    )
    facts.pipeline_tag = _text(card.get("pipeline_tag")) or (
        "text-generation" if any(a.endswith("ForCausalLM") for a in architectures) else None
    )

    tags: list[str] = []
    if facts.library_name:
        tags.append(str(facts.library_name))
    if facts.safetensors is not None:
        tags.append("safetensors")
    if any(path.endswith(".gguf") for path in files):
        tags.append("gguf")
    model_type = (facts.config or {}).get("model_type")
    if isinstance(model_type, str):
        tags.append(model_type)
    if facts.pipeline_tag:
        tags.append(str(facts.pipeline_tag))
    tags.extend(_as_list(card.get("tags")))
    tags.extend(_as_list(card.get("language")))
    tags.extend(f"dataset:{d}" for d in _as_list(card.get("datasets")))
    tags.extend(f"base_model:{b}" for b in _as_list(card.get("base_model")))
    tags.extend(f"license:{lic}" for lic in _as_list(card.get("license")))
    seen: set[str] = set()
    facts.tags = [t for t in tags if not (t in seen or seen.add(t))]
    store.derived_cache[key] = facts
    return facts

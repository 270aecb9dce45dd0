"""A model folder and its small files, read one way for every caller.

config.json, the provenance record Convert writes, the quantization label, the chat template, the tokenizer
config, safetensors headers, mlx-lm's download patterns and the repo-id rule live here and nowhere else, so
Inspect, Convert, Chat, Card, Upload and Library give the same answer for the same folder. Every read is
bounded (`mlxtui.services.bounded`); a malformed file is a `BadFileError` naming it, never a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlxtui.services.bounded import BadFileError, read_bytes, read_json_object, read_safetensors_header, tensor_elements
from mlxtui.services.errors import InvalidInputError, NotFoundError

__all__ = [
    "ALLOW_PATTERNS",
    "CARD_FILE",
    "CONFIG_FILE",
    "PROVENANCE_FILE",
    "DTYPE_LABELS",
    "RECIPES",
    "MAX_TEMPLATE_CHARS",
    "is_repo_id",
    "validate_repo_id",
    "read_config",
    "read_small_json",
    "read_provenance",
    "quant_label",
    "is_quantized",
    "text_config",
    "source_dtype",
    "chat_template_of",
    "read_chat_template",
    "read_tokenizer_config",
    "safetensors_totals",
    "read_text",
    "public_source",
    "RANDOM_WEIGHTS_TAG",
    "RANDOM_WEIGHTS_NOTE",
    "has_random_weights",
]

CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
#: the conversion record Convert writes beside the weights (docs/convert.md)
PROVENANCE_FILE = "mlxtui-provenance.json"
#: mlx_lm.utils.DEFAULT_ALLOW_PATTERNS, kept here so the UI process need not import mlx_lm (~1 s);
#: tests/services/test_modelfolder.py fails the day mlx-lm changes them.
ALLOW_PATTERNS = (
    "*.json",
    "model*.safetensors",
    "*.py",
    "tokenizer.model",
    "*.tiktoken",
    "tiktoken.model",
    "*.txt",
    "*.jsonl",
    "*.jinja",
)
DTYPE_LABELS = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32"}
#: mlx-lm's mixed-precision recipes (mlx_lm.convert --quant-predicate)
RECIPES = ("mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6")
#: a chat template longer than this is not a template
MAX_TEMPLATE_CHARS = 1_000_000
#: a small text file read whole (README.md, chat_template.jinja)
MAX_TEXT_BYTES = 4_000_000

# The Hub's rule: an optional namespace, then a name; letters, digits, '-', '_', '.'; at most 96 each.
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def is_repo_id(text: str, *, namespaced: bool = True) -> bool:
    """Whether `text` is a valid repo id (with an `owner/` part unless namespaced=False)."""
    if not isinstance(text, str) or not _REPO_ID.match(text):
        return False
    if ".." in text or "--" in text or text.endswith((".", "-")):
        return False
    return "/" in text or not namespaced


def validate_repo_id(repo_id: str, *, namespaced: bool = False) -> str:
    """Check a repo id locally, before any request; returns it stripped or raises InvalidInputError."""
    repo_id = (repo_id or "").strip().strip("/")
    if not repo_id:
        raise InvalidInputError("Give a repo id such as h2oai/h2o-danube2-1.8b-chat.")
    if not is_repo_id(repo_id, namespaced=namespaced):
        raise InvalidInputError(
            f"{repo_id!r} is not a valid repo id: use owner/name with letters, digits, '-', '_' and '.' "
            "(or a local folder path starting with / or ./)."
        )
    return repo_id


def read_text(path: Path, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A small text file, bounded; undecodable bytes replaced. OSError passes through."""
    return read_bytes(path, max_bytes=max_bytes).decode("utf-8", errors="replace")


def read_small_json(folder: Path, name: str) -> dict[str, Any] | None:
    """An optional JSON object file of the folder: None when absent, BadFileError when malformed."""
    path = Path(folder) / name
    if not path.is_file():
        return None
    try:
        return read_json_object(path)
    except OSError as error:
        raise BadFileError(f"{name} could not be read: {error.strerror or error}.") from None


def read_config(folder: Path | str) -> dict[str, Any]:
    """config.json of a model folder; NotFoundError when absent, BadFileError when malformed."""
    folder = Path(folder)
    config = read_small_json(folder, CONFIG_FILE)
    if config is None:
        raise NotFoundError(f"{folder} has no config.json.", hint="Give the folder that holds the model's config.json.")
    return config


def read_provenance(folder: Path | str) -> dict[str, Any] | None:
    """The conversion record, type-checked; None when absent or malformed (a bad one never hides the folder)."""
    try:
        data = read_small_json(Path(folder), PROVENANCE_FILE)
    except BadFileError:
        return None
    if data is None:
        return None
    clean: dict[str, Any] = dict(data)
    for key in ("source", "revision", "created_at", "label"):
        if key in clean and not isinstance(clean[key], str):
            clean[key] = None
    options = clean.get("options")
    clean["options"] = options if isinstance(options, dict) else {}
    if not isinstance(clean.get("versions"), dict):
        clean["versions"] = {}
    return clean


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language model's own config (vision-language models nest it under text_config)."""
    inner = config.get("text_config")
    return inner if isinstance(inner, dict) else config


def config_str(config: Any, key: str) -> str | None:
    """A string field of a stranger's config.json; None when missing, empty or of another type."""
    value = config.get(key) if isinstance(config, dict) else None
    return value if isinstance(value, str) and value else None


def config_architectures(config: Any) -> list[str]:
    """config.json's `architectures`, keeping only names (the file may hold anything there)."""
    value = config.get("architectures") if isinstance(config, dict) else None
    return [a for a in value if isinstance(a, str)] if isinstance(value, list) else []


def source_dtype(config: dict[str, Any] | None) -> str | None:
    """The stored float dtype, as mlx-lm reads it (torch_dtype, else text_config.dtype, else dtype)."""
    if not config:
        return None
    inner = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    for value in (config.get("torch_dtype"), inner.get("torch_dtype"), inner.get("dtype"), config.get("dtype")):
        if isinstance(value, str) and value:
            return value
    return None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def is_quantized(config: dict[str, Any] | None, provenance: dict[str, Any] | None = None) -> bool:
    """Quantized per the conversion options, else per config.json's `quantization` block."""
    options = provenance.get("options") if isinstance(provenance, dict) else None
    return (bool(isinstance(options, dict) and options.get("quantize"))
            or (isinstance(config, dict) and isinstance(config.get("quantization"), dict)))


_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


def quant_label(config: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
                *, source_dtype_hint: str | None = None) -> str:
    """How a model is stored, as folder and repo names say it: 4bit, 4bit-g32, mixed_3_6, mxfp4, bf16 ...

    `options` are Convert's options (a provenance file's "options", or ConvertOptions.to_dict()); they win
    over config.json, which is read when there are none. "?" when nothing says.
    """
    label = _raw_quant_label(config, options, source_dtype_hint)
    # it ends up in folder and repo names: anything but a short plain word from a stranger's file is "?"
    return label if _LABEL.fullmatch(label) and ".." not in label else "?"


def _raw_quant_label(config: dict[str, Any] | None, options: dict[str, Any] | None,
                     source_dtype_hint: str | None) -> str:
    options = options if isinstance(options, dict) else {}
    config = config if isinstance(config, dict) else {}
    quant = config.get("quantization")
    quant = quant if isinstance(quant, dict) else None
    if options.get("quantize"):
        recipe = options.get("quant_predicate")
        if isinstance(recipe, str) and recipe:
            return recipe
        mode = options.get("q_mode") or "affine"
        if mode != "affine":
            return str(mode)
        bits = _int_or_none(options.get("q_bits")) or 4
        group = _int_or_none(options.get("q_group_size")) or 64
        return f"{bits}bit" + (f"-g{group}" if group != 64 else "")
    if quant is not None:
        mode = quant.get("mode") or "affine"
        if mode != "affine":
            return str(mode)
        bits = {_int_or_none(quant.get("bits"))} | {
            _int_or_none(v.get("bits")) for v in quant.values() if isinstance(v, dict)
        }
        bits.discard(None)
        if len(bits) > 1:
            low, high = min(bits), max(bits)  # type: ignore[type-var]
            return f"mixed_{low}_{high}"
        if not bits:
            return "?"
        group = _int_or_none(quant.get("group_size")) or 64
        return f"{bits.pop()}bit" + (f"-g{group}" if group != 64 else "")
    dtype = options.get("dtype") or source_dtype(config) or source_dtype_hint
    if not dtype:
        return "?"
    return DTYPE_LABELS.get(str(dtype), str(dtype))


def chat_template_of(tokenizer_config: dict[str, Any] | None, template_file: str | None = None) -> str | None:
    """The template apply_chat_template uses: chat_template.jinja, else tokenizer_config's (the "default"
    of a list of named templates)."""
    if isinstance(template_file, str) and template_file.strip():
        return template_file[:MAX_TEMPLATE_CHARS + 1]
    template = (tokenizer_config or {}).get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template
                 if isinstance(t, dict) and isinstance(t.get("name"), str)}
        template = named.get("default") or next((t for t in named.values() if isinstance(t, str)), None)
    return template if isinstance(template, str) and template else None


def read_tokenizer_config(folder: Path | str) -> dict[str, Any] | None:
    """tokenizer_config.json, or None when absent or malformed."""
    try:
        return read_small_json(Path(folder), "tokenizer_config.json")
    except BadFileError:
        return None


def read_chat_template(folder: Path | str) -> str | None:
    """The folder's chat template (chat_template.jinja, where mlx-lm moves it, or tokenizer_config.json)."""
    folder = Path(folder)
    jinja = folder / "chat_template.jinja"
    text = None
    if jinja.is_file():
        try:
            text = read_text(jinja)
        except (OSError, BadFileError):
            text = None
    return chat_template_of(read_tokenizer_config(folder), text)


def safetensors_totals(folder: Path | str) -> tuple[int, dict[str, int]] | None:
    """Elements in all `*.safetensors` of a folder (total and per dtype) from their headers only.

    None when there are none; BadFileError names the first malformed file.
    """
    paths = sorted(Path(folder).glob("*.safetensors"))
    if not paths:
        return None
    total, by_dtype = 0, {}
    for path in paths:
        try:
            tensors, _ = read_safetensors_header(path)
        except OSError as error:
            raise BadFileError(f"{path.name} could not be read: {error.strerror or error}.") from None
        n, per = tensor_elements(tensors)
        total += n
        for dtype, count in per.items():
            by_dtype[dtype] = by_dtype.get(dtype, 0) + count
    return total, by_dtype


def public_source(source: str | None) -> str | None:
    """How a source may be named in public text (a card, a provenance file that will be uploaded).

    A Hub repo id is named as it is; a local folder by its last name only, never its path (which shows the
    user's home, account name and layout). None for nothing.
    """
    if not isinstance(source, str) or not source.strip():
        return None
    text = source.strip()
    local = text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") > 1
    if is_repo_id(text) and not local:
        return text
    name = Path(text.replace("\\", "/").rstrip("/")).name or "model"
    return f"a local folder named {name}"


#: the tag the demo Hub's generated models carry in their card (and their conversions keep): random weights
RANDOM_WEIGHTS_TAG = "random-weights"
RANDOM_WEIGHTS_NOTE = "A demo model with random weights: it answers in gibberish, by design."


def has_random_weights(tags: Any) -> bool:
    """True for a demo model whose weights are random: its card's tags name RANDOM_WEIGHTS_TAG.
    (A folder's tags: `card_frontmatter.card_data(read_text(folder / CARD_FILE)).get("tags")`.)"""
    if isinstance(tags, str):
        tags = [tags]
    return isinstance(tags, list) and RANDOM_WEIGHTS_TAG in tags

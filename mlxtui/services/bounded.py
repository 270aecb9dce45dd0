"""Bounded reading of files written by strangers: JSON, YAML and safetensors headers.

Every limit (size, nesting depth, integer digits, YAML aliases, expanded size) is checked before the data is
used, and every failure is one `BadFileError` naming the file and what is wrong. Inspect, Convert, Chat, Card,
Library and the devhub all read through here, so they give the same answer for the same file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mlxtui.services.errors import InvalidInputError

__all__ = [
    "BadFileError",
    "MAX_JSON_BYTES",
    "MAX_DEPTH",
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
    "MAX_SAFETENSORS_HEADER",
    "parse_json",
    "read_bytes",
    "read_json",
    "read_json_object",
    "load_yaml",
    "check_tree",
    "parse_safetensors_header",
    "read_safetensors_header",
]

#: config.json, tokenizer_config.json, an index, a provenance file: real ones are far smaller
MAX_JSON_BYTES = 16_000_000
#: nesting deeper than this is not a model file; it is an attack on recursive code
MAX_DEPTH = 64
#: digits in one JSON integer (Python refuses more than 4,300 anyway, with a traceback)
MAX_INT_DIGITS = 40
#: YAML front matter of a model card
MAX_YAML_BYTES = 512_000
#: nodes in the loaded YAML, counting each use of an alias again (stops "billion laughs")
MAX_YAML_NODES = 100_000
MAX_YAML_ALIASES = 100
#: a safetensors header is JSON; 100 MB is the limit the format itself sets
MAX_SAFETENSORS_HEADER = 100_000_000


class BadFileError(InvalidInputError):
    """A file that is malformed, too large or too deep to be what it claims; the message names it."""

    kind = "bad file"
    exit_code = 6


def _int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits)} digits")
    return int(text)


def check_tree(value: Any, name: str, *, max_depth: int = MAX_DEPTH, max_nodes: int | None = None) -> None:
    """Raise BadFileError when `value` nests deeper than `max_depth` or has more than `max_nodes` nodes.

    Iterative, so the check itself cannot overflow the stack; shared sub-trees (YAML aliases) count each time.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if max_nodes is not None and nodes > max_nodes:
            raise BadFileError(f"{name} expands to more than {max_nodes:,} values; it is not a model file.")
        if isinstance(item, dict):
            if depth > max_depth:
                raise BadFileError(f"{name} nests deeper than {max_depth} levels; it is not a model file.")
            stack.extend((v, depth + 1) for v in item.values())
            stack.extend((k, depth + 1) for k in item.keys() if not isinstance(k, (str, int, float, bool)))
        elif isinstance(item, (list, tuple)):
            if depth > max_depth:
                raise BadFileError(f"{name} nests deeper than {max_depth} levels; it is not a model file.")
            stack.extend((v, depth + 1) for v in item)


def parse_json(data: str | bytes, name: str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads with a size cap, a depth cap and short integers; BadFileError otherwise."""
    if len(data) > max_bytes:
        raise BadFileError(f"{name} is {len(data):,} bytes, more than the {max_bytes:,} a model file needs.")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadFileError(f"{name} is not UTF-8 text (byte {error.start}).") from None
    try:
        value = json.loads(data, parse_int=_int)
    except RecursionError:
        raise BadFileError(f"{name} nests deeper than {max_depth} levels; it is not a model file.") from None
    except json.JSONDecodeError as error:
        raise BadFileError(f"{name} is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}).") from None
    except ValueError as error:
        raise BadFileError(f"{name} is not a usable JSON file: {error}.") from None
    check_tree(value, name, max_depth=max_depth)
    return value


def read_bytes(path: Path, *, max_bytes: int) -> bytes:
    """A file's bytes, read no further than `max_bytes` (BadFileError beyond). OSError passes through."""
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise BadFileError(f"{path.name} is larger than {max_bytes:,} bytes.")
    return data


def read_json(path: Path, *, name: str | None = None, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Read and parse a JSON file under the limits. OSError (missing, unreadable) passes through."""
    name = name or path.name
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    return parse_json(data, name, max_bytes=max_bytes)


def read_json_object(path: Path, *, name: str | None = None, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """A JSON file that must hold an object (config.json, tokenizer_config.json, provenance)."""
    value = read_json(path, name=name, max_bytes=max_bytes)
    if not isinstance(value, dict):
        raise BadFileError(f"{name or path.name} must hold a JSON object, not {type(value).__name__}.")
    return value


def load_yaml(text: str, name: str = "the YAML front matter", *, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """yaml.safe_load under a size cap, an alias cap and an expanded-size cap; BadFileError otherwise.

    yaml.YAMLError passes through unchanged so callers can report its line.
    """
    import yaml

    if len(text) > max_bytes:
        raise BadFileError(f"{name} is {len(text):,} characters, more than the {max_bytes:,} allowed.")
    aliases = 0

    class _Loader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
            nonlocal aliases
            if self.check_event(yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_YAML_ALIASES:
                    raise BadFileError(f"{name} uses more than {MAX_YAML_ALIASES} YAML aliases.")
            return super().compose_node(parent, index)

    try:
        value = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise BadFileError(f"{name} nests too deeply.") from None
    check_tree(value, name, max_nodes=MAX_YAML_NODES)
    return value


def parse_safetensors_header(raw: bytes, name: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """A safetensors header's tensors (name -> {dtype, shape, data_offsets}) and its `__metadata__`.

    Every entry is type-checked: dtype a string, shape a list of non-negative integers, offsets two integers.
    """
    header = parse_json(raw, f"{name}'s header", max_bytes=MAX_SAFETENSORS_HEADER)
    if not isinstance(header, dict):
        raise BadFileError(f"{name}'s header must be a JSON object, not {type(header).__name__}.")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise BadFileError(f"{name}'s __metadata__ must map strings to strings.")
    for tensor, info in header.items():
        if not isinstance(info, dict):
            raise BadFileError(f"{name}: tensor {tensor!r} is described by {type(info).__name__}, not an object.")
        shape, dtype, offsets = info.get("shape"), info.get("dtype"), info.get("data_offsets")
        if not isinstance(dtype, str):
            raise BadFileError(f"{name}: tensor {tensor!r} has no dtype.")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise BadFileError(f"{name}: tensor {tensor!r} has a shape that is not a list of sizes.")
        if offsets is not None and (
            not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
        ):
            raise BadFileError(f"{name}: tensor {tensor!r} has bad data offsets.")
    return header, metadata


def read_safetensors_header(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Read only the header of a .safetensors file (8-byte length, then JSON), never the weights."""
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise BadFileError(f"{path.name} is too short to be a safetensors file.")
        size = int.from_bytes(prefix, "little")
        if size <= 1 or size > MAX_SAFETENSORS_HEADER:
            raise BadFileError(f"{path.name} declares a {size:,}-byte header; it is not a safetensors file.")
        raw = handle.read(size)
    if len(raw) < size:
        raise BadFileError(f"{path.name} ends inside its header; the download may be incomplete.")
    return parse_safetensors_header(raw, path.name)


def tensor_elements(tensors: dict[str, dict[str, Any]]) -> tuple[int, dict[str, int]]:
    """Total elements, and elements per dtype, of a checked header."""
    total, by_dtype = 0, {}
    for info in tensors.values():
        n = math.prod(info["shape"])
        total += n
        by_dtype[info["dtype"]] = by_dtype.get(info["dtype"], 0) + n
    return total, by_dtype


__all__.append("tensor_elements")

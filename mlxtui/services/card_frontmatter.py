"""Model-card front matter, read and written one way: huggingface_hub's ModelCard and ModelCardData.

Every reader (Inspect, Library, Card, the Hub service) goes through `parse_front_matter` or `card_data`, so a
list-form `base_model` or a `tags: 7` gives the same answer everywhere. The YAML is first checked under
`bounded.load_yaml`'s limits (size, aliases, expanded size), then field types are checked, then huggingface_hub
parses it; any failure is one message (and a line when YAML knows it), never a traceback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mlxtui.services.bounded import BadFileError, load_yaml
from mlxtui.services.modelfolder import is_repo_id

__all__ = [
    "FrontMatter",
    "LIST_KEYS",
    "STRING_KEYS",
    "parse_front_matter",
    "card_data",
    "render_card",
    "merge_yaml",
    "with_metadata",
    "base_models",
    "first_base_model",
    "string_list",
]

# huggingface_hub logs "Invalid model-index..." as a warning to stderr; the card's problems are ours to report
logging.getLogger("huggingface_hub.repocard_data").setLevel(logging.ERROR)
logging.getLogger("huggingface_hub.repocard").setLevel(logging.ERROR)

#: keys the Hub reads as a string or a list of strings
LIST_KEYS = ("tags", "language", "datasets", "metrics", "base_model", "license_link")
#: keys the Hub reads as one string
STRING_KEYS = ("license", "license_name", "library_name", "pipeline_tag", "model_name")


@dataclass
class FrontMatter:
    """A README split into metadata and body. `meta` is None when the front matter is unusable (see `error`)."""

    meta: dict[str, Any] | None
    body: str
    yaml_text: str
    present: bool
    error: str | None = None
    error_line: int | None = None


def _type_problem(meta: dict[str, Any]) -> tuple[str, str] | None:
    """(key, problem) for the first metadata field whose type huggingface_hub (or the Hub) cannot use."""
    for key in LIST_KEYS:
        value = meta.get(key)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return key, f"{key} must be a string or a list of strings, not {type(value).__name__}"
    for key in STRING_KEYS:
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            return key, f"{key} must be a string, not {type(value).__name__}"
    for key in meta:
        if not isinstance(key, str):
            return str(key), f"the key {str(key)[:40]!r} must be text"
    return None


def _key_line(yaml_text: str, key: str) -> int | None:
    for number, line in enumerate(yaml_text.splitlines(), start=2):
        if line.startswith(f"{key}:"):
            return number
    return None


def parse_front_matter(text: str) -> FrontMatter:
    """Split README text into front matter and body, read through huggingface_hub's ModelCard.

    Never raises for bad content: an unusable front matter gives meta None and a one-line `error`.
    """
    import yaml
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    match = REGEX_YAML_BLOCK.search(text)
    if not match:
        return FrontMatter(meta={}, body=text, yaml_text="", present=False)
    yaml_text = match.group(2)
    body = text[match.end():]

    def bad(message: str, line: int | None = 2) -> FrontMatter:
        return FrontMatter(None, body, yaml_text, True, message, line)

    try:
        loaded = load_yaml(yaml_text, "The YAML front matter")
    except BadFileError as error:
        return bad(str(error))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        # +2: one for 1-based lines, one for the opening "---" line
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        return bad(f"The YAML front matter is invalid: {problem}.", mark.line + 2 if mark is not None else None)
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        return bad("The YAML front matter must be a mapping of keys to values.")
    problem = _type_problem(loaded)
    if problem is not None:
        return bad(f"The YAML front matter is unusable: {problem[1]}.", _key_line(yaml_text, problem[0]))
    try:
        card = ModelCard(text, ignore_metadata_errors=True)
        data = card.data.to_dict()
    except (ValueError, TypeError, AttributeError, yaml.YAMLError) as error:
        return bad(f"The YAML front matter is unusable: {str(error).splitlines()[0] if str(error) else type(error).__name__}.")
    # ModelCardData puts its own fields first; keep the card's order
    # (a key huggingface_hub drops, such as an invalid model-index, is kept as written: never lose the user's text)
    meta = {k: data.get(k, loaded[k]) for k in loaded}
    meta.update({k: v for k, v in data.items() if k not in meta})
    return FrontMatter(meta, card.text, yaml_text, True)


def card_data(text: str | None) -> dict[str, Any]:
    """The metadata of a README, or {} when it has none or it is unusable (for readers that only look)."""
    if not text:
        return {}
    parsed = parse_front_matter(text)
    return parsed.meta or {}


def _yaml_of(clean: dict[str, Any]) -> str:
    """YAML for metadata as huggingface_hub's ModelCardData writes it (what it refuses to hold, as it was)."""
    from huggingface_hub import ModelCardData

    data = ModelCardData(ignore_metadata_errors=True, **clean)
    dropped = {k: v for k, v in clean.items() if k not in data.to_dict()}
    for key, value in dropped.items():
        setattr(data, key, value)
    return data.to_yaml(original_order=list(clean))


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if v is not None and v != [] and v != ""}


def _top_level_blocks(yaml_text: str) -> list[tuple[str | None, list[str]]]:
    """The YAML's lines grouped by top-level key: (key, lines); comment and blank lines at column 0 are
    blocks of their own (key None), so they survive any change to the keys around them."""
    blocks: list[tuple[str | None, list[str]]] = []
    for line in yaml_text.split("\n"):
        stripped = line.strip()
        starts_key = bool(line) and line[0] not in " \t-#" and ":" in line
        if starts_key:
            blocks.append((line.split(":", 1)[0].strip().strip("'\""), [line]))
        elif not stripped or line.startswith("#") or not blocks:
            blocks.append((None, [line]))
        else:
            blocks[-1][1].append(line)
    return blocks


def merge_yaml(old: FrontMatter, meta: dict[str, Any]) -> str | None:
    """The YAML of `old` changed to hold `meta`, keeping every line that did not change: comments, key order
    and the user's own formatting. Only keys whose value changed are rewritten (by ModelCardData); new keys
    go at the end. None when that cannot be done safely (the caller then renders the whole front matter)."""
    if old.meta is None or not old.present:
        return None
    clean = _clean(meta)
    lines: list[str] = []
    seen: set[str] = set()
    for key, block in _top_level_blocks(old.yaml_text):
        if key is None:
            lines += block
        elif key in seen or key not in old.meta:
            return None  # a key written twice, or one YAML reads differently: not ours to guess
        elif key not in clean:
            seen.add(key)
        else:
            seen.add(key)
            lines += block if clean[key] == old.meta.get(key) else _yaml_of({key: clean[key]}).split("\n")
    added = {k: v for k, v in clean.items() if k not in seen}
    if added:
        lines += _yaml_of(added).split("\n")
    merged = "\n".join(lines).strip("\n")
    check = parse_front_matter(f"---\n{merged}\n---\n")
    return merged if check.meta is not None and _clean(check.meta) == clean else None


def render_card(meta: dict[str, Any], body: str, like: FrontMatter | None = None) -> str:
    """Front matter plus body as huggingface_hub's ModelCard writes it ("---\\n<yaml>\\n---\\n<body>").

    Empty values (None, "", []) are left out; no metadata gives the body alone. With `like` (the card's
    current front matter), unchanged lines are kept as they were, comments included (see `merge_yaml`).
    """
    body = body.lstrip("\r\n")
    clean = _clean(meta)
    if not clean:
        return body
    yaml_text = (merge_yaml(like, clean) if like is not None else None) or _yaml_of(clean)
    return f"---\n{yaml_text}\n---\n\n{body}" if body else f"---\n{yaml_text}\n---\n"


def with_metadata(text: str, key: str, value: Any) -> str | None:
    """`text` with one key set (None or empty removes it), the body byte for byte; None when the front matter
    is unusable (the caller says so rather than replace YAML the user is fixing)."""
    parsed = parse_front_matter(text)
    if parsed.meta is None:
        return None
    meta = dict(parsed.meta)
    if value is None or value == "" or value == []:
        meta.pop(key, None)
    else:
        meta[key] = value
    if not parsed.present:
        return render_card(meta, parsed.body)
    return render_card(meta, parsed.body, like=parsed) if meta else parsed.body.lstrip("\r\n")


def string_list(value: Any) -> list[str]:
    """A metadata value the Hub reads as "string or list of strings", as a list (other shapes give [])."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def base_models(meta: dict[str, Any] | None) -> list[str]:
    """Every base_model of a card (the Hub allows one or a list)."""
    return string_list((meta or {}).get("base_model"))


def first_base_model(meta: dict[str, Any] | None, *, repo_ids_only: bool = True) -> str | None:
    """The first base_model, the one answer Library, Inspect and Card give for "where did this come from"."""
    for value in base_models(meta):
        if not repo_ids_only or is_repo_id(value):
            return value
    return None

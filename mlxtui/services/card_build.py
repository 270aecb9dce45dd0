"""Building a model card for an MLX folder: metadata from the source card and the provenance, a generated body.

Front matter is read and written through `card_frontmatter` (huggingface_hub's ModelCard/ModelCardData); the
folder's config, provenance, label and template through `modelfolder`; the template check is Inspect's
bounded dry run. A local source is named by its folder name only, never its path (public text).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlxtui.services.card_frontmatter import parse_front_matter, render_card, string_list
from mlxtui.services.errors import CardError, MlxtuiError
from mlxtui.services.modelfolder import (
    config_str,
    source_dtype,
    RANDOM_WEIGHTS_NOTE,
    has_random_weights,
    is_quantized,
    is_repo_id,
    public_source,
    read_chat_template,
    read_config,
    read_provenance,
    read_tokenizer_config,
)
from mlxtui.services.template_check import chat_template_dry_run

__all__ = [
    "KEPT_SOURCE_KEYS",
    "generate_body",
    "build_card",
    "retarget_body",
    "public_hub_url",
    "system_role_check",
    "template_rejects_system",
]

#: metadata carried over from the source model's card (everything else there describes the original)
KEPT_SOURCE_KEYS = ("language", "license", "license_name", "license_link", "tags", "datasets", "pipeline_tag")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _folder_config(folder: Path) -> dict[str, Any]:
    """config.json, or {} when absent or malformed (a card can still be written)."""
    try:
        return read_config(folder)
    except MlxtuiError:
        return {}


def system_role_check(folder: Path | str) -> dict[str, Any] | None:
    """Inspect's sandboxed dry run of the folder's chat template (None without a template).

    The same check Inspect shows, so the card and the Inspect pane never disagree.
    """
    folder = Path(folder)
    template = read_chat_template(folder)
    if not template:
        return None
    return chat_template_dry_run(template, read_tokenizer_config(folder))


def template_rejects_system(folder: Path | str) -> bool:
    """True when the folder's chat template raises on a system message (h2o-danube2 style)."""
    result = system_role_check(folder)
    return bool(result and result["renders"] and result["system_role"] is False
                and "drops the system message" not in (result.get("error") or ""))


def _first_paragraph(body: str) -> str | None:
    """The first prose paragraph of a card body: the source's own words for what the model is."""
    for block in re.split(r"\n\s*\n", body):
        block = block.strip()
        if not block or block[0] in "#|`<>![-*" or block.startswith("```"):
            continue
        text = " ".join(block.split())
        return text if len(text) <= 500 else text[:497].rsplit(" ", 1)[0] + "…"
    return None


def _is_hub_source(source: str | None) -> bool:
    return bool(source) and is_repo_id(source) and public_source(source) == source and not Path(source).exists()


#: a Hub on this machine (the demo, tests): its URL changes every run and means nothing to a reader
_LOOPBACK = re.compile(r"^https?://(?:127(?:\.\d{1,3}){3}|localhost|\[::1\]|0\.0\.0\.0)(?::\d+)?/?$", re.IGNORECASE)


def public_hub_url(endpoint: str) -> str | None:
    """The Hub's URL as a card may print it, or None for a Hub on this machine (the demo's port changes
    every run): then repos are named by their id only."""
    endpoint = endpoint.rstrip("/")
    return None if _LOOPBACK.match(endpoint) else endpoint


def _source_link(source: str, endpoint: str) -> str:
    """A repo id as a link (a bare id on a local Hub); a local folder by its name only (never a home path)."""
    if _is_hub_source(source):
        public = public_hub_url(endpoint)
        return f"[{source}]({public}/{source})" if public else f"`{source}`"
    return public_source(source) or "a local folder"


_SNIPPET = re.compile(r'^model, tokenizer = load\("([^"\n]*)"\)', re.MULTILINE)
_LOCAL_LINK = re.compile(
    r"\[([^\]\n]+)\]\((https?://(?:127(?:\.\d{1,3}){3}|localhost|\[::1\]|0\.0\.0\.0)(?::\d+)?)/([^)\s]+)\)",
    re.IGNORECASE,
)


def retarget_body(body: str, repo_id: str | None, endpoint: str) -> tuple[str, list[str]]:
    """The generated parts of a card body moved to `repo_id` (the repo it will be uploaded to): the title,
    the `load("…")` snippet and links to a Hub on this machine. Everything else (the user's own words) is
    kept byte for byte. Returns (body, one sentence per change) so the user sees what changed."""
    changes: list[str] = []
    found = _SNIPPET.search(body)
    old = found.group(1) if found else None
    if repo_id and old is not None and old != repo_id:
        body = body.replace(f'load("{old}")', f'load("{repo_id}")')
        changes.append(f'usage snippet: load("{repo_id}") (was load("{old}"))')
        title = re.search(r"^# (.+)$", body, re.MULTILINE)
        if title and title.group(1).strip() in (old, old.split("/")[-1]):
            body = body[: title.start()] + f"# {repo_id}" + body[title.end():]
            changes.append(f"title: {repo_id} (was {title.group(1).strip()})")
    public = public_hub_url(endpoint)

    def relink(match: re.Match[str]) -> str:
        text, repo = match.group(1), match.group(3)
        if text != repo:  # not one of ours: a link the user wrote
            return match.group(0)
        return f"[{repo}]({public}/{repo})" if public else f"`{repo}`"

    relinked, count = _LOCAL_LINK.subn(relink, body)
    if relinked != body:
        changes.append(f"{count} link{'s' if count != 1 else ''} to a Hub on this machine "
                       + (f"now point at {public}" if public else "now name the repo id only"))
        body = relinked
    return body, changes


def generate_body(
    folder: Path | str,
    *,
    source: str | None,
    source_body: str = "",
    provenance: dict[str, Any] | None = None,
    repo_id: str | None = None,
    endpoint: str = "https://huggingface.co",
    random_weights: bool = False,
) -> str:
    """The card body: title, what the model is, conversion details, mlx-lm usage, link to the original."""
    folder = Path(folder)
    config = _folder_config(folder)
    provenance = provenance if provenance is not None else read_provenance(folder)
    options = _dict((provenance or {}).get("options"))
    versions = _dict((provenance or {}).get("versions"))
    name = repo_id or folder.name
    lines = [f"# {name}", ""]

    quantized = is_quantized(config, provenance)
    quant = config.get("quantization") if isinstance(config.get("quantization"), dict) else {}
    if source:
        what = f"This model is an [MLX](https://github.com/ml-explore/mlx) conversion of {_source_link(source, endpoint)}"
    else:
        what = "This model is in [MLX](https://github.com/ml-explore/mlx) format"
    if quantized:
        bits = options.get("q_bits") or quant.get("bits")
        what += f", quantized to {bits} bits" if bits else ", quantized"
    mlx_lm_version = versions.get("mlx_lm")
    what += f", made with mlx-lm {mlx_lm_version}." if mlx_lm_version else "."
    lines += [what, ""]
    if random_weights:  # a demo model: say so before anyone wonders why it answers in gibberish
        lines += [f"> **Note:** {RANDOM_WEIGHTS_NOTE}", ""]
    description = _first_paragraph(source_body) if source_body else None
    if description:
        lines += ["From the original model card:", "", f"> {description}", ""]
    elif config_str(config, "model_type"):
        lines += [f"It is a `{config_str(config, 'model_type')}` causal language model.", ""]

    rows: list[tuple[str, str]] = []
    if source:
        commit = (provenance or {}).get("source_revision")
        commit = commit if isinstance(commit, str) and commit.isalnum() else None
        rows.append(("Source", _source_link(source, endpoint) + (f" at commit `{commit[:12]}`" if commit else "")))
    if quantized:
        rows.append(("Quantization mode", str(options.get("q_mode") or quant.get("mode") or "affine")))
        bits = options.get("q_bits") or quant.get("bits")
        if bits:
            rows.append(("Bits", str(bits)))
        group = options.get("q_group_size") or quant.get("group_size")
        if group:
            rows.append(("Group size", str(group)))
        if options.get("quant_predicate"):
            rows.append(("Recipe", f"`{options['quant_predicate']}`"))
    else:
        rows.append(("Quantization", "none"))
    bpw = (provenance or {}).get("bits_per_weight")
    if isinstance(bpw, (int, float)) and not isinstance(bpw, bool) and bpw > 0:
        rows.append(("Bits per weight", f"{float(bpw):.3f}"))
    dtype = options.get("dtype") or source_dtype(config)
    if dtype:
        rows.append(("dtype", f"`{dtype}`"))
    if versions.get("mlx"):
        rows.append(("mlx", str(versions["mlx"])))
    if mlx_lm_version:
        rows.append(("mlx-lm", str(mlx_lm_version)))
    if rows:
        lines += ["## Conversion", "", "| Setting | Value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in rows]
        lines.append("")

    # Quantization lab (issue 15): the measured quality table when the lab built this variant
    from mlxtui.services.lab_report import card_section_for

    lines += [section] if (section := card_section_for(folder)) else []
    lines += ["## Use with mlx-lm", "", "```bash", "pip install mlx-lm", "```", "", "```python"]
    lines += ["from mlx_lm import load, generate", "", f'model, tokenizer = load("{name}")', ""]
    has_template = read_chat_template(folder) is not None
    if has_template:
        lines += [
            'messages = [{"role": "user", "content": "Hello, who are you?"}]',
            "prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)",
        ]
    else:
        lines.append('prompt = "Once upon a time"')
    lines += ["response = generate(model, tokenizer, prompt=prompt, verbose=True)", "```", ""]
    check = system_role_check(folder) if has_template else None
    if check and check["renders"] and check["system_role"] is False:
        if "drops the system message" in (check.get("error") or ""):
            lines += ["> **Note:** this model's chat template ignores a system message: put instructions in the "
                      "first user message instead.", ""]
        else:
            lines += [
                "> **Note:** this model's chat template does not support a system message: passing one raises "
                f'"{check.get("error") or "System role not supported"}". Put instructions in the first user '
                "message instead.",
                "",
            ]
    if source:
        lines += ["## Original model", "", f"See {_source_link(source, endpoint)} for details, training data and limitations.", ""]
    return "\n".join(lines)


def build_card(
    folder: Path | str,
    *,
    source: str | None = None,
    source_card: str | None = None,
    existing: str | None = None,
    provenance: dict[str, Any] | None = None,
    repo_id: str | None = None,
    endpoint: str = "https://huggingface.co",
    regenerate_body: bool = False,
    changes: list[str] | None = None,
) -> str:
    """README.md text for an MLX folder.

    Metadata: the source card's kept keys, overridden by the existing README's (the user's edits win),
    then `library_name: mlx`, the `mlx` tag, `base_model` and `base_model_relation: quantized` when
    quantized. Body: the existing one when it has text (a card the user edited is never rewritten),
    else a generated one, whose generated parts follow `repo_id` (`retarget_body`; each change is added to
    `changes`). The existing front matter's unchanged lines, comments included, are kept. Raises CardError when the existing README's YAML is broken, so nothing is lost.
    """
    folder = Path(folder)
    provenance = provenance if provenance is not None else read_provenance(folder)
    config = _folder_config(folder)
    source = source or (provenance or {}).get("source") or None

    source_parsed = parse_front_matter(source_card) if source_card else None
    source_meta = (source_parsed.meta or {}) if source_parsed else {}
    existing_parsed = parse_front_matter(existing) if existing is not None else None
    if existing_parsed is not None and existing_parsed.meta is None:
        raise CardError(
            f"README.md in {folder} has invalid YAML front matter ({existing_parsed.error}) "
            "Fix it (mlxtui card --check shows where) and run again; the file was left as it is."
        )
    existing_meta = existing_parsed.meta if existing_parsed else {}

    meta: dict[str, Any] = {k: source_meta[k] for k in KEPT_SOURCE_KEYS if source_meta.get(k) not in (None, "", [])}
    meta.update(existing_meta or {})
    meta["library_name"] = "mlx"
    tags = string_list(meta.get("tags"))
    if "mlx" not in tags:
        tags.append("mlx")
    meta["tags"] = tags
    if not meta.get("base_model") and _is_hub_source(source):
        meta["base_model"] = source
    if is_quantized(config, provenance) and meta.get("base_model") and not meta.get("base_model_relation"):
        meta["base_model_relation"] = "quantized"
    if not meta.get("pipeline_tag") and source_meta.get("pipeline_tag"):
        meta["pipeline_tag"] = source_meta["pipeline_tag"]

    body = existing_parsed.body if existing_parsed else ""
    if body.strip() and not regenerate_body:
        body, moved = retarget_body(body, repo_id, endpoint)
        if changes is not None:
            changes += moved
    if regenerate_body or not body.strip():
        body = generate_body(
            folder,
            source=source,
            source_body=source_parsed.body if source_parsed else "",
            provenance=provenance,
            repo_id=repo_id,
            endpoint=endpoint,
            random_weights=has_random_weights(meta.get("tags")),
        )
    if existing_parsed is not None and existing_parsed.present and meta == existing_meta and existing is not None \
            and body == existing_parsed.body:
        return existing  # nothing to change: byte for byte as it was
    # written by huggingface_hub's ModelCardData, so the keys are what the Hub's own client writes
    return render_card(meta, body, like=existing_parsed)

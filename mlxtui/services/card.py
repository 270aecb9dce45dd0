"""Model cards for MLX folders: build README.md from the source card and the provenance, parse, lint, drafts.

The pure functions (`split_card`, `join_card`, `set_metadata`, `build_card`, `lint_card`) are fast enough to run
on every keystroke of the editor; `CardService` adds what needs the Hub (the source card, whether `base_model`
exists) and the files (README.md, drafts), all written atomically.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.services import Context
from mlxtui.services.errors import CardError, InvalidInputError

__all__ = [
    "PROVENANCE_FILE",
    "CARD_FILE",
    "KEPT_SOURCE_KEYS",
    "FORM_FIELDS",
    "LintProblem",
    "ParsedCard",
    "CardState",
    "Draft",
    "CardService",
    "split_card",
    "join_card",
    "set_metadata",
    "build_card",
    "generate_body",
    "lint_card",
    "read_provenance",
    "template_rejects_system",
    "is_quantized",
    "quant_label",
    "write_text_atomic",
]

PROVENANCE_FILE = "mlxtui-provenance.json"
CARD_FILE = "README.md"

#: metadata carried over from the source model's card (everything else there describes the original)
KEPT_SOURCE_KEYS = ("language", "license", "license_name", "license_link", "tags", "datasets", "pipeline_tag")

#: the metadata fields the editor's form shows; lists are edited as comma-separated text
FORM_FIELDS = ("license", "pipeline_tag", "base_model", "language", "tags", "datasets")
LIST_FIELDS = frozenset({"language", "tags", "datasets"})

# The same front-matter pattern huggingface_hub's RepoCard uses, so both agree on where the YAML ends.
_YAML_BLOCK = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# --- parsing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LintProblem:
    """One finding of the card linter. `line` is 1-based in the whole README when known."""

    code: str
    message: str
    severity: str = "error"  # "error" | "warning"
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{self.severity}: {where}{self.message}"


@dataclass
class ParsedCard:
    """A README split into front matter and body. `meta` is None when the YAML is invalid (see `error`)."""

    meta: dict[str, Any] | None
    body: str
    yaml_text: str
    has_front_matter: bool
    error: str | None = None
    error_line: int | None = None


def split_card(text: str) -> ParsedCard:
    """Split README text into its YAML front matter (parsed with yaml.safe_load, as the Hub does) and body."""
    import yaml

    match = _YAML_BLOCK.search(text)
    if not match:
        return ParsedCard(meta={}, body=text, yaml_text="", has_front_matter=False)
    yaml_text = match.group(2)
    body = text[match.end() :]
    try:
        loaded = yaml.safe_load(yaml_text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        # +2: one for 1-based lines, one for the opening "---" line
        line = mark.line + 2 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        return ParsedCard(None, body, yaml_text, True, f"The YAML front matter is invalid: {problem}.", line)
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        return ParsedCard(None, body, yaml_text, True, "The YAML front matter must be a mapping of keys to values.", 2)
    return ParsedCard(loaded, body, yaml_text, True)


def _dump_yaml(meta: dict[str, Any]) -> str:
    import yaml

    clean = {k: v for k, v in meta.items() if v is not None and v != [] and v != ""}
    return yaml.safe_dump(clean, sort_keys=False, allow_unicode=True, width=1000).strip()


def join_card(meta: dict[str, Any], body: str) -> str:
    """Front matter plus body, as huggingface_hub's ModelCard writes it ("---\\n<yaml>\\n---\\n<body>")."""
    body = body.lstrip("\r\n")
    if not meta:
        return body
    return f"---\n{_dump_yaml(meta)}\n---\n\n{body}" if body else f"---\n{_dump_yaml(meta)}\n---\n"


def set_metadata(text: str, key: str, value: Any) -> str:
    """Return `text` with one front-matter key set (None or empty removes it); the body is left byte for byte.

    Raises CardError when the existing front matter is invalid: the form must not silently replace YAML
    the user is in the middle of fixing.
    """
    parsed = split_card(text)
    if parsed.meta is None:
        raise CardError("Fix the YAML front matter first; the form can't change invalid YAML.")
    meta = dict(parsed.meta)
    if value is None or value == "" or value == []:
        meta.pop(key, None)
    else:
        meta[key] = value
    body = parsed.body
    if parsed.has_front_matter:
        return join_card(meta, body) if meta else body.lstrip("\r\n")
    return join_card(meta, body)


def form_value(meta: dict[str, Any] | None, key: str) -> str:
    """How a metadata value reads in a one-line form field (lists comma-separated)."""
    if not meta:
        return ""
    value = meta.get(key)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def parse_form_value(key: str, text: str) -> Any:
    """The inverse of `form_value`: comma-separated text becomes a list for list fields."""
    text = text.strip()
    if key in LIST_FIELDS:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text or None


# --- provenance and templates --------------------------------------------------------------------


def read_provenance(folder: Path | str) -> dict[str, Any] | None:
    """The conversion record Convert writes (see the team contract), or None when absent or unreadable."""
    path = Path(folder) / PROVENANCE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _config(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_quantized(provenance: dict[str, Any] | None, config: dict[str, Any] | None = None) -> bool:
    """Quantized per the provenance options, else per config.json's `quantization` block."""
    if provenance:
        options = provenance.get("options") or {}
        if options.get("quantize"):
            return True
    return bool(config and isinstance(config.get("quantization"), dict))


def quant_label(provenance: dict[str, Any] | None, config: dict[str, Any] | None = None) -> str:
    """The suffix conversions use for folder and repo names: "4bit", "mixed_3_6", "mxfp4", "bf16"..."""
    options = (provenance or {}).get("options") or {}
    quant = (config or {}).get("quantization") if config else None
    if options.get("quantize") or isinstance(quant, dict):
        recipe = options.get("quant_predicate")
        if recipe:
            return str(recipe)
        mode = options.get("q_mode") or (quant or {}).get("mode") or "affine"
        bits = options.get("q_bits") or (quant or {}).get("bits") or 4
        return f"{bits}bit" if mode == "affine" else str(mode)
    dtype = options.get("dtype") or (config or {}).get("torch_dtype") or (config or {}).get("dtype")
    return {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(str(dtype), str(dtype or "mlx"))


def _chat_template(folder: Path) -> str | None:
    """The folder's chat template: chat_template.jinja (mlx-lm moves it there) or tokenizer_config.json."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    try:
        tok = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    template = tok.get("chat_template") if isinstance(tok, dict) else None
    if isinstance(template, list):  # named templates: the default one is what apply_chat_template uses
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    return template if isinstance(template, str) else None


def _tokenizer_config(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def system_role_check(folder: Path | str) -> dict[str, Any] | None:
    """Inspect's sandboxed dry run of the folder's chat template (None without a template).

    The same check Inspect shows, so the card and the Inspect pane never disagree.
    """
    from mlxtui.services.inspect import chat_template_dry_run

    folder = Path(folder)
    template = _chat_template(folder)
    if not template:
        return None
    return chat_template_dry_run(template, _tokenizer_config(folder))


def template_rejects_system(folder: Path | str) -> bool:
    """True when the folder's chat template raises on a system message (h2o-danube2 style)."""
    result = system_role_check(folder)
    return bool(result and result["renders"] and result["system_role"] is False
                and "drops the system message" not in (result.get("error") or ""))


# --- building --------------------------------------------------------------------------------------


def _first_paragraph(body: str) -> str | None:
    """The first prose paragraph of a card body: the source's own words for what the model is."""
    for block in re.split(r"\n\s*\n", body):
        block = block.strip()
        if not block or block[0] in "#|`<>![-*" or block.startswith("```"):
            continue
        text = " ".join(block.split())
        return text if len(text) <= 500 else text[:497].rsplit(" ", 1)[0] + "…"
    return None


def _source_link(source: str, endpoint: str) -> str:
    if _REPO_ID.match(source) and not Path(source).exists():
        return f"[{source}]({endpoint.rstrip('/')}/{source})"
    return f"`{source}`"


def generate_body(
    folder: Path | str,
    *,
    source: str | None,
    source_body: str = "",
    provenance: dict[str, Any] | None = None,
    repo_id: str | None = None,
    endpoint: str = "https://huggingface.co",
) -> str:
    """The card body: title, what the model is, conversion details, mlx-lm usage, link to the original."""
    folder = Path(folder)
    config = _config(folder)
    provenance = provenance if provenance is not None else read_provenance(folder)
    options = (provenance or {}).get("options") or {}
    versions = (provenance or {}).get("versions") or {}
    name = repo_id or folder.name
    title = name.split("/")[-1]
    lines = [f"# {title}", ""]

    quantized = is_quantized(provenance, config)
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
    description = _first_paragraph(source_body) if source_body else None
    if description:
        lines += ["From the original model card:", "", f"> {description}", ""]
    elif config.get("model_type"):
        lines += [f"It is a `{config['model_type']}` causal language model.", ""]

    rows: list[tuple[str, str]] = []
    if source:
        commit = (provenance or {}).get("source_revision")
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
    if bpw:
        rows.append(("Bits per weight", f"{float(bpw):.3f}"))
    dtype = options.get("dtype") or config.get("torch_dtype")
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

    lines += ["## Use with mlx-lm", "", "```bash", "pip install mlx-lm", "```", "", "```python"]
    lines += ["from mlx_lm import load, generate", "", f'model, tokenizer = load("{name}")', ""]
    has_template = _chat_template(folder) is not None
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
) -> str:
    """README.md text for an MLX folder.

    Metadata: the source card's kept keys, overridden by the existing README's (the user's edits win),
    then `library_name: mlx`, the `mlx` tag, `base_model` and `base_model_relation: quantized` when
    quantized. Body: the existing one when it has text (a card the user edited is never rewritten),
    else a generated one. Raises CardError when the existing README's YAML is broken, so nothing is lost.
    """
    from huggingface_hub import ModelCardData

    folder = Path(folder)
    provenance = provenance if provenance is not None else read_provenance(folder)
    config = _config(folder)
    source = source or (provenance or {}).get("source") or None

    source_parsed = split_card(source_card) if source_card else None
    source_meta = (source_parsed.meta or {}) if source_parsed else {}
    existing_parsed = split_card(existing) if existing is not None else None
    if existing_parsed is not None and existing_parsed.meta is None:
        raise CardError(
            f"README.md in {folder} has invalid YAML front matter ({existing_parsed.error}) "
            "Fix it (mlxtui card --check shows where) and run again; the file was left as it is."
        )
    existing_meta = existing_parsed.meta if existing_parsed else {}

    meta: dict[str, Any] = {k: source_meta[k] for k in KEPT_SOURCE_KEYS if source_meta.get(k) not in (None, "", [])}
    meta.update(existing_meta or {})
    meta["library_name"] = "mlx"
    tags = meta.get("tags") or []
    tags = [tags] if isinstance(tags, str) else list(tags)
    if "mlx" not in tags:
        tags.append("mlx")
    meta["tags"] = tags
    if not meta.get("base_model") and source and _REPO_ID.match(source) and not Path(source).exists():
        meta["base_model"] = source
    if is_quantized(provenance, config) and meta.get("base_model") and not meta.get("base_model_relation"):
        meta["base_model_relation"] = "quantized"
    if not meta.get("pipeline_tag") and source_meta.get("pipeline_tag"):
        meta["pipeline_tag"] = source_meta["pipeline_tag"]

    # Round-trip through ModelCardData so the keys and their order are what the Hub's own client writes.
    data = ModelCardData(**meta)
    ordered = data.to_dict()
    order = [k for k in meta]
    meta = {k: ordered[k] for k in order if k in ordered} | {k: v for k, v in ordered.items() if k not in order}

    body = existing_parsed.body if existing_parsed else ""
    if regenerate_body or not body.strip():
        body = generate_body(
            folder,
            source=source,
            source_body=source_parsed.body if source_parsed else "",
            provenance=provenance,
            repo_id=repo_id,
            endpoint=endpoint,
        )
    return join_card(meta, body)


# --- linting ---------------------------------------------------------------------------------------


def _key_line(text: str, key: str) -> int | None:
    match = re.search(rf"^{re.escape(key)}\s*:", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def lint_card(
    text: str,
    *,
    source_license: str | None = None,
    base_model_known: bool | None = None,
) -> list[LintProblem]:
    """The editor's lint list. `source_license` and `base_model_known` come from the Hub when it answered
    (None: not checked). Errors block an upload; warnings don't."""
    problems: list[LintProblem] = []
    parsed = split_card(text)
    if parsed.meta is None:
        problems.append(LintProblem("invalid-yaml", parsed.error or "The YAML front matter is invalid.", "error", parsed.error_line))
        meta: dict[str, Any] = {}
    else:
        meta = parsed.meta
        if not parsed.has_front_matter:
            problems.append(LintProblem("no-metadata", "The card has no YAML front matter (license, tags, base_model…).", "error", 1))
    if parsed.meta is not None:
        if not meta.get("license"):
            problems.append(LintProblem("missing-license", "No license: add `license:` (copy the original model's).", "error"))
        elif source_license and str(meta["license"]) != str(source_license):
            problems.append(
                LintProblem(
                    "license-differs",
                    f"License {meta['license']!r} differs from the original model's {source_license!r}.",
                    "error",
                    _key_line(text, "license"),
                )
            )
        if meta.get("license") == "other" and not meta.get("license_name"):
            problems.append(LintProblem("missing-license-name", "license: other needs license_name and license_link.", "warning"))
        if not meta.get("pipeline_tag"):
            problems.append(LintProblem("missing-pipeline-tag", "No pipeline_tag: add e.g. `pipeline_tag: text-generation`.", "error"))
        base = meta.get("base_model")
        if not base:
            problems.append(
                LintProblem("missing-base-model", "No base_model: the Hub won't link this model to the original.", "warning")
            )
        elif base_model_known is False:
            problems.append(
                LintProblem(
                    "unknown-base-model",
                    f"base_model {base!r} was not found on the Hub: check the repo id.",
                    "error",
                    _key_line(text, "base_model"),
                )
            )
        if meta.get("library_name") not in (None, "mlx"):
            problems.append(LintProblem("library-name", f"library_name is {meta['library_name']!r}; MLX models use `mlx`.", "warning"))
    if not parsed.body.strip():
        problems.append(LintProblem("empty-body", "The card has no text: say what the model is and how to use it.", "error"))
    return problems


# --- files -----------------------------------------------------------------------------------------


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and os.replace it: a crash leaves old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@dataclass(frozen=True)
class Draft:
    """Unsaved editor text for one folder, kept under paths.drafts_dir()."""

    folder: str
    text: str
    saved_at: float


def _draft_path(folder: Path) -> Path:
    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
    return paths.drafts_dir() / f"{folder.name[:40]}-{key}.json"


@dataclass
class CardState:
    """What the editor opens with: the text to show, whether it differs from README.md, and why."""

    folder: Path
    text: str
    on_disk: str | None
    source: str | None
    restored_draft: Draft | None = None
    generated: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def dirty(self) -> bool:
        return self.text != (self.on_disk or "")


class CardService:
    """Cards of local MLX folders: open (with drafts), build, lint (with Hub checks), save."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- drafts ---------------------------------------------------------------------------------

    def save_draft(self, folder: Path | str, text: str) -> Path:
        """Autosave: atomically keep the editor's text so a crash or a dropped SSH session loses nothing."""
        folder = Path(folder)
        path = _draft_path(folder)
        payload = {"folder": str(folder.resolve()), "text": text, "saved_at": time.time()}
        write_text_atomic(path, json.dumps(payload, ensure_ascii=False))
        return path

    def load_draft(self, folder: Path | str) -> Draft | None:
        """The draft for `folder`, or None (a corrupt draft file is ignored, never fatal)."""
        path = _draft_path(Path(folder))
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            return Draft(payload["folder"], payload["text"], float(payload.get("saved_at", 0)))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def discard_draft(self, folder: Path | str) -> None:
        try:
            _draft_path(Path(folder)).unlink()
        except FileNotFoundError:
            pass

    # -- reading and saving -----------------------------------------------------------------------

    @staticmethod
    def check_folder(folder: Path | str) -> Path:
        """The folder as a Path, or InvalidInputError when it does not exist."""
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise InvalidInputError(f"{folder} is not a folder.", hint="Give the path of a converted MLX model.")
        return folder

    def read_card(self, folder: Path | str) -> str | None:
        path = Path(folder) / CARD_FILE
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise CardError(f"Can't read {path}: {error}") from error

    def save(self, folder: Path | str, text: str) -> Path:
        """Write README.md atomically, then drop the draft (the file now holds the text)."""
        folder = self.check_folder(folder)
        path = folder / CARD_FILE
        try:
            write_text_atomic(path, text)
        except OSError as error:
            raise CardError(f"README.md was not saved: {error}.", hint="Your edits are kept in the draft.") from error
        self.discard_draft(folder)
        return path

    async def source_card(self, source: str | None, revision: str | None = None) -> tuple[str | None, str | None]:
        """(README text of the original, a note when it could not be had). Local folders are read directly."""
        if not source:
            return None, None
        local = Path(source).expanduser()
        if local.is_dir():
            try:
                return (local / CARD_FILE).read_text(encoding="utf-8"), None
            except OSError:
                return None, f"The source folder {source} has no README.md."
        if not _REPO_ID.match(source):
            return None, f"{source!r} is neither a folder nor a repo id; the source card was skipped."

        def fetch() -> str:
            from huggingface_hub import HfApi

            from huggingface_hub.errors import RevisionNotFoundError

            api = HfApi(endpoint=self.ctx.endpoint, token=self.ctx.token)
            wanted = revision
            # model_info fails at once when offline; hf_hub_download alone would retry for ~20 s first
            try:
                api.model_info(source, revision=wanted)
            except RevisionNotFoundError:
                wanted = None  # the converted commit is gone (force-push, other mirror): the current card will do
                api.model_info(source)
            path = api.hf_hub_download(source, CARD_FILE, revision=wanted)
            return Path(path).read_text(encoding="utf-8")

        try:
            return await asyncio.to_thread(fetch), None
        except Exception as error:  # not found, gated, offline: the card is still built, from what we have
            return None, f"The original card of {source} could not be read ({type(error).__name__}); metadata from it was skipped."

    async def open(self, folder: Path | str, source: str | None = None) -> CardState:
        """What the editor shows: a draft newer than README.md first, else README.md (built when empty)."""
        folder = self.check_folder(folder)
        on_disk = self.read_card(folder)
        provenance = read_provenance(folder)
        source = source or (provenance or {}).get("source")
        draft = self.load_draft(folder)
        if draft is not None and draft.text != (on_disk or ""):
            return CardState(folder, draft.text, on_disk, source, restored_draft=draft)
        if draft is not None:
            self.discard_draft(folder)
        if on_disk is not None:
            parsed = split_card(on_disk)
            if parsed.meta is None or parsed.body.strip():
                return CardState(folder, on_disk, on_disk, source)
        text, notes = await self.build(folder, source=source, existing=on_disk)
        return CardState(folder, text, on_disk, source, generated=True, notes=notes)

    async def build(
        self,
        folder: Path | str,
        *,
        source: str | None = None,
        existing: str | None = None,
        repo_id: str | None = None,
        regenerate_body: bool = False,
    ) -> tuple[str, list[str]]:
        """Build README text for `folder` (fetching the source card); returns (text, notes for the user)."""
        folder = self.check_folder(folder)
        provenance = read_provenance(folder)
        source = source or (provenance or {}).get("source")
        card, note = await self.source_card(source, (provenance or {}).get("source_revision"))
        notes = [note] if note else []
        if not source:
            notes.append("No source model known (no mlxtui-provenance.json): pass --from REPO to link the original.")
        text = build_card(
            folder,
            source=source,
            source_card=card,
            existing=existing,
            provenance=provenance,
            repo_id=repo_id,
            endpoint=self.ctx.endpoint,
            regenerate_body=regenerate_body,
        )
        return text, notes

    async def hub_facts(self, text: str, source: str | None = None) -> tuple[str | None, bool | None, list[str]]:
        """(license of the original, whether base_model exists on the Hub, notes) for lint_card."""
        parsed = split_card(text)
        meta = parsed.meta or {}
        base = meta.get("base_model")
        base = base[0] if isinstance(base, list) and base else base
        notes: list[str] = []
        source_license: str | None = None
        known: bool | None = None
        if source and Path(source).expanduser().is_dir():
            card, _ = await self.source_card(source)
            source_license = ((split_card(card).meta or {}) if card else {}).get("license")
        target = base if isinstance(base, str) and base else (source if source and _REPO_ID.match(source) else None)
        if target and not Path(target).exists():
            if not _REPO_ID.match(target):
                return source_license, False, notes

            def info() -> Any:
                from huggingface_hub import HfApi

                return HfApi(endpoint=self.ctx.endpoint, token=self.ctx.token).model_info(target)

            try:
                model = await asyncio.to_thread(info)
            except Exception as error:
                from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

                if isinstance(error, GatedRepoError):
                    known = True  # it exists; we may just not have access
                elif isinstance(error, RepositoryNotFoundError):
                    known = False if target == base else None
                else:
                    notes.append(f"Could not check base_model on {self.ctx.endpoint} ({type(error).__name__}).")
            else:
                if target == base:
                    known = True
                if source_license is None and target == (source or base):
                    data = getattr(model, "card_data", None)
                    source_license = getattr(data, "license", None) if data is not None else None
        return source_license, known, notes

    async def lint(self, text: str, source: str | None = None) -> tuple[list[LintProblem], list[str]]:
        """lint_card plus the Hub checks (base_model exists, license of the original)."""
        source_license, known, notes = await self.hub_facts(text, source)
        return lint_card(text, source_license=source_license, base_model_known=known), notes

"""Model cards for MLX folders: the editor's service (open with drafts, build, lint with Hub checks, save).

The parts live beside it and are re-exported here: front matter in `card_frontmatter` (only huggingface_hub's
ModelCard/ModelCardData), building in `card_build`, linting in `card_lint`; the folder's provenance and
quantization label are `modelfolder`'s. `split_card`, `join_card` and `set_metadata` are fast enough to run
on every keystroke of the editor.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.atomic import write_text_atomic
from mlxtui.services import Context
from mlxtui.services.bounded import BadFileError
from mlxtui.services.card_build import (
    KEPT_SOURCE_KEYS,
    build_card,
    generate_body,
    public_hub_url,
    retarget_body,
    system_role_check,
    template_rejects_system,
)
from mlxtui.services.card_frontmatter import first_base_model, parse_front_matter, render_card, with_metadata
from mlxtui.services.card_lint import LintProblem, lint_card
from mlxtui.services.errors import CardError, InvalidInputError
from mlxtui.services.hubclient import make_api
from mlxtui.services.modelfolder import (
    CARD_FILE,
    PROVENANCE_FILE,
    is_quantized,
    is_repo_id,
    quant_label,
    read_provenance,
    read_text,
)

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
    "retarget_body",
    "public_hub_url",
    "lint_card",
    "read_provenance",
    "system_role_check",
    "template_rejects_system",
    "is_quantized",
    "quant_label",
    "write_text_atomic",
]

#: the metadata fields the editor's form shows; lists are edited as comma-separated text
FORM_FIELDS = ("license", "pipeline_tag", "base_model", "language", "tags", "datasets")
LIST_FIELDS = frozenset({"language", "tags", "datasets"})


@dataclass
class ParsedCard:
    """A README split into front matter and body. `meta` is None when the YAML is unusable (see `error`)."""

    meta: dict[str, Any] | None
    body: str
    yaml_text: str
    has_front_matter: bool
    error: str | None = None
    error_line: int | None = None


def split_card(text: str) -> ParsedCard:
    """Split README text into its front matter (read by huggingface_hub's ModelCard, bounded) and body."""
    parsed = parse_front_matter(text)
    return ParsedCard(parsed.meta, parsed.body, parsed.yaml_text, parsed.present, parsed.error, parsed.error_line)


def join_card(meta: dict[str, Any], body: str) -> str:
    """Front matter plus body, as huggingface_hub's ModelCard writes it ("---\\n<yaml>\\n---\\n<body>")."""
    return render_card(meta, body)


def set_metadata(text: str, key: str, value: Any) -> str:
    """Return `text` with one front-matter key set (None or empty removes it); the body is left byte for byte.

    Raises CardError when the existing front matter is unusable: the form must not silently replace YAML
    the user is in the middle of fixing.
    """
    result = with_metadata(text, key, value)
    if result is None:
        raise CardError("Fix the YAML front matter first; the form can't change invalid YAML.")
    return result


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
            payload = json.loads(read_text(path, max_bytes=16_000_000))
            return Draft(str(payload["folder"]), str(payload["text"]), float(payload.get("saved_at", 0)))
        except (OSError, ValueError, KeyError, TypeError, BadFileError, RecursionError):
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
            return read_text(path)
        except FileNotFoundError:
            return None
        except (OSError, BadFileError) as error:
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
                return read_text(local / CARD_FILE), None
            except (OSError, BadFileError):
                return None, f"The source folder {source} has no readable README.md."
        if not is_repo_id(source):
            return None, f"{source!r} is neither a folder nor a repo id; the source card was skipped."

        def fetch() -> str:
            from huggingface_hub.errors import RevisionNotFoundError

            api = make_api(self.ctx)
            wanted = revision
            # model_info fails at once when offline; hf_hub_download alone would retry for ~20 s first
            try:
                api.model_info(source, revision=wanted)
            except RevisionNotFoundError:
                wanted = None  # the converted commit is gone (force-push, other mirror): the current card will do
                api.model_info(source)
            path = api.hf_hub_download(source, CARD_FILE, revision=wanted)
            return read_text(Path(path))

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
        changes: list[str] | None = None,
    ) -> tuple[str, list[str]]:
        """Build README text for `folder` (fetching the source card); returns (text, notes for the user).

        With `repo_id`, the generated parts of an existing body follow it; each change goes to `changes`."""
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
            changes=changes,
        )
        return text, notes

    def retarget(self, text: str, repo_id: str) -> tuple[str, list[str]]:
        """The card text with its generated parts (title, usage snippet, local-Hub links) moved to `repo_id`;
        the front matter and the user's own words are kept as they are. Returns (text, changes)."""
        parsed = split_card(text)
        if not parsed.body.strip():
            return text, []
        body, changes = retarget_body(parsed.body, repo_id, self.ctx.endpoint)
        if not changes:
            return text, []
        return text[: len(text) - len(parsed.body)] + body if text.endswith(parsed.body) else text, changes

    async def hub_facts(self, text: str, source: str | None = None) -> tuple[str | None, bool | None, list[str]]:
        """(license of the original, whether base_model exists on the Hub, notes) for lint_card."""
        parsed = split_card(text)
        meta = parsed.meta or {}
        # the first base_model, as Library and Inspect read it; a value that is not a repo id is lint's finding
        base = first_base_model(meta, repo_ids_only=False)
        notes: list[str] = []
        source_license: str | None = None
        known: bool | None = None
        if source and Path(source).expanduser().is_dir():
            card, _ = await self.source_card(source)
            found = ((split_card(card).meta or {}) if card else {}).get("license")
            source_license = found if isinstance(found, str) else None
        target = base if isinstance(base, str) and base else (source if source and is_repo_id(source) else None)
        if target and not Path(target).exists():
            if not is_repo_id(target):
                return source_license, False, notes

            def info() -> Any:
                return make_api(self.ctx).model_info(target)

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
                    found = getattr(data, "license", None) if data is not None else None
                    source_license = found if isinstance(found, str) else None
        return source_license, known, notes

    async def lint(self, text: str, source: str | None = None) -> tuple[list[LintProblem], list[str]]:
        """lint_card plus the Hub checks (base_model exists, license of the original)."""
        source_license, known, notes = await self.hub_facts(text, source)
        return lint_card(text, source_license=source_license, base_model_known=known), notes

"""Saved conversations: one JSON file each under paths.chats_dir(), written atomically, exported to Markdown."""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.services.errors import InvalidInputError, NotFoundError

__all__ = ["Conversation", "ConversationStore", "to_markdown"]

FORMAT = 1


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class Conversation:
    """A chat: the model it was held with, the system prompt, the turns and each reply's figures."""

    model: str = ""
    system: str = ""
    #: {"role": "user" | "assistant", "content": str, "stats": {...} (assistant turns only, optional)}
    messages: list[dict[str, Any]] = field(default_factory=list)
    sampling: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    title: str = ""
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)

    @property
    def display_title(self) -> str:
        """The title, or the start of the first user message."""
        if self.title:
            return self.title
        first = next((m["content"] for m in self.messages if m["role"] == "user"), "")
        first = " ".join(first.split())
        return (first[:48] + "…") if len(first) > 48 else (first or "(empty)")

    def turns(self) -> list[dict[str, str]]:
        """The messages as a model sees them (role and content only)."""
        return [{"role": m["role"], "content": m["content"]} for m in self.messages]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        known = {k: data[k] for k in ("model", "system", "messages", "sampling", "id", "title", "created_at", "updated_at") if k in data}
        conv = cls(**known)
        if not isinstance(conv.messages, list) or not all(
            isinstance(m, dict) and m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str) for m in conv.messages
        ):
            raise ValueError("messages must be a list of {role, content}")
        return conv


def to_markdown(conv: Conversation) -> str:
    """A readable transcript: title, model, system prompt, then each turn with the reply's figures."""
    lines = [f"# {conv.display_title}", "", f"- Model: `{conv.model}`" if conv.model else "- Model: (none)", f"- Started: {conv.created_at}"]
    if conv.sampling:
        lines.append("- Sampling: " + ", ".join(f"{k}={v}" for k, v in conv.sampling.items() if v is not None))
    if conv.system:
        lines += ["", "## System", "", conv.system]
    for m in conv.messages:
        lines += ["", "## You" if m["role"] == "user" else "## Assistant", "", m["content"].rstrip()]
        stats = m.get("stats")
        if stats:
            lines += [
                "",
                f"*{stats.get('generation_tokens', 0)} tokens, {stats.get('generation_tps', 0):.1f} tok/s, "
                f"prompt {stats.get('prompt_tps', 0):.1f} tok/s, first token {stats.get('ttft_s', 0):.2f} s"
                + (f", {stats['finish_reason']}" if stats.get("finish_reason") not in (None, "stop") else "")
                + "*",
            ]
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ConversationStore:
    """Conversations as `<id>.json` files in `root` (default: paths.chats_dir())."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else paths.chats_dir()

    def _path(self, conv_id: str) -> Path:
        if not re.fullmatch(r"[\w.-]+", conv_id):
            raise InvalidInputError(f"{conv_id!r} is not a conversation id.")
        return self.root / f"{conv_id}.json"

    def save(self, conv: Conversation) -> Path:
        """Write atomically (temporary file, then os.replace); returns the file."""
        conv.updated_at = _now()
        path = self._path(conv.id)
        _atomic_write(path, json.dumps(conv.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path

    def load(self, conv_id: str) -> Conversation:
        path = self._path(conv_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Conversation.from_dict(data)
        except FileNotFoundError:
            raise NotFoundError(f"There is no saved conversation {conv_id}.") from None
        except (ValueError, TypeError, UnicodeDecodeError) as error:
            raise InvalidInputError(f"{path} is not a conversation mlxtui can read ({error}).") from None

    def list(self) -> list[Conversation]:
        """Every readable conversation, newest first; unreadable files are skipped."""
        found = []
        if not self.root.is_dir():
            return found
        for path in self.root.glob("*.json"):
            try:
                found.append(Conversation.from_dict(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(found, key=lambda c: c.updated_at, reverse=True)

    def delete(self, conv_id: str) -> None:
        self._path(conv_id).unlink(missing_ok=True)

    def export_markdown(self, conv: Conversation, target: Path | None = None) -> Path:
        """Write the transcript as Markdown (default: next to the JSON, `<id>.md`); returns the file."""
        target = Path(target) if target else self.root / f"{conv.id}.md"
        _atomic_write(target, to_markdown(conv))
        return target

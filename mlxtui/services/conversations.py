"""Conversations: the turns of a chat, kept in order and saved as one JSON file each under paths.chats_dir().

The conversation owns its turns: `add_user` when a message is sent, `end_reply` (or `drop_unanswered`) when
its reply is over, and `ConversationStore.save_async` writes a snapshot off the event loop. The Chat pane
awaits that save before it takes the next message, so no sequence of keys can lose or reorder a turn.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.atomic import write_text_atomic
from mlxtui.services.bounded import BadFileError, read_json_object
from mlxtui.services.chat_sampling import rate_or_none
from mlxtui.services.errors import InvalidInputError, NotFoundError

__all__ = ["Conversation", "ConversationStore", "to_markdown"]

FORMAT = 1


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class Conversation:
    """A chat: the model it was held with, the system prompt, the turns and each reply's figures."""

    model: str = ""  # the folder, repo id or URL it was loaded from
    system: str = ""
    #: {"role": "user" | "assistant", "content": str, "stats": {...} (assistant turns only, optional)}
    messages: list[dict[str, Any]] = field(default_factory=list)
    sampling: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    title: str = ""
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    #: what people call the model: its repo id or folder name (never a snapshot hash)
    model_name: str = ""

    @property
    def display_model(self) -> str:
        """The model's name for people (older files have only the path)."""
        return self.model_name or self.model.rstrip("/").split("/")[-1]

    def add_user(self, text: str) -> None:
        """A sent message; its reply follows with `end_reply` or it is taken back with `drop_unanswered`."""
        if self.messages and self.messages[-1]["role"] == "user":
            raise InvalidInputError("The previous message has no reply yet.")
        self.messages.append({"role": "user", "content": text})

    def end_reply(self, text: str, stats: dict[str, Any] | None, model: str = "") -> None:
        """The reply to the last user message (exact text, as generated), with its figures."""
        if not self.messages or self.messages[-1]["role"] != "user":
            raise InvalidInputError("A reply needs a message before it.")
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if stats is not None:
            message["stats"] = stats
        if model:
            message["model"] = model
        self.messages.append(message)

    def drop_unanswered(self) -> str | None:
        """Take back a last user message that got no reply (an error before the first token); returns it."""
        if self.messages and self.messages[-1]["role"] == "user":
            return self.messages.pop()["content"]
        return None

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
        names = ("model", "system", "messages", "sampling", "id", "title", "created_at", "updated_at", "model_name")
        known = {k: data[k] for k in names if k in data}
        for key in ("model", "system", "id", "title", "created_at", "updated_at", "model_name"):
            if key in known and not isinstance(known[key], str):
                raise ValueError(f"{key} must be text")
        if "sampling" in known and not isinstance(known["sampling"], dict):
            raise ValueError("sampling must be a table")
        conv = cls(**known)
        if not isinstance(conv.messages, list) or not all(
            isinstance(m, dict) and m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)
            and isinstance(m.get("stats", {}), dict) for m in conv.messages
        ):
            raise ValueError("messages must be a list of {role, content}")
        return conv


def to_markdown(conv: Conversation) -> str:
    """A readable transcript: title, model, system prompt, then each turn with the reply's figures."""
    model = f"- Model: `{conv.display_model}`" if conv.model or conv.model_name else "- Model: (none)"
    lines = [f"# {conv.display_title}", "", model, f"- Started: {conv.created_at}"]
    if conv.sampling:
        lines.append("- Sampling: " + ", ".join(f"{k}={v}" for k, v in conv.sampling.items() if v is not None))
    if conv.system:
        lines += ["", "## System", "", conv.system]
    for m in conv.messages:
        lines += ["", "## You" if m["role"] == "user" else "## Assistant", "", m["content"].rstrip()]
        stats = m.get("stats")
        if stats:
            lines += ["", _figures(stats)]
    return "\n".join(lines) + "\n"


def _rate(tokens: Any, tps: Any) -> str:
    """A rate only when it means something (chat_sampling.rate_or_none), else "—"."""
    if not isinstance(tokens, int) or not isinstance(tps, (int, float)):
        return "—"
    rate = rate_or_none(tokens, float(tps))
    return "—" if rate is None else f"{rate:.1f} tok/s"


def _figures(stats: dict[str, Any]) -> str:
    tokens = stats.get("generation_tokens", 0)
    ttft = stats.get("ttft_s", 0)
    ending = f", {stats['finish_reason']}" if stats.get("finish_reason") not in (None, "stop") else ""
    return (
        f"*{tokens} tokens, {_rate(tokens, stats.get('generation_tps'))}, "
        f"prompt {_rate(stats.get('prompt_tokens', 0), stats.get('prompt_tps'))}, "
        f"first token {ttft if isinstance(ttft, (int, float)) else 0:.2f} s{ending}*"
    )


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
        write_text_atomic(path, json.dumps(conv.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path

    async def save_async(self, conv: Conversation) -> Path:
        """`save` with the file written off the event loop; the snapshot is taken now, on the caller's side,
        so turns added while it is written go into the next save."""
        conv.updated_at = _now()
        path = self._path(conv.id)
        text = json.dumps(conv.to_dict(), indent=2, ensure_ascii=False) + "\n"
        await asyncio.to_thread(write_text_atomic, path, text)
        return path

    def load(self, conv_id: str) -> Conversation:
        path = self._path(conv_id)
        if not path.is_file():
            raise NotFoundError(f"There is no saved conversation {conv_id}.")
        try:
            return Conversation.from_dict(read_json_object(path))
        except BadFileError as error:
            raise InvalidInputError(f"{path} is not a conversation mlxtui can read ({error}).") from None
        except (OSError, ValueError, TypeError) as error:
            raise InvalidInputError(f"{path} is not a conversation mlxtui can read ({error}).") from None

    def list(self) -> list[Conversation]:
        """Every readable conversation, newest first; unreadable files are skipped."""
        found = []
        if not self.root.is_dir():
            return found
        for path in self.root.glob("*.json"):
            try:
                found.append(Conversation.from_dict(read_json_object(path)))
            except (OSError, ValueError, TypeError, InvalidInputError):
                continue
        return sorted(found, key=lambda c: c.updated_at, reverse=True)

    def delete(self, conv_id: str) -> None:
        self._path(conv_id).unlink(missing_ok=True)

    def export_markdown(self, conv: Conversation, target: Path | None = None) -> Path:
        """Write the transcript as Markdown (default: next to the JSON, `<id>.md`); returns the file."""
        target = Path(target) if target else self.root / f"{conv.id}.md"
        write_text_atomic(target, to_markdown(conv))
        return target

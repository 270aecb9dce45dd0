"""The Chat pane's sampling settings: one labelled field per setting; blank keeps the model's default."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label

from mlxtui.services.chat_sampling import SamplingSettings
from mlxtui.services.errors import MlxtuiError

__all__ = ["SamplingPanel", "FIELDS"]

#: (field of SamplingSettings, label, kind)
FIELDS: list[tuple[str, str, type]] = [
    ("temperature", "temp", float),
    ("top_p", "top_p", float),
    ("min_p", "min_p", float),
    ("top_k", "top_k", int),
    ("repetition_penalty", "rep pen", float),
    ("max_tokens", "max tok", int),
    ("seed", "seed", int),
]


class SamplingPanel(Vertical):
    """Fields `#chat-set-<name>` for each sampling setting."""

    DEFAULT_CSS = "SamplingPanel { height: auto; }"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inputs: dict[str, Input] = {}  # kept from compose: read at every Enter, no DOM query

    def compose(self) -> ComposeResult:
        yield Label("sampling", classes="side-label")
        for name, label, kind in FIELDS:
            with Horizontal(classes="setting"):
                yield Label(label, classes="setting-label")
                self._inputs[name] = Input(
                    id=f"chat-set-{name}",
                    type="integer" if kind is int else "number",
                    placeholder="random" if name == "seed" else "",
                    compact=True,
                )
                yield self._inputs[name]

    def show(self, sampling: SamplingSettings) -> None:
        """Fill the fields with `sampling`."""
        for name, _, _ in FIELDS:
            value = getattr(sampling, name)
            self._inputs[name].value = "" if value is None else str(value)

    def read(self, base: SamplingSettings) -> SamplingSettings:
        """The settings as typed; blanks keep `base` (a blank seed means random). Raises a clear MlxtuiError."""
        values: dict[str, Any] = {}
        for name, label, kind in FIELDS:
            raw = self._inputs[name].value.strip()
            if raw:
                try:
                    values[name] = kind(float(raw)) if kind is int else float(raw)
                except (ValueError, OverflowError):
                    raise MlxtuiError(f"The {label} setting {raw!r} is not a number.") from None
            elif name == "seed":
                values[name] = None
        return replace(base, **values).validate()

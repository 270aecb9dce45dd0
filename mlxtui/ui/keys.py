"""Every key binding by pane: feeds the help screen and docs/keys.md (`python -m mlxtui.ui.keys`)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType
from textual.keys import format_key

__all__ = ["KeyRow", "PANES", "app_bindings", "key_rows", "keys_markdown"]


@dataclass(frozen=True)
class KeyRow:
    section: str
    keys: str
    binding_id: str
    description: str


#: (id, title, key) of each pane in tab order; keys 1..9 switch to them
PANES: list[tuple[str, str]] = [
    ("search", "Search"),
    ("inspect", "Inspect"),
    ("convert", "Convert"),
    ("chat", "Chat"),
    ("card", "Card"),
    ("upload", "Upload"),
    ("library", "Library"),
    ("lab", "Lab"),
    ("cluster", "Hosts"),
]


def app_bindings() -> list[Binding]:
    """The app's own bindings: a digit per pane, Escape, help, quit."""
    return [
        *[
            Binding(f"{n},alt+{n}", f"show_pane('{pane}')", title, id=f"app.pane.{pane}", show=False)
            for n, (pane, title) in enumerate(PANES, start=1)
        ],
        Binding("escape", "leave_field", "Leave the field (then 1-9 switch panes)", id="app.leave_field", show=False),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]


def _pane_classes() -> list[tuple[str, type]]:
    from mlxtui.ui.panes import load_pane_class

    return [(title, load_pane_class(pane)) for pane, title in PANES]


def _bindings_of(cls: type) -> list[Binding]:
    """A class's own bindings plus those of the classes it inherits from within mlxtui."""
    found: list[Binding] = []
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("mlxtui"):
            continue
        for item in klass.__dict__.get("BINDINGS", []):
            found.append(_as_binding(item))
    return found


def _as_binding(item: BindingType) -> Binding:
    if isinstance(item, Binding):
        return item
    key, action, *rest = item
    return Binding(key, action, rest[0] if rest else "")


def _display_keys(keys: str) -> str:
    return " / ".join(format_key(k.strip()) for k in keys.split(","))


def key_rows() -> list[KeyRow]:
    rows = [KeyRow("Everywhere", _display_keys(b.key), b.id or "", b.description) for b in app_bindings()]
    rows.append(KeyRow("Everywhere", "ctrl+p", "", "Command palette (panes, themes, demo Hub)"))
    for section, cls in _pane_classes():
        rows += [KeyRow(section, _display_keys(b.key), b.id or "", b.description) for b in _bindings_of(cls)]
    return rows


def keys_markdown() -> str:
    lines = [
        "# Keys",
        "",
        "Generated from the bindings by `python -m mlxtui.ui.keys > docs/keys.md`; a test fails when it is stale.",
        "Any binding with an id can be remapped in the `[keymap]` table of `~/.config/mlxtui/config.toml`,",
        'for example `"app.help" = "f1"` (see docs/configuration.md).',
        "",
    ]
    section = None
    for row in key_rows():
        if row.section != section:
            section = row.section
            lines += ["", f"## {section}", "", "| keys | id | what it does |", "| --- | --- | --- |"]
        lines.append(f"| `{row.keys}` | `{row.binding_id}` | {row.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(keys_markdown(), end="")

"""Every key binding by pane: feeds the help screen and docs/keys.md (`python -m mlxtui.ui.keys`)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType
from textual.keys import format_key

__all__ = ["KeyRow", "PANES", "SHORT_TITLES", "app_bindings", "key_rows", "keys_markdown"]


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

#: tab labels when the terminal is too narrow for the titles (under 77 columns: all nine fit in 60)
SHORT_TITLES: dict[str, str] = {
    "search": "Srch", "inspect": "Insp", "convert": "Conv", "chat": "Chat", "card": "Card",
    "upload": "Upl", "library": "Lib", "lab": "Lab", "cluster": "Hst",
}


def app_bindings() -> list[Binding]:
    """The app's own bindings: a digit per pane, the edit key, Escape, help, quit.

    No alt+digit binding: terminals send it as ESC+digit, which mlxtui.ui.escdigits reads as Escape then the
    digit, so it leaves the field and switches pane through the bindings below.
    """
    return [
        *[
            Binding(str(n), f"show_pane('{pane}')", title, id=f"app.pane.{pane}", show=False, priority=True)
            for n, (pane, title) in enumerate(PANES, start=1)
        ],
        # Digits and / are priority bindings that step aside in a text field (MlxtuiApp.check_action): acting as
        # each key arrives, they keep the order of keys that come in one read (SSH, paste).
        Binding("slash", "edit", "Edit", id="app.edit", priority=True),
        # Priority, so it wins over a pane's own Escape (cancel) while the cursor is in a field; it steps aside
        # (check_action) everywhere else.
        Binding("escape", "leave_field", "Leave field", id="app.leave_field", priority=True),
        Binding("escape", "home", "To the pane's list or report", id="app.home", show=False),
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
    rows.append(KeyRow("Everywhere", "ctrl+p", "", "Command palette"))
    for section, cls in _pane_classes():
        rows += [KeyRow(section, _display_keys(b.key), b.id or "", b.description) for b in _bindings_of(cls)]
    return rows


#: the focus policy, the same in every pane (mlxtui/ui/focus.py); README's Keys section says the same
KEY_POLICY = [
    "The same in every pane:",
    "",
    "- **Arriving in a pane** (a digit, a tab click, the palette) puts focus on its *home*: its main table, list"
    " or log, or the pane itself. Never in a text field, so 1-9 switch panes and the pane's letter keys work at"
    " once. The one exception is the first screen: an empty Search box takes typing straight away.",
    "- **`/` starts editing** the pane's main field, with its text selected (Enter does the same where the pane"
    " itself is home). Tab and shift+Tab move between fields; in the Card editor Tab leaves the editor too.",
    "- **While the cursor is in a text field, every key is text**, digits included.",
    "- **Escape leaves the field** for the pane's home; Escape at home does the pane's own Escape (cancel, stop)"
    " where it has one.",
    "- **alt+digit** is read as Escape then the digit (terminals send it as ESC+digit, and so does tmux for Escape"
    " and a digit typed within its escape-time): out of the field, then to that pane.",
    "- **The footer** shows the keys that work where the cursor is (a click presses one). When a pane's keys do"
    " not fit the line (60 columns), the app's own keys show without their words: `^q` quits, `/` edits, `?`"
    " (or f1) is Help.",
    "",
]


def keys_markdown() -> str:
    lines = [
        "# Keys",
        "",
        "Generated from the bindings by `python -m mlxtui.ui.keys > docs/keys.md`; a test fails when it is stale.",
        "",
        *KEY_POLICY,
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

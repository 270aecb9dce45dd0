"""The one focus policy of every pane (docs/keys.md): arrive at the pane's home widget, `/` to edit, Escape out.

Arriving in a pane (a digit, a tab click, the palette, Escape) focuses its *home*: the main table, list or
log, or the pane itself made focusable. Digits and the pane's letter keys work there at once, and no key can
replace text the user did not choose to edit. `/` (or Enter on a pane that is its own home) starts editing the
pane's main field with its text selected; Escape leaves a field back to home.

A pane names its widgets with the class attributes of `PaneFocus`; a pane that names none gets a sensible
default (its first table/list/log as home, its first text field as the field to edit).
"""

from __future__ import annotations

import sys
from typing import ClassVar

from textual.widget import Widget
from textual.widgets import Input

__all__ = ["PaneFocus", "edit_widget", "holds_text", "home_widget", "is_text_field"]

#: widgets that make a good home when a pane names none: they take arrows and leave digits alone
_HOME_KINDS = (("_data_table", "DataTable"), ("_list_view", "ListView"), ("_option_list", "OptionList"),
               ("_tree", "Tree"), ("_rich_log", "RichLog"), ("_log", "Log"))


def _loaded(*kinds: tuple[str, str]) -> tuple[type[Widget], ...]:
    """Those of Textual's widget classes whose module is imported (if it is not, no widget can be one):
    checking for a kind imports nothing, so the first frame pays only for the widgets it shows."""
    found = (getattr(sys.modules.get(f"textual.widgets.{module}"), name, None) for module, name in kinds)
    return tuple(cls for cls in found if cls is not None)


def _is_text_area(widget: Widget | None) -> bool:
    return isinstance(widget, _loaded(("_text_area", "TextArea")))


class PaneFocus:
    """Mixin for panes: `HOME` and `EDIT` are CSS selectors (inside the pane) of its home widget and main field.

    `HOME = None` makes the pane itself the home (it becomes focusable); `EDIT = None` picks the first text field.
    """

    HOME: ClassVar[str | None] = None
    EDIT: ClassVar[str | None] = None

    def edit_target(self) -> str | None:
        """The selector of the field `/` edits now (a pane whose main field changes overrides this)."""
        return self.EDIT


def is_text_field(widget: Widget | None) -> bool:
    """A widget where printable keys become text."""
    return isinstance(widget, Input) or (_is_text_area(widget) and not widget.read_only)  # type: ignore[union-attr]


def holds_text(widget: Widget | None) -> bool:
    """A text field with text in it (a key typed there would change it)."""
    if isinstance(widget, Input):
        return bool(widget.value)
    return _is_text_area(widget) and not widget.read_only and bool(widget.text)  # type: ignore[union-attr]


def _shown_in(widget: Widget, pane: Widget) -> bool:
    """Displayed within the pane (a hidden ContentSwitcher child or a display:none box does not count)."""
    node: Widget | None = widget
    while node is not None and node is not pane:
        if not node.display:
            return False
        node = node.parent if isinstance(node.parent, Widget) else None
    return True


def _candidates(pane: Widget, selector: str | None, kinds: tuple[type[Widget], ...]) -> list[Widget]:
    found = list(pane.query(selector)) if selector else [w for w in pane.query("*") if isinstance(w, kinds)]
    return [w for w in found if w.focusable and _shown_in(w, pane)]


def home_widget(pane: Widget) -> Widget:
    """Where focus goes when the user arrives in `pane`: never a text field."""
    named = getattr(pane, "HOME", None)
    if isinstance(pane, PaneFocus) and named is None:
        pane.can_focus = True
        return pane
    for widget in _candidates(pane, named, _loaded(*_HOME_KINDS)):
        if not is_text_field(widget):
            return widget
    pane.can_focus = True  # nothing suitable: the pane itself holds focus, so its keys work
    return pane


def edit_widget(pane: Widget) -> Widget | None:
    """The pane's main text field, or None when it has none that is shown and enabled."""
    selector = pane.edit_target() if isinstance(pane, PaneFocus) else None
    found = _candidates(pane, selector, (Input, *_loaded(("_text_area", "TextArea"))))
    return next((w for w in found if is_text_field(w)), None)

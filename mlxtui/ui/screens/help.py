"""The help screen: every key, by pane, from the same table as docs/keys.md."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static


class HelpScreen(ModalScreen[None]):
    """Keys by pane; Escape or ? closes it."""

    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss", "Close help", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        from mlxtui.ui.keys import key_rows

        with VerticalScroll(id="help-body"):
            yield Static("[b]mlxtui keys[/b]  (Escape closes; remap any id in config.toml [keymap])", id="help-title")
            table: DataTable[str] = DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            table.add_columns("pane", "keys", "what it does", "id")
            for row in key_rows():
                table.add_row(row.section, row.keys, row.description, row.binding_id)
            yield table

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)

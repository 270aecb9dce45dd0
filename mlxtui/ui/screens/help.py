"""The help screen: every key, by pane, from the same table as docs/keys.md."""

from __future__ import annotations

from rich.text import Text
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
            # The pane's name on a row of its own, not repeated in a column: keys, words and ids fit 80 columns.
            table.add_columns("keys", "what it does", "id")
            section = None
            for row in key_rows():
                if row.section != section:
                    section = row.section
                    table.add_row(Text(section, style="bold"), "", "", key=f"section-{section}")
                table.add_row(row.keys, row.description, row.binding_id)
            yield table

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)

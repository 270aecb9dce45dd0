"""The last look before an upload: endpoint, repo, visibility (and its change), every file, the total size, and
the remote files the commit deletes or keeps."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Static

from mlxtui.format import human_bytes, printable
from mlxtui.services.upload import UploadPlan

__all__ = ["UploadConfirmDialog"]




class UploadConfirmDialog(ModalScreen[bool]):
    """Dismissed with True to upload, False to go back; nothing is sent before True."""

    DEFAULT_CSS = """
    UploadConfirmDialog {
        align: center middle;
    }
    UploadConfirmDialog #confirm-box {
        width: 90%;
        max-width: 100;
        height: 90%;
        max-height: 30;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    UploadConfirmDialog #confirm-title {
        text-style: bold;
        color: $accent;
    }
    UploadConfirmDialog #confirm-facts {
        height: auto;
        margin-bottom: 1;
    }
    UploadConfirmDialog #confirm-files {
        height: 1fr;
    }
    UploadConfirmDialog #confirm-buttons {
        height: 3;
        align-horizontal: right;
    }
    UploadConfirmDialog Button {
        margin-left: 1;
    }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Upload", id="upload.confirm.yes"),
        Binding("escape,n", "answer(False)", "Back", id="upload.confirm.no"),
    ]

    def __init__(self, plan: UploadPlan) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        plan = self.plan
        visibility = "private" if plan.private else "PUBLIC (anyone can download it)"
        if plan.visibility_change:
            visibility = f"{plan.visibility_change}: changed before any file is sent"
        exists = " (exists: files already there are skipped)" if plan.repo_exists else " (will be created)"
        remote = ""
        if plan.deletions:
            remote += f"\nDeleted     {len(plan.deletions)} remote files the folder lacks (marked − below)"
        if plan.remote_keep and not plan.delete_others:
            remote += f"\nKept        {printable(', '.join(plan.remote_keep[:4]), newlines=False)}" + (
                " …" if len(plan.remote_keep) > 4 else "")
        with Vertical(id="confirm-box"):
            yield Static("Upload to the Hub?", id="confirm-title")
            yield Static(Text(
                f"Endpoint    {printable(plan.endpoint, newlines=False)}\n"
                f"Repo        {plan.repo_id}{exists}\n"
                f"Visibility  {visibility}\n"
                f"Files       {len(plan.files)}, {human_bytes(plan.total_bytes)} in total{remote}"),
                id="confirm-facts",
            )
            table: DataTable = DataTable(id="confirm-files", cursor_type="row", show_cursor=False, zebra_stripes=True)
            table.add_column("File", key="file")
            table.add_column("Size", key="size")
            for f in plan.files:
                table.add_row(Text(printable(f.path, newlines=False)), human_bytes(f.size))
            for path in plan.deletions:
                table.add_row(Text(f"− {printable(path, newlines=False)}"), "deleted")
            yield table
            with Horizontal(id="confirm-buttons"):
                yield Button("Back (n)", id="confirm-no")
                yield Button("Upload (y)", id="confirm-yes", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#confirm-yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

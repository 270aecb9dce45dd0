"""The local library: converted folders and Hugging Face cache models, with size, quantization and source.

Enter opens the highlighted model in Chat, `e` opens its card, `d` deletes it after a confirmation.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from mlxtui.ui.failures import ReportsFailures
from mlxtui.ui.focus import PaneFocus
from mlxtui.format import elide_middle, human_bytes, printable
from mlxtui.services.errors import MlxtuiError
from mlxtui.services.library import LibraryService, LocalModel
from mlxtui.services.workflow import short_path
from mlxtui.ui.messages import ChatWithModel, EditCard
from mlxtui.ui.screens.confirm import ConfirmDialog
from mlxtui.ui.panes import pane_css

__all__ = ["LibraryPane"]


def _safe(value: str) -> Text:
    return Text(printable(value, newlines=False))


class LibraryPane(ReportsFailures, PaneFocus, Vertical):
    """Local models: open in Chat or Card, delete."""

    HOME = "#library-table"

    DEFAULT_CSS = pane_css(__file__)
    SCOPED_CSS = False  # the stylesheet names the pane in its own selectors

    BINDINGS = [
        Binding("enter", "chat", "Chat", id="library.chat"),
        Binding("e", "card", "Card", id="library.card"),
        Binding("d,delete", "delete", "Delete", id="library.delete"),
        Binding("ctrl+r", "reload", "Refresh", id="library.refresh"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.models: list[LocalModel] = []
        self._service: LibraryService | None = None

    def compose(self) -> ComposeResult:
        yield Static("Reading the library…", id="library-status")
        table: DataTable[str] = DataTable(id="library-table", cursor_type="row", zebra_stripes=True)
        table.add_column("Model", key="name")
        table.add_column("Where", key="where")
        table.add_column("Quant", key="quant")
        table.add_column("Size", key="size")
        table.add_column("Source", key="source")
        yield table
        yield Static("", id="library-detail")

    @property
    def service(self) -> LibraryService:
        if self._service is None:
            self._service = LibraryService(self.app.ctx)  # type: ignore[attr-defined]
        return self._service

    def on_show(self) -> None:
        # read when shown, not at start-up (scanning the HF cache imports huggingface_hub); a conversion may
        # also have finished, or a model been downloaded, since the last look
        self.reload()

    @work(exclusive=True, group="library", exit_on_error=False)
    async def reload(self) -> None:
        """Read the models dir and the HF cache again (in a thread) and redraw."""
        try:
            models = await self.service.list()
        except (MlxtuiError, OSError) as error:
            message = f"The library could not be read: {printable(str(error))}"
            self.query_one("#library-status", Static).update(Text(message))
            self.notify(message, severity="error")
            return
        self.show_models(models)

    def worker_failed(self, worker: Any, message: str) -> None:
        """The app's failure handler: the status says what happened, never "Reading the library…" forever."""
        self.query_one("#library-status", Static).update(Text(printable(message)))

    def show_models(self, models: list[LocalModel]) -> None:
        """Fill the table, keeping the cursor on the same model when it is still there."""
        table = self.query_one("#library-table", DataTable)
        current = self.selected()
        self.models = models
        table.clear()
        # names, labels and sources come from folders and cards written by others: plain text, escaped
        rows = [
            [
                printable(model.name if model.in_models_dir else short_path(model.path), newlines=False),
                "folder" if model.kind == "folder" else "HF cache",
                printable(model.quantization + (" mlx" if model.is_mlx and model.kind == "cache" else ""),
                          newlines=False),
                human_bytes(model.size_bytes) + ("" if model.has_weights else ", no weights"),
                printable(short_path(model.source) if model.source and model.source != model.name else "-",
                          newlines=False),
            ]
            for model in models
        ]
        name_width, source_width = self._fit_widths(rows)
        self._fitted_width = self.size.width
        for model, row in zip(models, rows):
            row[0], row[4] = elide_middle(row[0], name_width), elide_middle(row[4], source_width)
            table.add_row(*(Text(cell) for cell in row), key=model.path)
        if current is not None and any(m.path == current.path for m in models):
            table.move_cursor(row=table.get_row_index(current.path))
        folders = sum(1 for m in models if m.kind == "folder")
        status = self.query_one("#library-status", Static)
        if models:
            status.update(Text(
                f"{folders} converted folder{'s' if folders != 1 else ''} in {printable(short_path(self.service.models_dir))} · "
                f"{len(models) - folders} in the Hugging Face cache · Enter: Chat · e: Card · d: Delete"
            ))
        else:
            status.update(Text(f"No local models yet. Conversions go to {printable(str(self.service.models_dir))}."))
        self._show_detail()

    def _fit_widths(self, rows: list[list[str]]) -> tuple[int, int]:
        """Widths of the Model and Source columns so that the whole row fits the pane: the other columns are
        short facts (where, quantization, size) and keep theirs; long names and sources are cut in the middle."""
        widest = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(("Model", "Where", "Quant", "Size", "Source"))]
        room = (self.size.width or 120) - 2 - 2 * 5 - sum(widest[1:4])  # scrollbar, cell padding, fixed columns
        name = min(widest[0], max(12, room - min(widest[4], max(10, room // 2))))
        return name, max(6, min(widest[4], room - name))

    def on_resize(self) -> None:
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        # never while hidden (the "too small" notice): a table filled then measures its columns by the headers
        if self.app.has_class("-too-small") or not self.size.width:
            return
        if self.models and self.size.width != getattr(self, "_fitted_width", None):
            self.show_models(self.models)

    def selected(self) -> LocalModel | None:
        """The highlighted model, if any."""
        table = self.query_one("#library-table", DataTable)
        if not self.models or table.cursor_row < 0 or table.cursor_row >= len(self.models):
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return next((m for m in self.models if m.path == key), None)

    @on(DataTable.RowHighlighted, "#library-table")
    def _show_detail(self) -> None:
        model = self.selected()
        detail = self.query_one("#library-detail", Static)
        detail.update(_safe(short_path(model.path) + (f" · {model.model_type}" if model.model_type else "")) if model else "")

    @on(DataTable.RowSelected, "#library-table")
    def _row_selected(self) -> None:
        self.action_chat()

    def action_chat(self) -> None:
        """Open the highlighted model in Chat."""
        model = self.selected()
        if model is not None and not model.has_weights and model.is_mlx and model.repo_id:
            # already an MLX conversion (mlx-community/…-4bit): Chat downloads its weights, nothing to convert
            self.notify(f"Only the small files of {printable(model.name, newlines=False)} are cached: Chat downloads "
                        "its weights first.")
            self.post_message(ChatWithModel(model.repo_id))
        elif model is not None and not model.has_weights:
            self.notify(f"Only the small files of {printable(model.name, newlines=False)} are cached (Inspect read them): there are no "
                        "weights to load. Convert it, or chat with a conversion of it.", severity="warning")
        elif model is not None:
            self.post_message(ChatWithModel(model.path))

    def action_card(self) -> None:
        """Open the highlighted model's card."""
        model = self.selected()
        if model is not None:
            self.post_message(EditCard(model.path, model.source if model.source != model.path else None))

    def action_reload(self) -> None:
        self.reload()

    def action_delete(self) -> None:
        """Delete the highlighted model after a confirmation."""
        model = self.selected()
        if model is None:
            return
        what = "the folder" if model.kind == "folder" else "every cached revision of"
        body = (
            f"This deletes {what} {model.name} ({human_bytes(model.size_bytes)}) from disk:\n{model.path}\n"
            "It cannot be undone."
        )
        self.app.push_screen(
            ConfirmDialog(f"Delete {model.name}?", body, confirm="Delete", danger=True),
            lambda confirmed: self.delete_model(model) if confirmed else None,
        )

    @work(exclusive=True, group="library-delete", exit_on_error=False)
    async def delete_model(self, model: LocalModel) -> None:
        try:
            await self.service.delete(model)
        except (MlxtuiError, OSError) as error:
            self.notify(f"{model.name} was not deleted: {error}", severity="error")
            return
        self.notify(f"Deleted {model.name}.", title="Library")
        self.reload()

"""Edit the model card (README.md) of an MLX folder: Markdown editor, metadata form, preview, lint, drafts.

The form and the YAML front matter are kept in sync both ways; every change is autosaved as a draft under
paths.drafts_dir() (a crash or a dropped SSH session loses nothing) and ctrl+s writes README.md atomically.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Input, Label, Markdown, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from mlxtui.ui.failures import ReportsFailures
from mlxtui.ui.focus import PaneFocus
from mlxtui.services.card import (
    FORM_FIELDS,
    CardService,
    LintProblem,
    form_value,
    lint_card,
    parse_form_value,
    set_metadata,
    split_card,
)
from mlxtui.format import printable
from mlxtui.services.errors import MlxtuiError
from mlxtui.services.workflow import short_path
from mlxtui.ui.messages import UploadFolder
from mlxtui.ui.panes import pane_css
from mlxtui.ui.widgets.model_suggester import ModelSuggester

__all__ = ["CardPane"]

#: seconds of quiet typing before the form, the lint list and the draft catch up
SYNC_DELAY = 0.3
DRAFT_DELAY = 1.0
_FIELD_LABELS = {
    "license": "license",
    "pipeline_tag": "pipeline",
    "base_model": "base",
    "language": "language",
    "tags": "tags",
    "datasets": "datasets",
}


class CardPane(ReportsFailures, PaneFocus, Vertical):
    """Edit the model card of an MLX folder."""

    HOME = None  # the pane itself: `/` or Enter starts editing, Escape comes back
    can_focus = True

    DEFAULT_CSS = pane_css(__file__)
    SCOPED_CSS = False  # the stylesheet names the pane in its own selectors

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="card.save"),
        Binding("ctrl+t", "toggle_preview", "Preview", id="card.preview"),
        Binding("ctrl+l", "lint", "Lint", id="card.lint"),  # against the Hub too
        Binding("ctrl+o", "upload", "Upload…", id="card.upload"),
        Binding("enter", "app.edit", "Edit", id="card.edit_enter", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.folder: Path | None = None
        self.source: str | None = None
        self.on_disk: str | None = None
        #: Hub facts for the lint: license of the original and base_model -> exists
        self.source_license: str | None = None
        self.base_known: dict[str, bool | None] = {}
        self.hub_notes: list[str] = []
        self.problems: list[LintProblem] = []
        self._syncing = False
        self._sync_timer: Timer | None = None
        self._draft_timer: Timer | None = None
        self._overwrite_confirmed = False
        self._latest_text: str | None = None
        self._asked = False  # a card was asked for (a message, the folder field): never replaced by the newest

    # -- layout -----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="card-top"):
            yield Input(placeholder="/path/to/mlx-model-folder, then Enter", id="card-folder",
                        suggester=ModelSuggester(lambda: self.app.ctx, repos=False))  # type: ignore[attr-defined]
            yield Static("", id="card-state")
        with Horizontal(id="card-body"):
            with ContentSwitcher(initial="card-editor", id="card-view"):
                yield TextArea(
                    "", language=self._language(), soft_wrap=True, tab_behavior="focus", id="card-editor",
                    placeholder="Open a converted MLX folder to write its model card.",
                )
                with VerticalScroll(id="card-preview-scroll"):
                    yield Markdown("", id="card-preview")
            with Vertical(id="card-side"):
                yield Static("Metadata", classes="card-title")
                for key in FORM_FIELDS:
                    with Horizontal(classes="card-field"):
                        yield Label(_FIELD_LABELS[key], classes="card-label")
                        # disabled until a card is open (set here, not in on_mount, which may run after open_folder)
                        yield Input(id=f"card-field-{key}", compact=True, placeholder="—", disabled=True)
                yield Static("Lint", classes="card-title", id="card-lint-title")
                yield OptionList(id="card-lint")

    @staticmethod
    def _language() -> str | None:
        """Markdown highlighting when tree-sitter's Markdown grammar is installed; plain text otherwise."""
        try:
            from textual._tree_sitter import get_language

            return "markdown" if get_language("markdown") is not None else None
        except Exception:  # an optional extra: never a reason not to edit
            return None

    @property
    def editor(self) -> TextArea:
        return self.query_one("#card-editor", TextArea)

    def on_mount(self) -> None:
        self._show_state()
        self.set_interval(5.0, self._autosave)  # a safety net on top of the debounced draft

    def on_unmount(self) -> None:
        # quitting with unsaved text keeps it as a draft; the editor may be gone already, so use the copy
        if self.folder is not None and self._latest_text is not None and self._latest_text != (self.on_disk or ""):
            try:
                CardService(self.app.ctx).save_draft(self.folder, self._latest_text)
            except OSError:
                pass

    def edit_target(self) -> str:
        """The editor once a card is open; before that, the folder to open."""
        return "#card-editor" if self.folder is not None else "#card-folder"

    # -- contract ---------------------------------------------------------------------------------

    def on_show(self) -> None:
        """Reached with nothing open (a digit, a tab click): open the model in work, else the newest conversion."""
        if self.folder is None and not self._asked:
            self._open_latest()

    @work(exclusive=True, group="card-latest", exit_on_error=False)
    async def _open_latest(self) -> None:
        import asyncio

        from mlxtui.services.workflow import folder_to_open

        work = getattr(self.app, "work", None)
        folder = await asyncio.to_thread(folder_to_open, work, self.app.ctx)  # type: ignore[attr-defined]
        if folder is not None and self.folder is None and not self._asked:
            self.open_folder(folder, work.source if work is not None and work.folder == folder else None)

    def expect_folder(self) -> None:
        """The app is about to open a folder here: being shown must not open the newest conversion."""
        self._asked = True

    def follow_target(self, folder: str, repo_id: str) -> None:
        """The model in work got a target repo: the open card of that folder follows it (generated parts only)."""
        if self.folder is not None and self.folder.resolve() == Path(folder).expanduser().resolve():
            self._retarget(repo_id)

    def _retarget(self, repo_id: str) -> None:
        old = self.editor.text
        new, changes = CardService(self.app.ctx).retarget(old, repo_id)  # type: ignore[attr-defined]
        if not changes:
            return
        self._replace_changed_region(old, new)  # an edit like any other: undo works, the draft keeps it
        said = "; ".join(printable(c, newlines=False) for c in changes)
        self.notify(f"The card now follows {printable(repo_id, newlines=False)}: {said}. ctrl+s saves it.",
                    title="Card", timeout=10)

    def open_folder(self, path: str, source: str | None = None) -> None:
        """Open the card of the MLX folder at `path`; `source` is the original repo when known."""
        self._asked = True
        box = self.query_one("#card-folder", Input)
        box.value = short_path(path)  # ~ for home; read from the left (the cursor at the end would show the tail)
        box.cursor_position = 0
        self._open(path, source)

    @on(Input.Submitted, "#card-folder")
    def _folder_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._asked = True
            self._open(event.value.strip(), None)

    @work(exclusive=True, group="card-open", exit_on_error=False)
    async def _open(self, path: str, source: str | None) -> None:
        self._autosave()  # the card being left keeps its edits
        service = CardService(self.app.ctx)
        self.query_one("#card-state", Static).update("opening…")
        try:
            state = await service.open(path, source)
        except MlxtuiError as error:
            self.notify(str(error), severity="error")
            self._show_state()
            return
        self.folder, self.source, self.on_disk = state.folder, state.source, state.on_disk
        self.source_license, self.base_known, self.hub_notes = None, {}, list(state.notes)
        self._load_text(state.text)
        if state.restored_draft is not None:
            saved = time.strftime("%H:%M", time.localtime(state.restored_draft.saved_at))
            self.notify(f"Restored unsaved edits from {saved}. ctrl+s saves them to README.md.", title="Draft")
        elif state.generated:
            self.notify("A card was built from the original model and the conversion. Review it, then ctrl+s.")
        work = getattr(self.app, "work", None)
        if work is not None and work.target and work.folder and Path(work.folder).expanduser().resolve() == state.folder.resolve():
            self._retarget(work.target)  # the upload target is already chosen: the card names it
        if self.has_focus_within or self.app.focused is None:
            self.focus()  # home (the pane): `/` or Enter edits, digits still switch panes
        self._hub_lint()

    def worker_failed(self, worker: Any, message: str) -> None:
        """The app's failure handler: the state line leaves "opening…" (the app already told what failed)."""
        self._show_state()

    def _load_text(self, text: str) -> None:
        self._latest_text = text
        editor = self.editor
        with editor.prevent(TextArea.Changed):
            editor.load_text(text)
        self._sync_from_text()
        self._show_state()

    # -- text -> form, lint, draft ------------------------------------------------------------------

    @on(TextArea.Changed, "#card-editor")
    def _text_changed(self) -> None:
        self._latest_text = self.editor.text  # small (a card): kept for the save on unmount
        self._show_state()
        if self._sync_timer is not None:
            self._sync_timer.stop()
        self._sync_timer = self.set_timer(SYNC_DELAY, self._sync_from_text)
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self._draft_timer = self.set_timer(DRAFT_DELAY, self._autosave)

    def _sync_from_text(self) -> None:
        """Parse the YAML once: fill the form (without echoing back) and refresh the lint list."""
        text = self.editor.text
        parsed = split_card(text)
        self._syncing = True
        try:
            for key in FORM_FIELDS:
                field = self.query_one(f"#card-field-{key}", Input)
                value = form_value(parsed.meta, key)
                if field.value != value and not field.has_focus:
                    with field.prevent(Input.Changed):
                        field.value = value
        finally:
            self._syncing = False
        self._set_form_enabled(self.folder is not None and parsed.meta is not None)
        self._refresh_lint(text)
        if self.query_one("#card-view", ContentSwitcher).current == "card-preview-scroll":
            self.query_one("#card-preview", Markdown).update(parsed.body)
        base = (parsed.meta or {}).get("base_model")
        if isinstance(base, str) and base and base not in self.base_known:
            self._hub_lint()

    def _set_form_enabled(self, enabled: bool) -> None:
        for key in FORM_FIELDS:
            self.query_one(f"#card-field-{key}", Input).disabled = not enabled

    def _refresh_lint(self, text: str | None = None) -> None:
        text = self.editor.text if text is None else text
        if self.folder is None:
            self.problems = []
        else:
            base = (split_card(text).meta or {}).get("base_model")
            known = self.base_known.get(base) if isinstance(base, str) else None
            self.problems = lint_card(text, source_license=self.source_license, base_model_known=known)
        lint = self.query_one("#card-lint", OptionList)
        lint.clear_options()
        if self.folder is None:
            return
        if not self.problems:
            lint.add_option(Option(Text("✓ no problems", style="green"), id="ok", disabled=True))
        for i, problem in enumerate(self.problems):
            mark = Text("✗ " if problem.severity == "error" else "! ", style="red" if problem.severity == "error" else "yellow")
            where = Text(f"{problem.line}: ", style="dim") if problem.line else Text("")
            lint.add_option(Option(Text.assemble(mark, where, printable(problem.message, newlines=False)), id=f"p{i}"))
        for note in self.hub_notes:
            lint.add_option(Option(Text(f"· {printable(note, newlines=False)}", style="dim italic"), disabled=True))
        errors = sum(p.severity == "error" for p in self.problems)
        title = self.query_one("#card-lint-title", Static)
        title.update(f"Lint: {errors} error{'s' if errors != 1 else ''}" if errors else "Lint")

    @on(OptionList.OptionSelected, "#card-lint")
    def _jump_to_problem(self, event: OptionList.OptionSelected) -> None:
        """Enter on a problem with a line puts the cursor there."""
        index = int(event.option.id[1:]) if event.option.id and event.option.id.startswith("p") else -1
        if 0 <= index < len(self.problems) and self.problems[index].line:
            self.editor.cursor_location = (self.problems[index].line - 1, 0)
            self.editor.focus()

    def _autosave(self) -> None:
        """Keep the editor text as a draft when it differs from README.md (atomic write; never raises)."""
        if self.folder is None or not self.is_mounted:
            return
        try:
            text = self.editor.text
        except Exception:  # the editor is already gone during shutdown
            return
        service = CardService(self.app.ctx)
        try:
            if text != (self.on_disk or ""):
                service.save_draft(self.folder, text)
            else:
                service.discard_draft(self.folder)
        except OSError as error:
            self.notify(f"The draft could not be saved: {error}", severity="warning")

    # -- form -> text ---------------------------------------------------------------------------------

    @on(Input.Changed, ".card-field Input")
    def _field_changed(self, event: Input.Changed) -> None:
        if self._syncing or self.folder is None or event.input.id is None:
            return
        key = event.input.id.removeprefix("card-field-")
        old = self.editor.text
        try:
            new = set_metadata(old, key, parse_form_value(key, event.value))
        except MlxtuiError:
            return  # invalid YAML: the form is disabled until it is fixed
        self._replace_changed_region(old, new)

    def _replace_changed_region(self, old: str, new: str) -> None:
        """Edit only the part that changed (the front matter), so the body, the cursor and undo survive."""
        if old == new:
            return
        prefix = 0
        limit = min(len(old), len(new))
        while prefix < limit and old[prefix] == new[prefix]:
            prefix += 1
        suffix = 0
        while suffix < limit - prefix and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]:
            suffix += 1
        document = self.editor.document
        start = document.get_location_from_index(prefix)
        end = document.get_location_from_index(len(old) - suffix)
        self.editor.replace(new[prefix : len(new) - suffix], start, end)

    # -- actions ------------------------------------------------------------------------------------

    def action_save(self) -> None:
        """Write README.md atomically; the draft is dropped once the file holds the text."""
        if self.folder is None:
            self.notify("Open an MLX folder first.", severity="warning")
            return
        text = self.editor.text
        service = CardService(self.app.ctx)
        try:
            current = service.read_card(self.folder)
        except MlxtuiError:
            current = None
        if current not in (self.on_disk, text) and not self._overwrite_confirmed:
            # someone else changed README.md since it was opened: don't clobber it silently
            self._overwrite_confirmed = True
            self.notify("README.md changed on disk since it was opened. ctrl+s again overwrites it "
                        "(your text stays in the draft either way).", severity="warning", timeout=10)
            return
        self._overwrite_confirmed = False
        try:
            service.save(self.folder, text)
        except MlxtuiError as error:
            self.notify(str(error), severity="error")
            return
        self.on_disk = text
        self._show_state()
        errors = [p for p in self.problems if p.severity == "error"]
        suffix = f" ({len(errors)} lint error{'s' if len(errors) != 1 else ''} left)" if errors else ""
        self.notify(f"Saved README.md{suffix}.", severity="warning" if errors else "information")

    def action_toggle_preview(self) -> None:
        switcher = self.query_one("#card-view", ContentSwitcher)
        if switcher.current == "card-editor":
            self.query_one("#card-preview", Markdown).update(split_card(self.editor.text).body)
            switcher.current = "card-preview-scroll"
            self.query_one("#card-preview-scroll").focus()
        else:
            switcher.current = "card-editor"
            self.editor.focus()
        self._show_state()

    def action_lint(self) -> None:
        self.base_known = {}
        self._hub_lint()

    def action_upload(self) -> None:
        if self.folder is None:
            self.notify("Open an MLX folder first.", severity="warning")
            return
        if self.editor.text != (self.on_disk or ""):
            self.notify("Save the card first (ctrl+s): the upload sends README.md as it is on disk.", severity="warning")
            return
        self.post_message(UploadFolder(str(self.folder)))

    @work(exclusive=True, group="card-lint", exit_on_error=False)
    async def _hub_lint(self) -> None:
        """Ask the Hub whether base_model exists and what the original's license is; then re-lint."""
        if self.folder is None:
            return
        text = self.editor.text
        base = (split_card(text).meta or {}).get("base_model")
        try:
            license_, known, notes = await CardService(self.app.ctx).hub_facts(text, self.source)
        except MlxtuiError as error:
            self.hub_notes = [str(error)]
        else:
            self.source_license = license_ or self.source_license
            if isinstance(base, str):
                self.base_known[base] = known
            self.hub_notes = notes
        self._refresh_lint()

    def _show_state(self) -> None:
        state = self.query_one("#card-state", Static)
        if self.folder is None:
            state.update("no folder")
            return
        dirty = self.editor.text != (self.on_disk or "")
        view = "preview" if self.query_one("#card-view", ContentSwitcher).current != "card-editor" else "edit"
        label = "unsaved · draft kept" if dirty else ("saved" if self.on_disk is not None else "new")
        state.update(Text(f"{printable(self.folder.name, newlines=False)} · {label} · {view}"))
        state.set_class(dirty, "-dirty")

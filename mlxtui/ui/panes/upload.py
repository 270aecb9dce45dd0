"""Upload an MLX folder to the Hub: account, target, preflight checklist, confirmation, progress, verification.

Nothing is sent before the confirmation. A re-run after an interruption sends only what the server lacks, and
every upload ends by comparing the remote files with the local ones. A check line that names files (a secret, a
link, an unexpected file) can be excluded with `x`. The token is never shown.
"""

from __future__ import annotations

import threading
from contextlib import aclosing
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, OptionList, ProgressBar, Select, Static
from textual.widgets.option_list import Option

from mlxtui.services.workflow import short_path
from mlxtui.ui.failures import ReportsFailures
from mlxtui.format import human_bytes, printable
from mlxtui.services.errors import CancelledByUser, MlxtuiError
from mlxtui.services.events import Notice, UploadFinished, UploadProgress, UploadStage
from mlxtui.services.upload import Identity, UploadPlan, UploadService, finished_summary, suggest_repo_name
from mlxtui.ui.messages import HubChanged, TargetChosen
from mlxtui.ui.screens.upload_confirm import UploadConfirmDialog
from mlxtui.ui.panes import pane_css
from mlxtui.ui.widgets.model_suggester import ModelSuggester

__all__ = ["UploadPane"]

_MARKS = {"ok": ("✓", "green"), "warning": ("!", "yellow"), "error": ("✗", "red")}


class UploadPane(ReportsFailures, Vertical):
    """Upload an MLX folder to the Hub."""

    DEFAULT_CSS = pane_css(__file__)
    SCOPED_CSS = False  # the stylesheet names the pane in its own selectors

    BINDINGS = [
        Binding("ctrl+r", "check", "Check", id="upload.check"),
        Binding("ctrl+g", "upload", "Upload…", id="upload.start"),
        Binding("x", "exclude", "Exclude file", id="upload.exclude", show=False),
        Binding("escape", "cancel", "Cancel upload", id="upload.cancel", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.identity: Identity | None = None
        self.plan: UploadPlan | None = None
        self.uploading = False
        #: files the user excluded from this folder's upload (relative paths)
        self.exclude: set[str] = set()
        #: the visibility the user ticked; None: keep an existing repo's (the box then shows it), new ones public
        self._private_asked: bool | None = None
        self._cancel: threading.Event | None = None
        self._asked = False  # a folder was asked for (a message, the field): never replaced by the newest

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/path/to/mlx-model-folder, then Enter", id="upload-folder",
                    suggester=ModelSuggester(lambda: self.app.ctx, repos=False))  # type: ignore[attr-defined]
        yield Static("Account: not checked yet", id="upload-account")
        with Horizontal(id="upload-target"):
            yield Label("Repo", classes="upload-label")
            yield Select[str]([], prompt="namespace", id="upload-namespace", compact=True, allow_blank=True)
            yield Label("/", classes="upload-slash")
            yield Input(placeholder="model-4bit", id="upload-name", compact=True,  # owner/… completes existing repos
                        suggester=ModelSuggester(lambda: self.app.ctx, paths=False))  # type: ignore[attr-defined]
            yield Checkbox("private", id="upload-private", compact=True)
        with Horizontal(id="upload-buttons"):
            yield Button("Check (ctrl+r)", id="upload-check", compact=True)
            yield Button("Upload… (ctrl+g)", id="upload-go", variant="primary", compact=True, disabled=True)
        yield Static("Preflight", classes="upload-title")
        yield OptionList(id="upload-checks")
        with Vertical(id="upload-progress-box"):
            # a total from the start: an indeterminate bar animates 15 times a second, hidden or not
            yield ProgressBar(total=1, id="upload-progress", show_eta=False)
            yield Static("", id="upload-status")

    def on_mount(self) -> None:
        self.query_one("#upload-progress-box").display = False

    # -- contract ---------------------------------------------------------------------------------

    def on_show(self) -> None:
        """Reached with nothing open (a digit, a tab click): the model in work, else the newest conversion."""
        if not self._asked and not self.query_one("#upload-folder", Input).value.strip():
            self._open_latest()

    @work(exclusive=True, group="upload-latest", exit_on_error=False)
    async def _open_latest(self) -> None:
        import asyncio

        from mlxtui.services.workflow import folder_to_open

        work = getattr(self.app, "work", None)
        folder = await asyncio.to_thread(folder_to_open, work, self.app.ctx)  # type: ignore[attr-defined]
        if folder is not None and not self._asked and not self.query_one("#upload-folder", Input).value.strip():
            self.open_folder(folder)
            if work is not None and work.target and work.folder == folder:  # the target chosen before
                self.query_one("#upload-name", Input).value = work.target

    def expect_folder(self) -> None:
        """The app is about to open a folder here: being shown must not open the newest conversion."""
        self._asked = True

    def open_folder(self, path: str) -> None:
        """Prepare an upload of the MLX folder at `path`: suggest a name, check the account, run the preflight."""
        self._asked = True
        self.query_one("#upload-folder", Input).value = short_path(path)  # ~ for home; the same folder
        self._use_folder(path)

    @on(Input.Submitted, "#upload-folder")
    def _folder_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self._asked = True
            self._use_folder(event.value.strip())

    def _use_folder(self, path: str) -> None:
        folder = Path(path).expanduser()
        if folder.is_dir():
            self.query_one("#upload-name", Input).value = suggest_repo_name(folder)
        self.exclude = set()
        self._private_asked = None
        self.plan = None
        self._show_plan()
        self._prepare()

    @on(Input.Submitted, "#upload-name")
    def _name_submitted(self) -> None:
        self.action_check()

    @on(Input.Changed, "#upload-name")
    @on(Select.Changed, "#upload-namespace")
    @on(Checkbox.Changed, "#upload-private")
    def _target_changed(self) -> None:
        """A changed target invalidates the last preflight: it must be checked again before an upload."""
        if self.plan is None or self.uploading:
            return
        private = self.query_one("#upload-private", Checkbox).value
        repo_id = self._repo_id()
        # late Changed messages from filling the form must not throw away a preflight of the same target
        if repo_id not in (self.plan.repo_id, self.plan.repo_id.split("/", 1)[-1]) or private != self.plan.private:
            self.plan = None
            self.query_one("#upload-go", Button).disabled = True

    @on(Checkbox.Changed, "#upload-private")
    def _private_toggled(self, event: Checkbox.Changed) -> None:
        # the box showing an existing repo's visibility is not a request to change it; a tick by the user is
        if self.plan is None or event.value != self.plan.private:
            self._private_asked = event.value

    @on(Button.Pressed, "#upload-check")
    def _check_pressed(self) -> None:
        self.action_check()

    @on(Button.Pressed, "#upload-go")
    def _go_pressed(self) -> None:
        self.action_upload()

    # -- account and preflight ------------------------------------------------------------------------

    @work(exclusive=True, group="upload-check", exit_on_error=False)
    async def _prepare(self) -> None:
        await self._whoami()
        await self._preflight()

    async def _whoami(self) -> None:
        account = self.query_one("#upload-account", Static)
        account.update("Account: checking…")
        try:
            self.identity = await UploadService(self.app.ctx).whoami()
        except MlxtuiError as error:
            self.identity = None
            account.update(Text(f"Account: {error}", style="red"))
            return
        me = self.identity
        write_orgs = [o for o in me.writable if o != me.user]
        read_orgs = [o for o in me.orgs if o not in me.writable]
        line = f"Account: {me.user}"
        line += f" · can write to {', '.join(write_orgs)}" if write_orgs else " · no orgs with write access"
        if read_orgs:
            line += f" · read-only in {', '.join(read_orgs)}"
        if me.role == "read":
            line += " · READ-ONLY token"
        account.update(Text(printable(line, newlines=False)))  # names from the server: never markup
        select = self.query_one("#upload-namespace", Select)
        current = select.value if isinstance(select.value, str) else None
        namespaces = list(me.writable) or [me.user]
        select.set_options([(Text(printable(ns, newlines=False)), ns) for ns in namespaces])  # names from the server
        select.value = current if current in namespaces else namespaces[0]

    def action_check(self) -> None:
        if self.uploading:
            return
        self._run_preflight()

    @work(exclusive=True, group="upload-check", exit_on_error=False)
    async def _run_preflight(self) -> None:
        if self.identity is None:
            await self._whoami()
        await self._preflight()

    def _repo_id(self) -> str:
        name = self.query_one("#upload-name", Input).value.strip()
        namespace = self.query_one("#upload-namespace", Select).value
        if "/" in name or not isinstance(namespace, str):
            return name
        return f"{namespace}/{name}"

    async def _preflight(self) -> None:
        folder = self.query_one("#upload-folder", Input).value.strip()
        if not folder:
            return
        repo_id = self._repo_id()
        if not repo_id:
            self.notify("Give the repo a name.", severity="warning")
            return
        checks = self.query_one("#upload-checks", OptionList)
        checks.clear_options()
        checks.add_option(Option(Text("checking…", style="dim"), disabled=True))
        try:
            self.plan = await UploadService(self.app.ctx).preflight(folder, repo_id, private=self._private_asked,
                                                                    exclude=sorted(self.exclude))
        except MlxtuiError as error:
            self.plan = None
            checks.clear_options()
            checks.add_option(Option(Text(f"✗ {printable(error, newlines=False)}", style="red")))
            self.query_one("#upload-go", Button).disabled = True
            return
        self._show_plan()
        # the checked target is the model in work's target: the top bar and the card follow it
        self.post_message(TargetChosen(self.plan.repo_id))

    def _show_plan(self) -> None:
        checks = self.query_one("#upload-checks", OptionList)
        checks.clear_options()
        go = self.query_one("#upload-go", Button)
        plan = self.plan
        if plan is None:
            go.disabled = True
            return
        box = self.query_one("#upload-private", Checkbox)
        if box.value != plan.private:
            box.value = plan.private  # an existing repo's visibility, kept unless the user ticks otherwise
        for check in plan.checks:
            mark, style = _MARKS[check.status]
            hint = " (x: exclude)" if check.files and check.status == "error" else ""
            checks.add_option(Option(Text.assemble((f"{mark} ", style), (f"{check.name}: ", "bold"),
                                                   printable(check.detail, newlines=False), (hint, "dim"))))
        visibility = plan.visibility_change or ("private" if plan.private else "public")
        summary = (
            f"→ {plan.repo_id} ({visibility}) · {len(plan.files)} files, {human_bytes(plan.total_bytes)}"
            + (f" · deletes {len(plan.deletions)} on the Hub" if plan.deletions else "")
        )
        checks.add_option(Option(Text(summary, style="bold" if plan.ok else "dim"), disabled=True))
        go.disabled = not plan.ok

    def action_exclude(self) -> None:
        """Exclude the files the highlighted check line names (a secret, a link, an unexpected file) and check again."""
        checks = self.query_one("#upload-checks", OptionList)
        if self.uploading or self.plan is None or checks.highlighted is None:
            return
        index = checks.highlighted
        if index >= len(self.plan.checks) or not self.plan.checks[index].files:
            self.notify("This line names no file to exclude.", severity="warning")
            return
        names = self.plan.checks[index].files
        self.exclude.update(names)
        self.notify(f"Excluded {printable(', '.join(names), newlines=False)}: not sent, not read.", title="Upload")
        self._run_preflight()

    # -- upload ---------------------------------------------------------------------------------------

    def action_upload(self) -> None:
        if self.uploading:
            return
        if self.plan is None:
            self.notify("Check first (ctrl+r): nothing is sent before the preflight passes.", severity="warning")
            return
        if not self.plan.ok:
            self.notify("The preflight found problems (marked ✗): fix them, then check again.", severity="error")
            return
        plan = self.plan

        def answered(go: bool | None) -> None:
            if go:
                self._upload(plan)

        self.app.push_screen(UploadConfirmDialog(plan), answered)

    @work(exclusive=True, group="upload", exit_on_error=False)
    async def _upload(self, plan: UploadPlan) -> None:
        box = self.query_one("#upload-progress-box")
        bar = self.query_one("#upload-progress", ProgressBar)
        status = self.query_one("#upload-status", Static)
        box.display = True
        bar.update(total=max(plan.total_bytes, 1), progress=0)
        self.uploading = True
        self._cancel = cancel = threading.Event()
        self.query_one("#upload-go", Button).disabled = True
        stage = ""
        try:
            async with aclosing(UploadService(self.app.ctx).upload(plan, cancel=cancel)) as events:
                async for event in events:
                    match event:
                        case UploadStage(text=text):
                            stage = printable(text, newlines=False)
                            status.update(Text(stage))
                        case Notice(text=text):  # rate limited: huggingface_hub waits and retries
                            status.update(Text(f"{stage}\n{printable(text, newlines=False)}", style="yellow"))
                        case UploadProgress() as p:
                            bar.update(total=max(p.bytes_total, 1), progress=p.bytes_done)
                            status.update(Text(
                                f"{stage}\n{p.files_done}/{p.files_total} files · {human_bytes(p.bytes_done)} of "
                                f"{human_bytes(p.bytes_total)} · {human_bytes(p.bytes_per_second)}/s"
                            ))
                        case UploadFinished() as done:
                            bar.update(total=1, progress=1)
                            status.update(
                                Text.assemble(
                                    ("✓ Uploaded and verified ", "green bold"),
                                    finished_summary(done) + "\n",
                                    (printable(done.url, newlines=False), "underline"),
                                )
                            )
                            self.notify(f"{done.repo_id} is online and matches the local folder.", title="Uploaded")
                            self.post_message(HubChanged(done.repo_id))  # Search lists it without ctrl+r
        except CancelledByUser as error:
            status.update(Text(printable(error), style="yellow"))
            self.notify(str(error), severity="warning")
        except MlxtuiError as error:
            status.update(Text(printable(error), style="red"))
            self.notify(str(error), severity="error", timeout=15)
        finally:
            self.uploading = False
            self._cancel = None
            self.query_one("#upload-go", Button).disabled = self.plan is None or not self.plan.ok

    def action_cancel(self) -> None:
        """Ask a running upload to stop: before the commit nothing is published; after it was sent, the service
        checks the Hub and the status line says what it holds (the worker keeps running until it knows).

        With no upload running, Escape leaves the field for the tab bar, as everywhere else."""
        if self.uploading and self._cancel is not None:
            self._cancel.set()
            self.query_one("#upload-status", Static).update(Text("Cancelling…", style="yellow"))
        else:
            self.app.action_leave_field()  # type: ignore[attr-defined]  # nothing to stop: out of the form

"""Convert to MLX: every option of mlx_lm.convert, a queue of variants, live progress of the job, its log,
and the list of jobs (running ones survive closing mlxtui; selecting one reattaches to it).

The rules live in the service (ConvertOptions.problems); the pane shows them and refuses to start.
"""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, DataTable, Input, RichLog, Select, Static

from mlxtui.services.workflow import short_path
from mlxtui.ui.failures import ReportsFailures
from mlxtui.format import human_bytes, printable
from mlxtui.services.convert import (
    DTYPES,
    FORM_BITS,
    MODE_FIXED,
    MODES,
    RECIPES,
    ConvertOptions,
    ConvertService,
    report_problems,
)
from mlxtui.services.errors import MlxtuiError
from mlxtui.services.modelfolder import read_config, source_dtype
from mlxtui.services.events import ConvertFinished, ConvertLog, ConvertProgress, ConvertVariantDone
from mlxtui.ui.messages import ChatWithModel, ConversionFinished, EditCard, UploadFolder
from mlxtui.ui.screens.confirm import ConfirmDialog
from mlxtui.ui.widgets.progress import ProgressRow, human_duration
from mlxtui.ui.panes import pane_css
from mlxtui.ui.widgets.model_suggester import ModelSuggester

__all__ = ["ConvertPane", "TRUST_REMOTE_CODE_WARNING"]

TRUST_REMOTE_CODE_WARNING = (
    "Trusting remote code lets this conversion import and run Python files that come with the model "
    "(its tokenizer or architecture code) with your user's permissions: they can read your files and tokens, "
    "or install anything. Only switch this on for a repo whose code you have read or whose authors you trust."
)
_GROUPS = (16, 32, 64, 128)
#: Escape on a job older than this asks first (a conversion may have run for hours)
CONFIRM_CANCEL_AFTER_S = 5.0
_ROWS = ("download", "files", "load", "quantize", "save")


class ConvertPane(ReportsFailures, Vertical):
    """Convert a repo or local folder to MLX, as one job or a queue of variants."""

    DEFAULT_CSS = pane_css(__file__)
    SCOPED_CSS = False  # the stylesheet names the pane in its own selectors

    BINDINGS = [
        Binding("ctrl+r", "run", "Convert", id="convert.run"),
        Binding("ctrl+t", "queue", "Queue", id="convert.queue"),
        Binding("escape", "cancel", "Cancel job", id="convert.cancel"),
        # the hand-off of a finished conversion (shown once there is one): one key to each next step
        Binding("h", "chat_result", "Chat", id="convert.chat"),
        Binding("e", "card_result", "Card", id="convert.card"),
        Binding("u", "upload_result", "Upload", id="convert.upload"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.report: dict[str, Any] | None = None
        self.queue: list[ConvertOptions] = []
        self.job_id: str | None = None
        #: Escape on a job that has run longer than this asks before cancelling it
        self.confirm_after_s = CONFIRM_CANCEL_AFTER_S
        self.job_labels: list[str] = []
        self._output_custom = False
        self._setting_output = False
        self._trust_confirmed = False
        self._service: ConvertService | None = None
        self._variant = -1
        self._results: list[Text] = []
        self._reserved: set[Path] = set()  # outputs of running jobs, refreshed with the jobs list
        #: the folders the job being shown wrote, and its source: what Chat, Card and Upload are offered
        self.outputs: list[str] = []
        self._job_source: str | None = None
        self._not_started = False  # the status line says why the last start was refused
        self._finished = False  # the job being shown finished and wrote `outputs`

    # -- layout -----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="convert-scroll"):
            with Horizontal(id="convert-source-row", classes="convert-row"):
                yield Input(placeholder="org/name or /path/to/model-folder", id="convert-source",
                            suggester=ModelSuggester(lambda: self.app.ctx))  # type: ignore[attr-defined]
                yield Input(placeholder="revision", id="convert-revision")
            yield Static("", id="convert-verdict")
            with Horizontal(id="convert-quant-row", classes="convert-row"):
                yield Select([(f"{b} bits", b) for b in FORM_BITS], value=4, allow_blank=False, id="convert-bits")
                yield Select([(f"group {g}", g) for g in _GROUPS], value=64, allow_blank=False, id="convert-group")
                yield Select([(m, m) for m in MODES], value="affine", allow_blank=False, id="convert-mode")
                yield Select([(r, r) for r in RECIPES], prompt="no recipe", allow_blank=True, id="convert-recipe")
            with Horizontal(id="convert-more-row", classes="convert-row"):
                yield Checkbox("Quantize", True, id="convert-quantize")
                yield Select([(d, d) for d in DTYPES], prompt="dtype auto", allow_blank=True, id="convert-dtype")
                yield Checkbox("Dequantize", False, id="convert-dequantize")
                yield Checkbox("Trust remote code", False, id="convert-trust")
            with Horizontal(id="convert-output-row", classes="convert-row"):
                yield Input(placeholder="output folder (default: <models dir>/<name>-<quantization>)", id="convert-output")
            yield Static("", id="convert-output-note")
            yield Static("", id="convert-problems")
            with Horizontal(id="convert-actions", classes="convert-row"):
                yield Button("Convert", id="convert-run", variant="primary")
                yield Button("Add to queue", id="convert-add")
                yield Button("Clear queue", id="convert-clear")
                yield Static("", id="convert-queue")
            with Vertical(id="convert-progress"):
                yield Static("No job running.", id="convert-job")
                yield ProgressRow("download", id="progress-download")
                yield ProgressRow("files", id="progress-files")
                yield ProgressRow("load", id="progress-load")
                yield ProgressRow("quantize", id="progress-quantize")
                yield ProgressRow("save", id="progress-save")
                yield Static("", id="convert-results")
            yield RichLog(id="convert-log", max_lines=2000, wrap=True, markup=False)
            table: DataTable[str] = DataTable(id="convert-jobs", cursor_type="row", zebra_stripes=True)
            table.add_column("Job", key="job")
            table.add_column("State", key="state")
            table.add_column("Source", key="source")
            table.add_column("Variants", key="variants")
            yield table

    @property
    def service(self) -> ConvertService:
        if self._service is None:
            self._service = ConvertService(self.app.ctx)  # type: ignore[attr-defined]
        return self._service

    def on_mount(self) -> None:
        self.query_one("#convert-log", RichLog).write("The worker's output appears here.")
        self._form_changed()
        self.refresh_jobs(attach=True)

    # -- contract ---------------------------------------------------------------------------------

    def prefill(self, source: str, revision: str | None = None, report: dict[str, Any] | None = None) -> None:
        """Fill the form for `source` (called by the app for ConvertModel); `report` is Inspect's verdict."""
        self.report = report
        self.query_one("#convert-source", Input).value = source
        self.query_one("#convert-revision", Input).value = revision or ""
        self._output_custom = False
        self._form_changed()

    # -- the form ---------------------------------------------------------------------------------

    def options(self) -> ConvertOptions:
        """The options the form shows, as the service takes them."""
        quantize = bool(self.query_one("#convert-quantize", Checkbox).value)
        recipe = self.query_one("#convert-recipe", Select).value
        dtype = self.query_one("#convert-dtype", Select).value
        mode = str(self.query_one("#convert-mode", Select).value)
        return ConvertOptions(
            quantize=quantize,
            q_bits=int(self.query_one("#convert-bits", Select).value) if quantize else None,  # type: ignore[arg-type]
            q_group_size=int(self.query_one("#convert-group", Select).value) if quantize else None,  # type: ignore[arg-type]
            q_mode=mode if quantize else "affine",
            quant_predicate=recipe if isinstance(recipe, str) and recipe in RECIPES else None,
            dtype=dtype if isinstance(dtype, str) and dtype in DTYPES else None,
            dequantize=bool(self.query_one("#convert-dequantize", Checkbox).value),
            trust_remote_code=bool(self.query_one("#convert-trust", Checkbox).value),
        )

    def _source(self) -> str:
        return self.query_one("#convert-source", Input).value.strip()

    def _source_dtype(self) -> str | None:
        """The source's dtype when cheaply known (Inspect's report, or a local config.json)."""
        if self.report and isinstance(self.report.get("dtype"), str):
            return self.report["dtype"]
        source = self._source()
        if source and Path(source).expanduser().is_dir():
            try:  # the bounded model-folder reader: a hostile config.json is a None here, and the plan names it
                return source_dtype(read_config(Path(source).expanduser()))
            except (MlxtuiError, OSError):
                return None
        return None

    def _form_changed(self) -> None:
        """Re-check the options and the output folder; show problems and enable Convert only when none."""
        options = self.options()
        problems = options.problems()
        verdict = self.query_one("#convert-verdict", Static)
        unsupported = report_problems(self.report)
        if any(o.dequantize for o in [options, *self.queue]):
            unsupported = [p for p in unsupported if "already an MLX" not in p]
        verdict.update("Inspect found this model can't be converted: " + " ".join(unsupported) if unsupported else "")
        verdict.display = bool(unsupported)
        problems += [] if not unsupported else ["Convert is refused for this model (see above)."]
        self._update_output(options, problems)
        text = self.query_one("#convert-problems", Static)
        text.update("\n".join(f"• {p}" for p in problems))
        text.display = bool(problems)
        self.query_one("#convert-run", Button).disabled = bool(problems) and not (self.queue and not unsupported)
        self.query_one("#convert-add", Button).disabled = bool(options.problems())
        self.query_one("#convert-clear", Button).display = bool(self.queue)
        labels = ", ".join(o.label(self._source_dtype()) for o in self.queue)
        self.query_one("#convert-queue", Static).update(f"Queue: {labels}" if self.queue else "")
        self.query_one("#convert-run", Button).label = f"Convert queue ({len(self.queue)})" if self.queue else "Convert"

    def _update_output(self, options: ConvertOptions, problems: list[str]) -> None:
        out = self.query_one("#convert-output", Input)
        note = self.query_one("#convert-output-note", Static)
        source = self._source()
        out.disabled = bool(self.queue)
        if self.queue:
            self._output_custom = False
            self._set_output("")
            note.update("Each queued variant goes to its own default folder (<models dir>/<name>-<label>).")
            return
        if not self._output_custom:
            if not source or options.problems():
                self._set_output("")
                note.update("")
                return
            free, taken = self.service.suggest_output(source, options, self._source_dtype(), reserved=self._reserved)
            self._set_output(short_path(free))  # ~ for the home folder: read as a person would; same folder
            note.update(f"{taken.name} already exists and is never overwritten: using {free.name}." if taken else "")
            return
        path = Path(out.value).expanduser() if out.value.strip() else None
        if path is not None and path.exists():
            from mlxtui.services.convert import free_output

            suggestion = free_output(path)
            problems.append(f"{path.name} already exists and is never overwritten; {suggestion.name} is free.")
            note.update(f"Free name: {suggestion}")
        else:
            note.update("")

    def _set_output(self, value: str) -> None:
        out = self.query_one("#convert-output", Input)
        if out.value != value:
            self._setting_output = True
            out.value = value

    @on(Input.Changed, "#convert-source")
    @on(Input.Changed, "#convert-revision")
    def _source_changed(self, event: Input.Changed) -> None:
        if event.input.id == "convert-source" and self.report and self.report.get("repo_id") not in (None, event.value.strip()):
            self.report = None  # the verdict was about another model
        if self._not_started:  # "Not started: there is no folder '4'…" was about the old source
            self._not_started = False
            self.query_one("#convert-job", Static).update("No job running.")
        self._form_changed()

    @on(Input.Changed, "#convert-output")
    def _output_changed(self, event: Input.Changed) -> None:
        if self._setting_output:
            self._setting_output = False
            return
        self._output_custom = bool(event.value.strip())
        self._form_changed()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "convert-mode" and event.value in MODE_FIXED:
            bits, group = MODE_FIXED[str(event.value)]
            self.query_one("#convert-bits", Select).value = bits
            self.query_one("#convert-group", Select).value = group
        elif event.select.id == "convert-mode" and event.value == "affine":
            if self.query_one("#convert-group", Select).value == 16:
                self.query_one("#convert-group", Select).value = 64
        self._form_changed()

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "convert-trust" and event.value and not self._trust_confirmed:
            self.app.push_screen(
                ConfirmDialog(
                    "Trust remote code?", TRUST_REMOTE_CODE_WARNING, confirm="Trust this repo's code", danger=True
                ),
                self._trust_answered,
            )
            return
        if event.checkbox.id == "convert-trust" and not event.value:
            self._trust_confirmed = False
        self._form_changed()

    def _trust_answered(self, confirmed: bool | None) -> None:
        box = self.query_one("#convert-trust", Checkbox)
        if confirmed:
            self._trust_confirmed = True
        else:
            box.value = False
        self._form_changed()

    # -- actions ----------------------------------------------------------------------------------

    @on(Button.Pressed, "#convert-run")
    def action_run(self) -> None:
        """Check and start the job (the queue when it has variants, else the form)."""
        if self.query_one("#convert-run", Button).disabled:
            self.notify("Fix the problems shown in the form first.", severity="warning")
            return
        variants = list(self.queue) or [self.options()]
        outputs: list[str | None] = [None] * len(variants)
        if not self.queue:
            outputs = [self.query_one("#convert-output", Input).value.strip() or None]
        revision = self.query_one("#convert-revision", Input).value.strip() or None
        self.start_job(self._source(), variants, revision, outputs)

    @on(Button.Pressed, "#convert-add")
    def action_queue(self) -> None:
        """Add the form's options to the queue of variants made from one download."""
        options = self.options()
        if options.problems():
            self.notify("Fix the problems shown in the form first.", severity="warning")
            return
        if options in self.queue:
            self.notify("That variant is already queued.", severity="warning")
            return
        self.queue.append(options)
        self._form_changed()

    @on(Button.Pressed, "#convert-clear")
    def _clear_queue(self) -> None:
        self.queue.clear()
        self._form_changed()

    def action_cancel(self) -> None:
        """Escape: cancel the job being shown (the worker stops, partial output is removed); a job that has
        run longer than `confirm_after_s` is cancelled only after a yes in a confirm dialog."""
        if self.job_id is not None:
            self.cancel_job(self.job_id)
        else:
            self.app.action_leave_field()  # type: ignore[attr-defined]  # nothing to cancel: out of the form

    @work(exclusive=True, group="convert-cancel", exit_on_error=False)
    async def cancel_job(self, job_id: str) -> None:
        import asyncio
        import time

        try:
            job = await asyncio.to_thread(self.service.job, job_id)
            if not job.active:
                self.app.action_leave_field()  # type: ignore[attr-defined]  # finished already: out of the form
                return
            ran_s = max(0.0, time.time() - job.created_ts)
            if ran_s > self.confirm_after_s:
                question = (f"This conversion has run for {human_duration(ran_s)}. Cancelling stops it and deletes "
                            "its partial output (files already downloaded stay in the cache).")
                dialog = ConfirmDialog("Cancel the conversion?", question, confirm="Cancel conversion",
                                       cancel="Keep running", danger=True)
                if not await self.app.push_screen_wait(dialog):
                    return
            self.query_one("#convert-job", Static).update(f"Cancelling job {job_id}…")
            job = await self.service.cancel(job_id)
        except MlxtuiError as error:
            self.notify(str(error), severity="error")
            return
        # no toast here: the job's own "cancelled" event (followed by this pane) is the one toast for it
        if not any(w.group == "convert" and w.is_running for w in self.workers):
            self.query_one("#convert-job", Static).update(
                f"Job {job_id} cancelled: {printable(job.message or 'cancelled', newlines=False)}")

    def worker_failed(self, worker: Any, message: str) -> None:
        """The app reported a worker of this pane that died: the status line says so instead of 'Checking…'."""
        if worker.group in ("convert", "convert-cancel"):
            self.query_one("#convert-job", Static).update(f"Failed: {printable(message, newlines=False)}")

    # -- running ----------------------------------------------------------------------------------

    @work(exclusive=True, group="convert", exit_on_error=False)
    async def start_job(
        self, source: str, variants: list[ConvertOptions], revision: str | None, outputs: list[str | None]
    ) -> None:
        """Plan (every check, before any download), start the worker process, then follow it."""
        status = self.query_one("#convert-job", Static)
        self._not_started = False
        status.update(f"Checking {source}…")
        try:
            plan = await self.service.plan(source, variants, revision=revision, outputs=outputs, report=self.report)
            job = await self.service.start(plan)
        except MlxtuiError as error:
            reason = printable(str(error), newlines=False)
            status.update(f"Not started: {reason}")
            self._not_started = True
            self.notify(reason, severity="error", title="Convert")
            return
        self.queue.clear()
        self._output_custom = False
        self._form_changed()
        self.refresh_jobs()
        await self._follow(job.id, [v.label for v in job.variants], source)

    @work(exclusive=True, group="convert", exit_on_error=False)
    async def attach(self, job_id: str) -> None:
        """Reattach to a job (running or finished): replay its events and follow it to the end."""
        try:
            job = self.service.job(job_id)
        except MlxtuiError as error:
            self.notify(str(error), severity="error")
            return
        await self._follow(job.id, [v.label for v in job.variants], job.source)

    async def _follow(self, job_id: str, labels: list[str], source: str) -> None:
        self.job_id = job_id
        self.job_labels = labels
        self.outputs = []
        self._job_source = source
        self._finished = False
        self.refresh_bindings()
        self._variant = -2
        for name in _ROWS:
            self.query_one(f"#progress-{name}", ProgressRow).reset()
        self._results = []
        self.query_one("#convert-results", Static).update("")
        log = self.query_one("#convert-log", RichLog)
        log.clear()
        self.query_one("#convert-job", Static).update(f"Job {job_id}: {printable(source, newlines=False)} → {', '.join(labels)}")
        progress = self.query_one("#convert-progress")
        self.query_one("#convert-scroll", VerticalScroll).scroll_to_widget(progress, animate=False, top=True)
        try:
            async with aclosing(self.service.follow(job_id)) as events:
                async for event in events:
                    self.show_event(event)
        except MlxtuiError as error:
            self.notify(str(error), severity="error")
        self.refresh_jobs()

    def show_event(self, event: object) -> None:
        """Draw one job event (public so tests and snapshots can feed events without a worker)."""
        match event:
            case ConvertLog(text=text):
                self.query_one("#convert-log", RichLog).write(printable(text, newlines=False))
            case ConvertProgress() as progress:
                self._show_progress(progress)
            case ConvertVariantDone() as done:
                label = self._label(done.variant)
                bpw = f" · {done.bits_per_weight:.3f} bits/weight" if done.bits_per_weight else ""
                # Figures first and the path on its own line: at 80 columns a long path must not
                # push the figures off screen (or under a toast).
                facts = f"✓ {label}{bpw} · {human_bytes(done.size_bytes)} · {human_duration(done.elapsed_s)}"
                self._results.append(Text(f"{facts}\n  {short_path(done.output)}", overflow="fold"))
                self.outputs.append(str(done.output))
                self.query_one("#convert-results", Static).update(Text("\n").join(self._results))
            case ConvertFinished(state=state, message=message):
                title = self.query_one("#convert-job", Static)
                if state == "done":
                    title.update(f"Job {event.job_id} done. Next: h Chat · e Card · u Upload")
                    self._finished = True
                    self.refresh_bindings()
                    if self.outputs:
                        # the newest output becomes the model in work (top bar; Card and Upload open on it)
                        self.post_message(ConversionFinished(self.outputs[-1], self._job_source))
                    self.notify("Conversion finished. Next: h Chat · e Card · u Upload.", title="Convert")
                else:
                    message = printable(message, newlines=False)
                    title.update(f"Job {event.job_id} {state}: {message}")
                    self.notify(message or state, title=f"Convert {state}", severity="warning" if state == "cancelled" else "error")

    # -- hand-off -----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Chat, Card and Upload are offered (and shown in the footer) once a conversion has finished."""
        if action in ("chat_result", "card_result", "upload_result"):
            return bool(self.outputs) and self._finished
        if action == "cancel":  # shown only with a job to cancel (the footer fits 80 columns); else Escape goes home
            return self.job_id is not None and not self._finished
        return True

    def action_chat_result(self) -> None:
        if self.outputs:
            self.post_message(ChatWithModel(self.outputs[-1]))

    def action_card_result(self) -> None:
        if self.outputs:
            self.post_message(EditCard(self.outputs[-1], self._job_source))

    def action_upload_result(self) -> None:
        if self.outputs:
            self.post_message(UploadFolder(self.outputs[-1]))

    def _label(self, variant: int) -> str:
        return self.job_labels[variant] if 0 <= variant < len(self.job_labels) else "all"

    def _show_progress(self, event: ConvertProgress) -> None:
        if event.variant >= 0 and event.variant != self._variant:
            self._variant = event.variant
            for name in ("load", "quantize", "save"):
                self.query_one(f"#progress-{name}", ProgressRow).reset()
            self.query_one("#convert-job", Static).update(
                f"Job {event.job_id}: variant {event.variant + 1} of {len(self.job_labels)} ({self._label(event.variant)})"
            )
            if self.is_mounted and self.app.is_running:
                self.refresh_jobs()  # the list shows each variant's state
        if event.stage == "download" and event.unit == "bytes":
            detail = f"{human_bytes(event.done)} of {human_bytes(event.total)}"
            if event.rate:
                detail += f" · {human_bytes(event.rate)}/s"
            if event.eta_s is not None and event.total and event.done < event.total:
                detail += f" · {human_duration(event.eta_s)} left"
            self.query_one("#progress-download", ProgressRow).set(event.done, event.total, detail)
        elif event.stage == "download":
            total = f"{event.total:g}" if event.total else "?"
            self.query_one("#progress-files", ProgressRow).set(event.done, event.total, f"{event.done:g} of {total} files")
        elif event.stage in ("load", "quantize", "save"):
            unit = {"load": "", "quantize": "layers", "save": "shards"}[event.stage]
            detail = f"{event.done:g} of {event.total:g} {unit}" if event.total and unit else ""
            if event.item:
                detail += f" · {event.item}"
            self.query_one(f"#progress-{event.stage}", ProgressRow).set(event.done, event.total, detail.strip(" ·"))

    # -- jobs list --------------------------------------------------------------------------------

    @work(exclusive=True, group="convert-jobs", exit_on_error=False)
    async def refresh_jobs(self, attach: bool = False) -> None:
        """Fill the jobs table; with `attach`, follow the newest running job (after a restart)."""
        import asyncio

        jobs = await asyncio.to_thread(self.service.jobs)
        self._reserved = {Path(v.output) for job in jobs if job.active for v in job.variants}
        table = self.query_one("#convert-jobs", DataTable)
        table.clear()
        for job in jobs:
            variants = ", ".join(f"{v.label} {v.state}" if v.state != job.state else v.label for v in job.variants)
            table.add_row(job.id, job.state, printable(job.source, newlines=False), variants, key=job.id)
        table.display = bool(jobs)
        if attach:
            running = [job for job in jobs if job.active]
            if running and self.job_id is None:
                self.notify(f"Reattached to running conversion {running[0].id}.", title="Convert")
                self.attach(running[0].id)

    @on(DataTable.RowSelected, "#convert-jobs")
    def _job_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.attach(str(event.row_key.value))

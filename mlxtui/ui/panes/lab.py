"""The Lab: build quantized variants from one model and choose between them from measured size, speed and quality.

The form takes the unquantized model's folder, the variants (8bit,4bit,4bit-g32,mxfp4,mixed_3_6,4bit-gptq ...)
and an optional evaluation text; Enter (or ctrl+r) runs the lab, Escape stops it. The table sorts by any
column (click its header, or `s` for the next one), ★ marks the variants no other beats on both size and KL
divergence, the plot draws size against KL, and the line under it says what the highlighted pick costs.
Enter on a row opens that variant in Chat; space marks rows, and `p` publishes the marked ones (or the
highlighted one), each to its own repo with cards that link each other (screens/lab_publish.py asks where).
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Static

from mlxtui.format import human_bytes, printable
from mlxtui.services.errors import MlxtuiError
from mlxtui.services.lab_report import pareto_names, pick_sentence, size_kl_plot
from mlxtui.ui.failures import ReportsFailures
from mlxtui.ui.focus import PaneFocus
from mlxtui.ui.messages import ChatWithModel
from mlxtui.ui.panes import pane_css

__all__ = ["LabPane", "COLUMNS"]

DEFAULT_VARIANTS = "8bit,6bit,4bit,4bit-g32,3bit,2bit"

#: (key, header, how to show the value); the key is also the sort key
COLUMNS: list[tuple[str, str, Any]] = [
    ("front", "★", None),
    ("name", "Variant", None),
    ("bits_per_weight", "bpw", lambda v: f"{v:.2f}"),
    ("bytes", "Size", human_bytes),
    ("peak_memory_bytes", "Peak", human_bytes),
    ("generation_tps", "tok/s", lambda v: f"{v:.0f}"),
    ("ttft_s", "TTFT", lambda v: f"{v:.2f}s"),
    ("perplexity", "PPL", lambda v: f"{v:.3f}"),
    ("perplexity_se", "±SE", lambda v: f"{v:.3f}"),
    ("kl_mean", "KL", lambda v: f"{v:.4f}"),
    ("kl_p99", "KL p99", lambda v: f"{v:.3f}"),
    ("top1_agreement", "Top-1", lambda v: f"{v * 100:.1f}%"),
    ("prompt_tps", "prompt/s", lambda v: f"{v:.0f}"),
]


class LabPane(ReportsFailures, PaneFocus, Vertical):
    """Run a lab, then compare its variants."""

    DEFAULT_CSS = pane_css(__file__)
    SCOPED_CSS = False
    HOME = "#lab-table"
    EDIT = "#lab-source"

    BINDINGS = [
        Binding("ctrl+r", "run", "Run lab", id="lab.run"),
        Binding("s", "sort_next", "Sort", tooltip="Sort by the next column", id="lab.sort"),
        Binding("r", "reverse", "Reverse", tooltip="Reverse the order", id="lab.reverse"),
        Binding("enter", "chat", "Chat", id="lab.chat"),
        Binding("space", "mark", "Mark", id="lab.mark"),
        Binding("p", "publish", "Publish", id="lab.publish"),
        Binding("escape", "stop", "Stop", id="lab.stop", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.result: dict[str, Any] | None = None
        self.sort_key = "bytes"
        self.sort_reverse = False
        self.running = False
        self.job_id: str | None = None
        self.marked: set[str] = set()  # variants chosen for publishing
        #: evaluation sequence length and count (the command's --seq-len and --max-sequences)
        self.seq_len = 256
        self.max_sequences = 64

    def compose(self) -> ComposeResult:
        with Horizontal(id="lab-form"):
            yield Input(placeholder="source: folder or repo id", id="lab-source")
            yield Input(DEFAULT_VARIANTS, placeholder="variants", id="lab-variants")
            yield Input(placeholder="text file or hf://datasets/… (built-in)", id="lab-data")
        yield Static("Name the unquantized model (folder or repo id); Enter measures its variants.", id="lab-status")
        table: DataTable[Any] = DataTable(id="lab-table", cursor_type="row", zebra_stripes=True)
        for key, header, _ in COLUMNS:
            table.add_column(header, key=key)
        yield table
        with Horizontal(id="lab-bottom"):
            yield Static("", id="lab-plot")
            with Vertical(id="lab-side"):
                yield Static("", id="lab-pick")
                yield Static("", id="lab-legend")

    # -- running ----------------------------------------------------------------------------------

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_run()

    def action_run(self) -> None:
        source = self.query_one("#lab-source", Input).value.strip()
        if not source:
            self.notify("Name the unquantized model's folder first.", severity="warning")
            return
        self.run_lab(source, self.query_one("#lab-variants", Input).value, self.query_one("#lab-data", Input).value.strip() or None)

    def action_stop(self) -> None:
        if self.running and self.job_id:
            self._cancel(self.job_id)
        else:
            self.app.action_leave_field()  # type: ignore[attr-defined]

    @work(group="lab-cancel", thread=True, exit_on_error=False)
    def _cancel(self, job_id: str) -> None:
        from mlxtui.services.lab_jobs import LabJobs

        self.app.call_from_thread(self._status, "Stopping…")
        LabJobs(self.app.ctx).cancel(job_id)  # type: ignore[attr-defined]

    def on_show(self) -> None:
        # a lab started earlier (by this app, or one that was closed) may still run: follow it again
        if not self.running:
            self._reattach()
        source = self.query_one("#lab-source", Input)
        work = getattr(self.app, "work", None)
        if not source.value and work is not None and work.source:
            source.value = work.source  # the model in work's original: what its variants are measured against

    @work(exclusive=True, group="lab", exit_on_error=False)
    async def _reattach(self) -> None:
        from mlxtui.services.lab_jobs import LabJobs

        jobs = LabJobs(self.app.ctx)  # type: ignore[attr-defined]
        job_id = await asyncio.to_thread(jobs.latest_active)
        if job_id is not None:
            await self._follow(jobs, job_id)

    @work(exclusive=True, group="lab", exit_on_error=False)
    async def run_lab(self, source: str, variants: str, data: str | None) -> None:
        """Plan (one sentence on a bad input, before any work), then start the lab as a detached job and follow it."""
        from mlxtui.services.lab import LabService
        from mlxtui.services.lab_jobs import LabJobs

        self.running = True  # from the first check on: showing the pane again must not replace this worker
        try:
            self._status("Checking…")
            plan = await LabService(self.app.ctx).plan(  # type: ignore[attr-defined]
                source, variants, data=data, seq_len=self.seq_len, max_sequences=self.max_sequences)
        except MlxtuiError as error:
            self.running = False
            self._status(str(error))
            self.notify(str(error), severity="error")
            return
        jobs = LabJobs(self.app.ctx)  # type: ignore[attr-defined]
        job_id = await asyncio.to_thread(jobs.start, plan)
        await self._follow(jobs, job_id)

    async def _follow(self, jobs: Any, job_id: str) -> None:
        """Show a lab job's events; leaving (closing the app) leaves the job running."""
        from mlxtui.services.lab import LabFinished, LabProgress, LabReferenceReady, LabVariantMeasured
        from mlxtui.services.lab_jobs import LabJobEnded

        self.running, self.job_id = True, job_id
        try:
            async with aclosing(jobs.follow(job_id)) as events:
                async for event in events:
                    match event:
                        case LabProgress(stage="queued", message=message):
                            self._status(f"{message} · Esc stops")
                        case LabProgress(stage=stage, variant=variant, done=done, total=total):
                            where = f" {variant}" if variant else ""
                            amount = f" {done:g}/{total:g}" if total else ""
                            self._status(f"{stage}{where}{amount} · Esc stops")
                        case LabReferenceReady(perplexity=ppl, cached=cached):
                            self._status(f"reference perplexity {ppl:.3f} ({'cached' if cached else 'computed'})")
                        case LabVariantMeasured(row=row):
                            self._status(f"{row['name']} measured: KL {row['kl_mean']:.4f}")
                        case LabFinished(result=result):
                            self.show_result(result)
                        case LabJobEnded(message=message):
                            self._status(message)
        finally:
            self.running = False

    def worker_failed(self, worker: Any, message: str) -> None:
        self._status(message)

    def _status(self, text: str) -> None:
        self.query_one("#lab-status", Static).update(Text(printable(text, newlines=False)))

    # -- showing ----------------------------------------------------------------------------------

    def show_result(self, result: dict[str, Any]) -> None:
        """Fill the table, the plot and the pick line from a lab result (services.lab.result_object)."""
        self.result = result
        ref = result["reference"]
        self._status(
            f"{ref['name']}: ppl {ref['perplexity']:.3f} ± {ref['perplexity_se']:.3f}, {human_bytes(ref['bytes'])} · "
            f"{result['sequences']}×{result['seq_len']} tokens of {result['eval_text'].split(':')[0]}"
        )
        self._fill()
        self._plot()

    def _rows(self) -> list[dict[str, Any]]:
        rows = list(self.result["variants"]) if self.result else []
        front = pareto_names(rows)
        rows = [{**row, "front": 0 if row["name"] in front else 1} for row in rows]
        return sorted(rows, key=lambda r: (r[self.sort_key], r["name"]), reverse=self.sort_reverse)

    def _fill(self) -> None:
        table = self.query_one("#lab-table", DataTable)
        current = self.selected()
        table.clear()
        for row in self._rows():
            cells = []
            for key, _, show in COLUMNS:
                if key == "front":
                    cells.append("★" if row["front"] == 0 else "")
                elif key == "name":
                    cells.append(Text(("✓ " if row["name"] in self.marked else "") + printable(row["name"], newlines=False)))
                elif show is None:
                    cells.append(Text(printable(str(row[key]), newlines=False)))
                else:
                    cells.append(show(row[key]))
            table.add_row(*cells, key=row["name"])
        if current is not None:
            table.move_cursor(row=table.get_row_index(current["name"]))
        self._pick()

    def _plot(self) -> None:
        rows = self.result["variants"] if self.result else []
        lines, markers = size_kl_plot(rows, width=28, height=4)
        legend = "  ".join(f"{m}={printable(n, newlines=False)}" for m, n in markers)
        self.query_one("#lab-plot", Static).update(Text("\n".join(lines)))
        self.query_one("#lab-legend", Static).update(Text(f"Plot: KL (log scale, up is worse) against size. {legend}"))

    def selected(self) -> dict[str, Any] | None:
        """The highlighted variant's row, or None."""
        if not self.result:
            return None
        table = self.query_one("#lab-table", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((r for r in self.result["variants"] if r["name"] == key), None)

    @on(DataTable.RowHighlighted, "#lab-table")
    def _pick(self) -> None:
        row = self.selected()
        text = pick_sentence(row, self.result["reference"]) if row and self.result else ""
        if row and self.result and row["name"] in pareto_names(self.result["variants"]):
            text += " · on the front: nothing else is both smaller and closer"
        self.query_one("#lab-pick", Static).update(Text(printable(text, newlines=False)))

    @on(DataTable.HeaderSelected, "#lab-table")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        self.sort_reverse = not self.sort_reverse if key == self.sort_key else False
        self.sort_key = key
        self._fill()

    def action_sort_next(self) -> None:
        keys = [key for key, _, _ in COLUMNS]
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.sort_reverse = False
        self._fill()
        self.notify(f"Sorted by {dict((k, h) for k, h, _ in COLUMNS)[self.sort_key]}", timeout=2)

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._fill()

    @on(DataTable.RowSelected, "#lab-table")
    def _row_selected(self) -> None:
        self.action_chat()

    def action_mark(self) -> None:
        row = self.selected()
        if row is not None:
            self.marked ^= {row["name"]}
            self._fill()

    def action_publish(self) -> None:
        """The marked variants (or the highlighted one), after the publish dialog: owner, visibility, repo ids."""
        chosen = [r for r in (self.result or {}).get("variants", []) if r["name"] in self.marked] or \
            [r for r in [self.selected()] if r is not None]
        if self.running or not chosen:
            self.notify("Run a lab first, then mark the variants to publish (space)." if not chosen else
                        "Wait for the lab to finish.", severity="warning")
            return
        self._ask_publish({r["name"]: r["path"] for r in chosen})

    @work(exclusive=True, group="lab-publish", exit_on_error=False)
    async def _ask_publish(self, folders: dict[str, str]) -> None:
        from pathlib import Path

        from mlxtui.services.upload_identity import whoami
        from mlxtui.ui.screens.lab_publish import PublishDialog

        try:
            owners = (await whoami(self.app.ctx)).writable  # type: ignore[attr-defined]
        except MlxtuiError as error:
            self._status(str(error))
            self.notify(str(error), severity="error")
            return
        answer = await self.app.push_screen_wait(PublishDialog(folders, owners))
        if answer is not None:
            await self._publish(Path(next(iter(folders.values()))).parent, list(folders), *answer)

    async def _publish(self, out_dir: Any, names: list[str], owner: str, private: bool) -> None:
        from mlxtui.services.events import UploadFinished, UploadProgress, UploadStage
        from mlxtui.services.lab_publish import PublishEvent, PublishPlanned, publish

        self._status("Checking every variant before sending anything…")
        done: list[str] = []
        try:
            async with aclosing(publish(self.app.ctx, out_dir, owner, names, private=private)) as events:  # type: ignore[attr-defined]
                async for event in events:
                    match event:
                        case PublishPlanned(repos=repos):
                            self._status(f"Publishing to {', '.join(repos.values())}")
                        case PublishEvent(variant=name, event=UploadStage(text=message)):
                            self._status(f"{name}: {message}")
                        case PublishEvent(variant=name, event=UploadProgress(bytes_done=sent, bytes_total=total)):
                            self._status(f"{name}: sending {human_bytes(sent)} of {human_bytes(total)}")
                        case PublishEvent(variant=name, event=UploadFinished(url=url)):
                            done.append(url)
                            self._status(f"{name} published: {url}")
        except MlxtuiError as error:
            sent = f" ({len(done)} published before it: {', '.join(done)})" if done else ""
            self._status(f"{error}{sent}")
            self.notify(f"{error}{sent}", severity="error")
            return
        self.marked.clear()
        self._fill()
        self._status(f"Published {len(done)}: {', '.join(done)}")
        self.notify(f"Published {len(done)} variant{'s' if len(done) != 1 else ''}.", title="Lab")

    def action_chat(self) -> None:
        row = self.selected()
        if row is not None:
            self.post_message(ChatWithModel(row["path"]))

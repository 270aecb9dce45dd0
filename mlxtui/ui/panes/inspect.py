"""Inspect a model before downloading it: the mlx-lm verdict, sizes, memory, chat template, existing conversions.

Only small files are read (config.json, model info, tokenizer_config.json / chat_template.jinja,
generation_config.json, the card's front matter). `c` opens Convert with the model filled in.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import ContentSwitcher, DataTable, Input, Static, TextArea, Tree
from textual.widgets.tree import TreeNode

from mlxtui.ui.failures import ReportsFailures
from mlxtui.ui.focus import PaneFocus
from mlxtui.format import human_bytes, human_count, printable
from mlxtui.services.errors import MlxtuiError
from mlxtui.services.events import Notice
from mlxtui.services.inspect import InspectReport
from mlxtui.ui.messages import ConvertModel
from mlxtui.ui.panes import pane_css
from mlxtui.ui.widgets.model_suggester import ModelSuggester

__all__ = ["InspectPane"]

#: nodes drawn in the config tree; a config with more is shown cut (the raw view, t, has it all)
MAX_TREE_NODES = 3000


def _safe(value: Any) -> Text:
    """Remote text (repo ids, card fields, config values) as plain Text: no markup, control characters shown."""
    return Text(printable(value if isinstance(value, str) else str(value), newlines=False))


def _fill_tree(node: TreeNode[Any], value: Any, budget: list[int]) -> None:
    """Add a JSON value under `node`: objects and lists become branches, scalars leaves (at most budget[0])."""
    items = (value.items() if isinstance(value, dict) else
             ((f"[{i}]", child) for i, child in enumerate(value)) if isinstance(value, list) else ())
    for key, child in items:
        if budget[0] <= 0:
            node.add_leaf(Text("… (more in the raw view: t)", style="italic"))
            return
        budget[0] -= 1
        _add_child(node, printable(str(key), newlines=False), child, budget)


def _add_child(node: TreeNode[Any], label: str, value: Any, budget: list[int]) -> None:
    if isinstance(value, (dict, list)):
        size = f"{{{len(value)}}}" if isinstance(value, dict) else f"[{len(value)}]"
        branch = node.add(Text.assemble((label, "bold"), f" {size}"), data=value)
        _fill_tree(branch, value, budget)
    else:
        shown = json.dumps(value)
        node.add_leaf(Text.assemble((label, "bold"), ": ", shown[:200] + ("…" if len(shown) > 200 else "")), data=value)


class InspectPane(ReportsFailures, PaneFocus, Vertical):
    """Inspect a repo id or local folder before converting it."""

    HOME = "#inspect-facts"  # the report: arrows and PageDown scroll it
    EDIT = "#inspect-source"

    DEFAULT_CSS = pane_css(__file__)
    SCOPED_CSS = False  # the stylesheet names the pane in its own selectors

    BINDINGS = [
        Binding("t", "toggle_raw", "Tree/raw", id="inspect.toggle_raw"),
        Binding("c", "convert", "Convert", id="inspect.convert"),
        Binding("ctrl+r", "reload", "Reload", id="inspect.reload"),
        Binding("escape", "cancel", "Cancel", id="inspect.cancel", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.report: InspectReport | None = None
        self.source: str | None = None
        self.revision: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="inspect-row"):
            yield Input(placeholder="org/name or /path/to/model-folder", id="inspect-source",
                        suggester=ModelSuggester(lambda: self.app.ctx))  # type: ignore[attr-defined]
            yield Input(placeholder="revision", id="inspect-revision")
        yield Static("Give a repo id or a local folder, then Enter. Nothing big is downloaded.", id="inspect-status")
        with Horizontal(id="inspect-body"):
            with VerticalScroll(id="inspect-facts"):
                yield Static(id="inspect-verdict")
                yield Static(id="inspect-summary")
                estimates: DataTable = DataTable(id="inspect-estimates", cursor_type="row", show_cursor=False)
                for label, key in (("Quant", "quantization"), ("Bits/w", "bits/weight"), ("Model needs", "size"),
                                   ("Fits budget", "fits")):
                    estimates.add_column(label, key=key)
                yield estimates
                yield Static(id="inspect-template")
                yield Static("Existing MLX conversions", id="inspect-conversions-title", classes="section-title")
                conversions: DataTable = DataTable(id="inspect-conversions", cursor_type="row")
                for label in ("Repo", "Quant", "mlx-lm"):
                    conversions.add_column(label, key=label.lower())
                yield conversions
            with ContentSwitcher(initial="inspect-tree", id="inspect-config"):
                yield Tree("config.json", id="inspect-tree")
                yield TextArea("", read_only=True, show_line_numbers=True, id="inspect-raw", soft_wrap=False)

    def on_mount(self) -> None:
        self.query_one("#inspect-body").display = False

    # -- contract ---------------------------------------------------------------------------------

    def show_model(self, repo_id: str, revision: str | None = None) -> None:
        """Inspect `repo_id` (or a local folder) at `revision`; called by the app for ShowModel."""
        self.query_one("#inspect-source", Input).value = repo_id
        self.query_one("#inspect-revision", Input).value = revision or ""
        self._start(repo_id, revision)

    # -- running ----------------------------------------------------------------------------------

    @on(Input.Submitted, "#inspect-source, #inspect-revision")
    def _submitted(self) -> None:
        source = self.query_one("#inspect-source", Input).value.strip()
        revision = self.query_one("#inspect-revision", Input).value.strip() or None
        if not source:
            self.notify("Give a repo id (org/name) or a local folder.", severity="warning")
            return
        self._start(source, revision)

    def _start(self, source: str, revision: str | None) -> None:
        self.source, self.revision = source, revision
        self.report = None
        self.query_one("#inspect-status", Static).update(Text(f"Reading the small files of {printable(source, newlines=False)}…"))
        self._inspect(source, revision)

    def worker_failed(self, worker: Any, message: str) -> None:
        """The app's failure handler: the status line says what happened instead of "Reading…" forever."""
        self.query_one("#inspect-status", Static).update(Text(printable(message), style="bold"))

    @work(exclusive=True, group="inspect", exit_on_error=False)
    async def _inspect(self, source: str, revision: str | None) -> None:
        from mlxtui.services.inspect import InspectService

        status = self.query_one("#inspect-status", Static)
        try:
            async with aclosing(InspectService(self.app.ctx).inspect(source, revision)) as events:  # type: ignore[attr-defined]
                async for event in events:
                    if isinstance(event, Notice):
                        text = printable(event.text)
                        self.notify(text, severity="warning" if event.severity == "warning" else "information")
                        status.update(Text(text))
                    elif isinstance(event, InspectReport):
                        self.show_report(event)
        except MlxtuiError as error:
            status.update(Text(printable(str(error)), style="bold"))
            self.query_one("#inspect-body").display = False
            self.notify(str(error), severity="error")

    # -- rendering --------------------------------------------------------------------------------

    def show_report(self, report: InspectReport) -> None:
        """Fill every section from a report."""
        self.report = report
        self.query_one("#inspect-body").display = True
        if self.app.focused is self:  # home was the pane while there was no report: now the report is home
            self.app.set_focus(self.query_one("#inspect-facts"), scroll_visible=False)
        where = report.repo_id + (f" @ {report.revision}" if report.revision else "")
        cached = " (from the local cache: the Hub was unreachable)" if report.from_cache else ""
        self.query_one("#inspect-status", Static).update(
            Text(f"{printable(where, newlines=False)}{cached} · c: convert · t: tree/raw config.json"))
        self._render_verdict(report)
        self._render_summary(report)
        self._render_estimates(report)
        self._render_template(report)
        self._render_conversions(report)
        self._render_config(report)
        if self.query_one("#inspect-row").has_focus_within or self.app.focused is None:
            self.query_one("#inspect-facts").focus()  # so c / t work without leaving the input by hand

    def _render_verdict(self, report: InspectReport) -> None:
        verdict = self.query_one("#inspect-verdict", Static)
        verdict.set_class(report.supported, "-supported")
        verdict.set_class(not report.supported, "-unsupported")
        version = f" {report.mlx_lm_version}" if report.mlx_lm_version else ""
        kind = printable(report.model_type or "?", newlines=False)
        arch = printable(", ".join(report.architectures) or "?", newlines=False)
        # the whole verdict line in one style: a style change next to the space let the bold word run into
        # "by" in some renderings ("✔ Supportedby mlx-lm", issue 14)
        if report.supported:
            text = Text.assemble((f"✔ Supported by mlx-lm{version}", "bold"), f"\n{kind} · {arch}")
        else:
            text = Text.assemble((f"✘ Not convertible with mlx-lm{version}", "bold"), f"\n{kind} · {arch}")
        for problem in report.problems:
            text.append(f"\n• {printable(problem, newlines=False)}")
        for note in report.notes:
            text.append(f"\n· {printable(note, newlines=False)}", style="italic")
        verdict.update(text)

    def _render_summary(self, report: InspectReport) -> None:
        kv = report.kv_cache
        mem, disk = report.memory, report.disk
        gated = {False: "no", True: "yes", "auto": "yes (automatic approval)", "manual": "yes (manual approval)"}.get(
            report.gated, str(report.gated))
        disk_fit = {True: "fits", False: "does NOT fit", None: "unknown"}[disk.get("fits")]
        source = {"safetensors metadata": "safetensors", "safetensors index": "index",
                  "safetensors index size": "index size"}.get(report.parameters_source or "",
                                                               "estimated" if report.parameters_source else "unknown")
        sizes = {e["quantization"]: e["bytes"] for e in report.estimates}
        need = " · ".join(f"{human_bytes(sizes[q])} {q}" for q in ("4bit", "bf16") if q in sizes)
        lines = [
            f"Params   {human_count(report.parameters)} {report.dtype} ({source})",
            f"KV cache {human_bytes(kv.get('4096'))} @4k · {human_bytes(kv.get('32768'))} @32k tokens",
            # the model's own need (per quantization: the table below), then the machine's, each named
            f"Model    needs {need}" if need else "Model    needs ? (parameters unknown)",
            f"Machine  {human_bytes(mem.get('total_bytes'))} memory, {human_bytes(mem.get('budget_bytes'))} for a model",
            f"Disk     {human_bytes(disk.get('free_bytes'))} free, needs {human_bytes(disk.get('needed_bytes'))}:"
            f" {disk_fit}",
            f"License  {printable(report.license or '?', newlines=False)} · gated: {printable(gated, newlines=False)}"
            + (" · private" if report.private else ""),
        ]
        self.query_one("#inspect-summary", Static).update(Text("\n".join(lines)))

    def _render_estimates(self, report: InspectReport) -> None:
        table = self.query_one("#inspect-estimates", DataTable)
        table.clear()
        fits = report.memory.get("fits", {})
        for e in report.estimates:
            fit = {True: "yes", False: "no", None: "?"}[fits.get(e["quantization"])]
            table.add_row(e["quantization"], Text(f"{e['bits_per_weight']:.2f}", justify="right"),
                          Text(human_bytes(e["bytes"]), justify="right"), fit, key=e["quantization"])
        table.display = bool(report.estimates)

    def _render_template(self, report: InspectReport) -> None:
        chat = report.chat_template
        if not chat.get("present") and report.incomplete:
            text = Text.assemble(("Chat template  ", "bold"), "not readable (the repo's files need access)")
        elif not chat.get("present"):
            text = Text.assemble(("Chat template  ", "bold"), "none: plain completion only")
        else:
            system = {True: "accepts a system message", False: "rejects a system message",
                      None: "could not be tested"}[chat.get("system_role")]
            text = Text.assemble(("Chat template  ", "bold"), f"{chat.get('source')}, {system}")
            if chat.get("error"):
                text.append(f"\n  {printable(chat['error'], newlines=False)}", style="italic")
        self.query_one("#inspect-template", Static).update(text)

    def _render_conversions(self, report: InspectReport) -> None:
        table = self.query_one("#inspect-conversions", DataTable)
        table.clear()
        for c in report.conversions:
            table.add_row(_safe(c["repo_id"]), _safe(c.get("quantization") or "?"),
                          _safe(c.get("mlx_lm_version") or "?"), key=c["repo_id"])
        title = self.query_one("#inspect-conversions-title", Static)
        title.update(f"Existing MLX conversions: {len(report.conversions) or 'none found'}"
                     + (" (Enter inspects one)" if report.conversions else ""))
        table.display = bool(report.conversions)

    def _render_config(self, report: InspectReport) -> None:
        tree = self.query_one("#inspect-tree", Tree)
        tree.clear()
        tree.root.set_label("config.json")
        if report.config is not None:
            _fill_tree(tree.root, report.config, [MAX_TREE_NODES])
        else:
            tree.root.add_leaf("(no readable config.json: see the raw view, t)")
        tree.root.expand()
        raw = printable(report.config_text) if report.config_text is not None else "(no config.json)"
        self.query_one("#inspect-raw", TextArea).load_text(raw)

    @on(DataTable.RowSelected, "#inspect-conversions")
    def _open_conversion(self, event: DataTable.RowSelected) -> None:
        """Enter on an existing conversion inspects it (its quantization, card, template)."""
        event.stop()
        if event.row_key.value:
            self.show_model(event.row_key.value)

    # -- actions ----------------------------------------------------------------------------------

    def action_toggle_raw(self) -> None:
        """Tree ↔ raw config.json; on a narrow terminal, where the config has no column of its own (the facts
        take the width), the report → tree → raw → report."""
        switcher = self.query_one("#inspect-config", ContentSwitcher)
        if self.app.has_class("-narrow"):
            if not self.has_class("-show-config"):
                self.add_class("-show-config")
                switcher.current = "inspect-tree"
                self.call_after_refresh(self.query_one("#inspect-tree").focus)
                return
            if switcher.current == "inspect-raw":
                self._show_report()
                return
        switcher.current = "inspect-raw" if switcher.current == "inspect-tree" else "inspect-tree"
        if self.has_class("-show-config"):
            self.call_after_refresh(self.query_one(f"#{switcher.current}").focus)

    def _show_report(self) -> None:
        """Narrow terminal: from config.json back to the report, focus with it."""
        self.remove_class("-show-config")
        self.query_one("#inspect-config", ContentSwitcher).current = "inspect-tree"
        self.call_after_refresh(self.query_one("#inspect-facts").focus)

    def action_reload(self) -> None:
        if self.source:
            self._start(self.source, self.revision)

    def action_cancel(self) -> None:
        """Escape: stop reading the model; with nothing to stop, back to the report (home)."""
        if any(w.is_running for w in self.workers if w.group == "inspect"):
            self.workers.cancel_group(self, "inspect")
            self.query_one("#inspect-status", Static).update("Cancelled.")
        elif self.has_class("-show-config"):
            self._show_report()  # narrow: from the config back to the report
        else:
            self.app.action_leave_field()  # type: ignore[attr-defined]

    def action_convert(self) -> None:
        source = self.report.repo_id if self.report else (self.source or
                                                          self.query_one("#inspect-source", Input).value.strip())
        if not source:
            self.notify("Inspect a model first.", severity="warning")
            return
        report = self.report.to_dict() if self.report else None
        self.post_message(ConvertModel(source, self.revision, report))

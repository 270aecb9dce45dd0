"""Hosts: the Macs a model too big for one runs on (mlx.launch + mlx_lm server), and the run itself.

Add hosts (saved to the hosts file in mlx.launch's format), check them over SSH, plan a model over them,
launch, watch each rank's state and log, open the running model in Chat, and stop it (Esc, or leaving the
app) with every rank on every host.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, RichLog, Static

from mlxtui.format import printable
from mlxtui.services.cluster_checks import HostCheck
from mlxtui.services.cluster_hosts import Hosts, hosts_path, load_hosts, parse_hosts, save_hosts
from mlxtui.services.errors import MlxtuiError, NotFoundError
from mlxtui.ui.failures import ReportsFailures
from mlxtui.ui.focus import PaneFocus
from mlxtui.ui.messages import ChatWithModel
from mlxtui.ui.panes import pane_css

__all__ = ["ClusterPane"]


class ClusterPane(ReportsFailures, PaneFocus, Vertical):
    """Hosts file, checks, plan, launch and stop of a cluster run."""

    DEFAULT_CSS = pane_css(__file__)
    SCOPED_CSS = False
    HOME = "#cluster-table"
    EDIT = "#cluster-model"

    BINDINGS = [
        Binding("c", "check", "Check", id="cluster.check"),
        Binding("d,delete", "remove", "Remove", id="cluster.remove"),
        Binding("l", "launch", "Launch", id="cluster.launch"),
        Binding("o", "chat", "Chat", id="cluster.chat"),
        Binding("escape", "stop", "Stop the cluster", id="cluster.stop", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.hosts: Hosts | None = None
        self.checks: list[HostCheck] = []
        self.cluster = None  # the running Cluster, when there is one
        self.plan = None
        self._launching = False  # from l until the run has stopped
        self._stopping = False  # from Esc until the run has stopped

    def compose(self) -> ComposeResult:
        yield Static("", id="cluster-status")
        yield Input(placeholder="Add a host: NAME [IP …] (127.0.0.1 is this Mac), Enter", id="cluster-host")
        table: DataTable[str] = DataTable(id="cluster-table", cursor_type="row", zebra_stripes=True)
        for label, key in (("Rank", "rank"), ("Host", "host"), ("IPs", "ips"), ("State", "state"), ("Check", "check")):
            table.add_column(label, key=key)
        yield table
        yield Input(placeholder="Model folder or repo id to plan over these hosts, Enter", id="cluster-model")
        yield Static("", id="cluster-plan")
        yield RichLog(id="cluster-log", max_lines=2000, wrap=True, markup=False)

    def on_mount(self) -> None:
        self.reload()

    # -- hosts ------------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the hosts file again and redraw."""
        try:
            self.hosts = load_hosts()
        except NotFoundError:
            self.hosts = None
        except MlxtuiError as error:
            self.hosts = None
            self.notify(str(error), severity="error")
        self.checks = []
        self._redraw()

    def _redraw(self) -> None:
        table = self.query_one("#cluster-table", DataTable)
        table.clear()
        hosts = self.hosts.hosts if self.hosts else ()
        states = self.cluster.states if self.cluster is not None else {}
        for rank, host in enumerate(hosts):
            check = self.checks[rank] if rank < len(self.checks) else None
            # a few words here (the whole summary went to the log): at 80 columns it was cut and scrolled sideways
            verdict = "—" if check is None else check.verdict()
            state = states.get(rank)
            table.add_row(str(rank), printable(host.ssh, newlines=False), " ".join(host.ips),
                          state.state if state else "—", printable(verdict, newlines=False), key=str(rank))
        where = f"{hosts_path()}" + (f" · backend {self.hosts.backend}" if self.hosts else " (none yet)")
        keys = self._keys_now()
        self.query_one("#cluster-status", Static).update(f"Hosts file {where}" + (f" · {keys}" if keys else ""))

    def _log_checks(self) -> None:
        """Each host's whole check in the log, where it wraps (the table shows a few words of it)."""
        log = self.query_one("#cluster-log", RichLog)
        for rank, check in enumerate(self.checks):
            log.write(printable(f"rank {rank} {check.host.ssh}: {check.readiness} · {check.summary()}"))

    def _keys_now(self) -> str:
        """What the keys do in the cluster's present state (the plan's own last line said "l: launch" while the
        cluster ran)."""
        if self._stopping:
            return "stopping every rank…"
        if self.cluster is not None and self.cluster.ready.is_set():
            return f"running: {self.cluster.split} over {self.cluster.ranks} ranks at {self.cluster.base_url} · o: Chat · Esc: stop"
        if self._launching:
            return "launching… · Esc: stop"
        if not self.hosts:
            return ""  # the field below says how to add one
        return "c: check · d: remove" + (" · l: launch" if self.plan is not None and self.plan.ok else "")

    @on(Input.Submitted, "#cluster-host")
    def _add(self, event: Input.Submitted) -> None:
        words = event.value.split()
        if not words:
            return
        hosts = list(self.hosts.hosts) if self.hosts else []
        try:
            entry = parse_hosts({"hosts": [{"ssh": words[0], "ips": words[1:]}]}, "the new host").hosts[0]
            updated = Hosts((*hosts, entry), self.hosts.backend if self.hosts else "ring",
                            self.hosts.envs if self.hosts else ())
            save_hosts(updated, hosts_path())
        except MlxtuiError as error:
            self.notify(str(error), severity="error")
            return
        event.input.value = ""
        self.reload()

    def action_remove(self) -> None:
        table = self.query_one("#cluster-table", DataTable)
        if not self.hosts or self.cluster is not None or table.cursor_row < 0:
            return
        kept = tuple(h for i, h in enumerate(self.hosts.hosts) if i != table.cursor_row)
        if kept:
            save_hosts(Hosts(kept, self.hosts.backend, self.hosts.envs), hosts_path())
        else:
            hosts_path().unlink(missing_ok=True)
        self.reload()

    # -- check and plan ---------------------------------------------------------------------------------

    def action_check(self) -> None:
        if self.hosts:
            self._check()

    @work(exclusive=True, group="cluster-check", exit_on_error=False)
    async def _check(self) -> None:
        from mlxtui.services.cluster_checks import check_hosts

        assert self.hosts is not None
        self.query_one("#cluster-plan", Static).update(f"Checking {len(self.hosts.hosts)} ranks over SSH…")
        model = self.plan.path if self.plan is not None else None
        self.checks = await check_hosts(self.hosts, str(model) if model else None)
        self._redraw()
        self._log_checks()
        bad = [c for c in self.checks if not c.ok]
        self.query_one("#cluster-plan", Static).update(
            "Every host is ready." if not bad else "Not ready: " + "; ".join(dict.fromkeys(p for c in bad for p in c.problems)))

    @on(Input.Submitted, "#cluster-model")
    def _plan_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() and self.hosts:
            self._plan(event.value.strip())
        elif not self.hosts:
            self.notify("Add hosts first.", severity="warning")

    @work(exclusive=True, group="cluster-check", exit_on_error=False)
    async def _plan(self, model: str) -> None:
        import asyncio

        from mlxtui.services.cluster import ClusterService
        from mlxtui.services.cluster_checks import check_hosts
        from mlxtui.services.cluster_plan import resolve_model

        assert self.hosts is not None
        panel = self.query_one("#cluster-plan", Static)
        panel.update(f"Checking the hosts and planning {printable(model)}…")
        try:
            path = await asyncio.to_thread(resolve_model, model)
            self.checks = await check_hosts(self.hosts, str(path))
            self._redraw()
            self._log_checks()
            self.plan = await ClusterService().plan(model, self.hosts, None, self.checks)
        except MlxtuiError as error:
            panel.update(printable(str(error)))
            return
        panel.update(printable("\n".join(self.plan.lines())))
        self._redraw()  # the status line offers l: launch

    # -- launch, chat, stop -----------------------------------------------------------------------------

    def action_launch(self) -> None:
        if self.cluster is not None:
            self.notify("A cluster is already running: Esc stops it.", severity="warning")
        elif self.plan is None or not self.plan.ok or self.hosts is None:
            self.notify("Plan a model that fits first (type it below the hosts, Enter).", severity="warning")
        else:
            self._launching = True
            self._run(self.plan, self.hosts)
            self._redraw()

    @work(exclusive=True, group="cluster", exit_on_error=False)
    async def _run(self, plan, hosts: Hosts) -> None:
        """Copy, launch and follow the cluster until it stops; cancelling (Esc, leaving) stops every rank."""
        import asyncio

        from mlxtui.services.cluster import ClusterReady, ClusterService, ClusterStopped, RankLog, RankState

        log = self.query_one("#cluster-log", RichLog)
        service = ClusterService()
        cluster = None
        try:
            async for line in service.copy(plan, hosts, self.checks):
                log.write(printable(line.text))
            cluster = self.cluster = await service.launch(plan, hosts)
            log.write(f"Launched {plan.split} over {cluster.ranks} ranks; logs in {cluster.run_dir}")
            async for event in cluster.events():
                match event:
                    case RankLog(rank=rank, text=text):
                        log.write(f"[{'launch' if rank is None else f'rank {rank}'}] {printable(text, newlines=False)}")
                    case RankState():
                        self._redraw()
                    case ClusterReady(launch_s=seconds):
                        log.write(f"Ready in {seconds:.1f} s at {event.base_url}: o opens it in Chat.")
                        self._redraw()
                    case ClusterStopped(failure=failure):
                        if failure:
                            self.notify(failure, severity="error", timeout=15)
        except MlxtuiError as error:
            self.notify(str(error), severity="error")
        finally:
            if cluster is not None:
                result = await asyncio.shield(cluster.stop())
                log.write(f"Stopped: {result.reason}" + (f" — {result.failure}" if result.failure else ""))
            self.cluster, self._launching, self._stopping = None, False, False
            if self.is_attached:
                self._redraw()

    def action_chat(self) -> None:
        if self.cluster is not None and self.cluster.ready.is_set():
            self.post_message(ChatWithModel(self.cluster.base_url))
        else:
            self.notify("Launch a cluster first; Chat opens once it is ready.", severity="warning")

    def edit_target(self) -> str | None:
        """`/` edits the model to plan once there are hosts, else the new host's field."""
        return self.EDIT if self.hosts else "#cluster-host"

    def takes_escape(self) -> bool:
        """Escape stops a running cluster even from a field (the app asks before leaving one)."""
        return any(w.is_running for w in self.workers if w.group == "cluster")

    def action_stop(self) -> None:
        """Escape: stop the cluster (every rank on every host); with nothing running, leave the field."""
        if any(w.is_running for w in self.workers if w.group == "cluster"):
            self._stopping = True
            self.workers.cancel_group(self, "cluster")
            self._redraw()
        else:
            self.app.action_leave_field()  # type: ignore[attr-defined]

"""The Hosts pane through the pilot: add hosts, refuse a bad one, plan, launch two local ranks, stop with Esc."""

from __future__ import annotations

import json
import subprocess
import time

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, RichLog, Static

from mlxtui.devhub.templates import LLAMA3_TEMPLATE
from mlxtui.services.cluster_hosts import hosts_path
from mlxtui.ui.panes.cluster import ClusterPane
from tests.fixtures.models import tiny_model


class HostsApp(App[None]):
    """The pane on its own (the full app's pane list is shared with other panes being added)."""

    def compose(self) -> ComposeResult:
        yield ClusterPane(id="cluster-pane")

    def action_leave_field(self) -> None:
        self.set_focus(None)


async def wait_until(pilot, predicate, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def text_of(widget: Static) -> str:
    return str(widget.render())


def rank_processes(model) -> list[str]:
    out = subprocess.run(["ps", "-A", "-ww", "-o", "pid=,stat=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if f"--model {model}" in line and line.split()[1][0] != "Z"]


def servers(model) -> list[str]:
    """The mlx_lm server processes themselves (not mlx.launch or the rank wrappers, whose lines name them too)."""
    return [line for line in rank_processes(model) if line.split(None, 2)[2].split()[1:4] == ["-m", "mlx_lm", "server"]]


async def add_host(pilot, pane: ClusterPane, text: str) -> None:
    box = pane.query_one("#cluster-host", Input)
    box.focus()
    box.value = text
    await pilot.press("enter")
    await pilot.pause()


async def test_hosts_are_added_to_the_file_and_a_bad_one_is_refused_with_nothing_written() -> None:
    app = HostsApp()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(ClusterPane)
        await add_host(pilot, pane, "127.0.0.1")
        await add_host(pilot, pane, "studio.local 10.0.0.2")
        before = hosts_path().read_bytes()
        await add_host(pilot, pane, "mac3 10.0.0.999")
        assert hosts_path().read_bytes() == before
        assert any("not an IP address" in str(n.message) for n in app._notifications)
        assert [h["ssh"] for h in json.loads(before)["hosts"]] == ["127.0.0.1", "studio.local"]
        table = pane.query_one("#cluster-table", DataTable)
        assert table.row_count == 2
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("d")
        await pilot.pause()
        assert table.row_count == 1 and [h["ssh"] for h in json.loads(hosts_path().read_text())["hosts"]] == ["127.0.0.1"]


async def test_plan_launch_and_escape_stops_every_rank(tmp_path) -> None:
    model = tiny_model(tmp_path / "llama", model_type="llama", tokenizer="llama3", chat_template=LLAMA3_TEMPLATE,
                       dtype="float32")
    app = HostsApp()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(ClusterPane)
        await add_host(pilot, pane, "127.0.0.1")
        await add_host(pilot, pane, "127.0.0.1")
        box = pane.query_one("#cluster-model", Input)
        box.focus()
        box.value = str(model)
        await pilot.press("enter")
        await wait_until(pilot, lambda: pane.plan is not None)
        plan_text = text_of(pane.query_one("#cluster-plan", Static))
        assert "split: tensor over 2 ranks" in plan_text
        assert text_of(pane.query_one("#cluster-status", Static)).endswith("l: launch")
        table = pane.query_one("#cluster-table", DataTable)
        # a few words in the table (it fits 80 columns), the whole check in the log
        assert str(table.get_cell_at((0, 4))).startswith("ok · ") and str(table.get_cell_at((0, 4))).endswith(" free")
        checks = "\n".join(str(line.text) for line in pane.query_one("#cluster-log", RichLog).lines)
        assert "rank 0 127.0.0.1: ok · Python" in checks and "rank 1 127.0.0.1: ok · Python" in checks
        table.focus()
        await pilot.press("l")
        await wait_until(pilot, lambda: pane.cluster is not None and pane.cluster.ready.is_set())
        await pilot.pause()
        assert [str(table.get_cell_at((r, 3))) for r in range(2)] == ["running", "running"]
        status = text_of(pane.query_one("#cluster-status", Static))
        assert "running: tensor over 2 ranks" in status and status.endswith("o: Chat · Esc: stop")
        assert "l: launch" not in status + text_of(pane.query_one("#cluster-plan", Static))  # the keys follow the state
        assert len(servers(model)) == 2
        await pilot.press("escape")
        assert text_of(pane.query_one("#cluster-status", Static)).endswith("stopping every rank…")
        await wait_until(pilot, lambda: pane.cluster is None)
        log = "\n".join(str(line.text) for line in pane.query_one("#cluster-log", RichLog).lines)
        assert "Stopped: stopped" in log
        assert rank_processes(model) == []
        await pilot.pause()
        assert text_of(pane.query_one("#cluster-status", Static)).endswith("l: launch")  # ready to launch again


async def test_chat_with_a_cluster_says_distributed_and_a_rank_dying_mid_reply_is_a_clear_error(tmp_path) -> None:
    import os
    import signal

    from mlxtui.services import Context
    from mlxtui.services.cluster import ClusterService
    from mlxtui.services.cluster_hosts import local_hosts
    from mlxtui.ui.app import MlxtuiApp
    from mlxtui.ui.panes.chat import ChatPane

    model = tiny_model(tmp_path / "llama", model_type="llama", tokenizer="llama3", chat_template=LLAMA3_TEMPLATE,
                       dtype="float32")
    cluster = await ClusterService().open(str(model), local_hosts(2), "tensor", launch_timeout=300)
    app = MlxtuiApp(Context(), probe=False)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until(pilot, lambda: bool(app.query(ChatPane)))
            app.action_show_pane("chat")
            pane = app.query_one(ChatPane)
            pane.open_model(cluster.base_url)  # what the Hosts pane's `o` posts
            await app.workers.wait_for_complete()
            await pilot.pause()
            status = text_of(pane.query_one("#chat-status", Static))
            assert f"endpoint {cluster.base_url} · distributed: tensor over 2 ranks" in status
            pane.query_one("#chat-set-max_tokens", Input).value = "8"
            assert pane.send("Hello")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert pane.conversation.messages[-1]["content"]
            pane.query_one("#chat-set-max_tokens", Input).value = "100000"
            assert pane.send("Tell me everything")
            await wait_until(pilot, lambda: pane.generating and pane.conversation.messages[-1]["role"] == "user"
                             and bool((shown := [w for w in pane.query("#chat-log > .reply") if w.display]) and str(shown[-1].text)))
            os.killpg(cluster.states[1].pgid, signal.SIGKILL)
            await wait_until(pilot, lambda: not pane.generating)
            await app.workers.wait_for_complete()
            shown = [str(n.message) for n in app._notifications] + [
                str(w.render()) for w in pane.query("#chat-log > .notice")]
            assert any("Rank 1 on 127.0.0.1 was killed by signal 9; every other rank was stopped." in s for s in shown), shown
    finally:
        result = await cluster.stop()
    assert result.survivors == ()
    assert rank_processes(model) == []


async def test_quitting_the_app_stops_every_rank(tmp_path) -> None:
    import asyncio

    model = tiny_model(tmp_path / "llama", model_type="llama", tokenizer="llama3", chat_template=LLAMA3_TEMPLATE,
                       dtype="float32")
    app = HostsApp()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(ClusterPane)
        await add_host(pilot, pane, "127.0.0.1")
        await add_host(pilot, pane, "127.0.0.1")
        box = pane.query_one("#cluster-model", Input)
        box.focus()
        box.value = str(model)
        await pilot.press("enter")
        await wait_until(pilot, lambda: pane.plan is not None)
        pane.query_one("#cluster-table", DataTable).focus()
        await pilot.press("l")
        await wait_until(pilot, lambda: pane.cluster is not None and pane.cluster.ready.is_set())
        cluster = pane.cluster
        assert len(servers(model)) == 2
        app.exit()
    await asyncio.wait_for(cluster.stopped.wait(), 120)
    assert cluster.result is not None and cluster.result.survivors == ()
    assert rank_processes(model) == []

"""The Inspect pane through the pilot: verdicts, config tree/raw toggle, errors, and search -> inspect -> convert."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import ContentSwitcher, DataTable, Input, Static, TextArea, Tree

from mlxtui.services import Context
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.convert import ConvertPane
from mlxtui.ui.panes.inspect import InspectPane
from mlxtui.ui.panes.search import DEBOUNCE_S
from mlxtui.ui.switcher import PaneSwitcher


def make_app(hub, tmp_path: Path) -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint=hub.url, token=hub.write_token), probe=False,
                     settings_path=tmp_path / "config.toml")


async def settle(pilot) -> None:
    await pilot.pause(DEBOUNCE_S + 0.1)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def inspect_pane(pilot) -> InspectPane:
    """Show Inspect (panes after the first mount lazily) and return it."""
    pilot.app.action_show_pane("inspect")
    for _ in range(50):
        await pilot.pause()
        found = pilot.app.query(InspectPane)
        if found:
            pilot.app.action_show_pane("inspect")  # now mounted: focus lands on its input
            await pilot.pause()
            return found.first()
    raise AssertionError("Inspect pane did not mount")


def text_of(app: MlxtuiApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


async def test_keyboard_flow_search_inspect_convert(hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str | None, dict | None]] = []
    original = ConvertPane.prefill

    def recording_prefill(self, source, revision=None, report=None):
        calls.append((source, revision, report))
        return original(self, source, revision, report)

    monkeypatch.setattr(ConvertPane, "prefill", recording_prefill)
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_show_pane("search")
        await pilot.pause()
        await pilot.press(*"h2o-danube2-tiny-chat", "enter")  # type, Enter moves to the results
        await settle(pilot)
        await pilot.press("enter")  # open the first row in Inspect
        await settle(pilot)
        assert app.query_one("#panes", PaneSwitcher).active == "inspect"
        assert "Supported" in text_of(app, "#inspect-verdict")
        assert "rejects a system message" in text_of(app, "#inspect-template")
        await pilot.press("c")
        await pilot.pause()
        assert app.query_one("#panes", PaneSwitcher).active == "convert"
        assert calls and calls[0][0] == "h2oai/h2o-danube2-tiny-chat"
        assert calls[0][2] is not None and calls[0][2]["supported"] is True
        source = app.query("#convert-source")
        if source:  # the Convert pane shows it
            assert source.first(Input).value == "h2oai/h2o-danube2-tiny-chat"


async def test_unsupported_model_shows_reasons_and_conversions_table(hub, tmp_path: Path) -> None:
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        (await inspect_pane(pilot)).show_model("fancylabs/FancyNet-tiny")
        await settle(pilot)
        verdict = text_of(app, "#inspect-verdict")
        assert "Not convertible" in verdict and "fancynet" in verdict and "trust_remote_code" in verdict
        (await inspect_pane(pilot)).show_model("h2oai/h2o-danube2-tiny-chat")
        await settle(pilot)
        table = app.query_one("#inspect-conversions", DataTable)
        assert str(table.get_row("mlx-community/h2o-danube2-tiny-chat-4bit")[1]) == "4bit"
        estimates = app.query_one("#inspect-estimates", DataTable)
        assert estimates.row_count == 11 and str(estimates.get_row("4bit")[1]) == "4.50"
        table.focus()
        await pilot.press("enter")  # inspect the existing conversion itself
        await settle(pilot)
        assert app.query_one(InspectPane).report.repo_id == "mlx-community/h2o-danube2-tiny-chat-4bit"
        assert "already an MLX 4-bit model" in text_of(app, "#inspect-verdict")


async def test_config_tree_and_raw_toggle(hub, tmp_path: Path) -> None:
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await inspect_pane(pilot)
        await pilot.press("slash", *"Qwen/Qwen2-tiny", "enter")  # / edits the model field
        await settle(pilot)
        tree = app.query_one("#inspect-tree", Tree)
        labels = [str(child.label) for child in tree.root.children]
        assert any(label.startswith("model_type") and "qwen2" in label for label in labels)
        switcher = app.query_one("#inspect-config", ContentSwitcher)
        assert switcher.current == "inspect-tree"
        await pilot.press("t")
        assert switcher.current == "inspect-raw"
        assert '"model_type": "qwen2"' in app.query_one("#inspect-raw", TextArea).text
        await pilot.press("t")
        assert switcher.current == "inspect-tree"


async def test_malformed_config_shows_raw_text(hub, tmp_path: Path) -> None:
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        (await inspect_pane(pilot)).show_model("someuser/broken-config-tiny")
        await settle(pilot)
        assert "not valid JSON" in text_of(app, "#inspect-verdict")
        assert app.query_one("#inspect-raw", TextArea).text.strip()


@pytest.mark.parametrize(
    "source, needle",
    [("nobody/missing-model", "may also be private"), ("bad id!", "not a valid repo id"),
     ("/definitely/not/here", "does not exist")],
)
async def test_errors_are_notices_not_crashes(hub, tmp_path: Path, source: str, needle: str) -> None:
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        (await inspect_pane(pilot)).show_model(source)
        await settle(pilot)
        assert needle in text_of(app, "#inspect-status")
        assert any(needle in n.message for n in app._notifications)
        assert app.query_one("#inspect-body").display is False


async def test_local_folder(hub, tmp_path: Path, generated_models: dict[str, Path]) -> None:
    app = make_app(hub, tmp_path)
    folder = generated_models["NousResearch/Llama-3-tiny-Instruct"]
    async with app.run_test(size=(120, 36)) as pilot:
        (await inspect_pane(pilot)).show_model(str(folder))
        await settle(pilot)
        assert "Supported" in text_of(app, "#inspect-verdict")
        assert "accepts a system message" in text_of(app, "#inspect-template")


async def test_escape_cancels_a_slow_inspection(fresh_hub, tmp_path: Path) -> None:
    fresh_hub.faults.slow(2.0, 1, path_prefix="/api/models/Qwen/Qwen2-tiny")
    app = make_app(fresh_hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await inspect_pane(pilot)
        pane.show_model("Qwen/Qwen2-tiny")
        await pilot.pause(0.2)
        await pilot.press("escape")
        await pilot.pause()
        assert text_of(app, "#inspect-status") == "Cancelled."
        assert pane.report is None


# --- issue 12: hostile files never leave the pane on "Reading the small files…" ------------------------

HOSTILE_CONFIGS = {
    "bigint": '{"model_type": "llama", "hidden_size": ' + "9" * 5000 + "}",
    "deep": "[" * 60_000 + "]" * 60_000,
    "escapes": '{"model_type": "llama\\u001b]0;owned\\u0007\\u001b[2J", "architectures": ["[bold]x[/]"]}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_CONFIGS))
async def test_hostile_local_config_gives_a_report_not_a_spinner(hub, tmp_path: Path, name: str) -> None:
    folder = tmp_path / f"model-{name}"
    folder.mkdir()
    (folder / "config.json").write_text(HOSTILE_CONFIGS[name])
    (folder / "README.md").write_text("---\ntags: 7\nlicense: \"a\\e[2Jb\"\n---\nhi\n")
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await inspect_pane(pilot)
        pane.show_model(str(folder))
        await settle(pilot)
        status = text_of(app, "#inspect-status")
        assert "Reading the small files" not in status
        assert pane.report is not None and not pane.report.supported
        verdict = text_of(app, "#inspect-verdict")
        assert "Not convertible" in verdict and "\x1b" not in verdict
        assert "\x1b" not in app.query_one("#inspect-raw", TextArea).text
        if name == "escapes":
            assert "^[" in verdict and "[bold]x[/]" in verdict  # shown as written, never interpreted


async def test_a_runaway_template_is_named_in_the_pane(hub, tmp_path: Path) -> None:
    folder = tmp_path / "loops"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}')
    (folder / "chat_template.jinja").write_text(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await inspect_pane(pilot)
        pane.show_model(str(folder))
        await settle(pilot)
        assert pane.report is not None
        verdict = text_of(app, "#inspect-template")  # the time or the memory bound, whichever comes first
        assert "did not finish rendering" in verdict or "needs more than" in verdict, verdict


def test_the_pane_answers_generated_configs_and_cards(tmp_path: Path) -> None:
    """Property-based: whatever config.json and front matter a folder holds, the pane ends on a report or one
    message (never "Reading the small files…"), shows no raw escape, and writes nothing into the folder."""
    import asyncio
    import json as json_module
    import tempfile

    from hypothesis import HealthCheck, given, settings

    from tests.services.test_modelfolder import json_values, raw_configs, yaml_texts

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(config_text=raw_configs, front=yaml_texts, extra=json_values)
    def run(config_text: str, front: str, extra: object) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "config.json").write_text(config_text, encoding="utf-8", errors="surrogateescape")
            (folder / "README.md").write_text(f"---\n{front}\n---\nbody\n", encoding="utf-8", errors="surrogateescape")
            (folder / "generation_config.json").write_text(json_module.dumps(extra))
            before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())

            async def scenario() -> None:
                app = MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False,
                                settings_path=tmp_path / "config.toml")
                async with app.run_test(size=(120, 36)) as pilot:
                    pane = await inspect_pane(pilot)
                    pane.show_model(str(folder))
                    await pilot.app.workers.wait_for_complete()
                    await pilot.pause()
                    status = text_of(app, "#inspect-status")
                    assert "Reading the small files" not in status
                    assert pane.report is not None or status
                    for selector in ("#inspect-status", "#inspect-verdict", "#inspect-summary", "#inspect-template"):
                        assert "\x1b" not in text_of(app, selector)

            asyncio.run(scenario())
            assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before

    run()


async def test_words_say_what_is_meant_model_need_machine_budget_and_random_weights(hub, tmp_path: Path) -> None:
    """Issue 14: the model's own need per quantization and the machine's budget are each labelled; the verdict
    line is one span ("✔ Supportedby" came from a style change beside the space); demo models say their
    weights are random."""
    app = make_app(hub, tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await inspect_pane(pilot)
        pane.show_model("h2oai/h2o-danube2-tiny-chat")
        await settle(pilot)
        verdict = pane.query_one("#inspect-verdict", Static).render()
        first = str(verdict).splitlines()[0]
        assert first.startswith("✔ Supported by mlx-lm")
        assert any(span.start == 0 and span.end == len(first) for span in verdict.spans)  # one style
        assert "random weights" in str(verdict) and "gibberish" in str(verdict)
        summary = text_of(app, "#inspect-summary")
        assert "Model    needs " in summary and "4bit" in summary and "bf16" in summary
        machine = next(line for line in summary.splitlines() if line.startswith("Machine"))
        assert "memory" in machine and "for a model" in machine
        labels = [str(c.label) for c in pane.query_one("#inspect-estimates", DataTable).columns.values()]
        assert "Model needs" in labels and "Fits budget" in labels

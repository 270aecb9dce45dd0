"""InspectService and the `mlxtui inspect` / `mlxtui search` subcommands against the demo Hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlxtui.cli import main
from mlxtui.services import Context
from mlxtui.services.errors import InvalidInputError, NotFoundError, OfflineError
from mlxtui.services.events import Notice
from mlxtui.services.inspect import InspectReport, InspectService


async def _inspect(ctx: Context, source: str, revision: str | None = None) -> tuple[InspectReport, list[str]]:
    report, notices = None, []
    async for event in InspectService(ctx).inspect(source, revision):
        if isinstance(event, Notice):
            notices.append(event.text)
        else:
            report = event
    assert report is not None
    return report, notices


async def test_danube_is_supported_but_rejects_a_system_message(ctx: Context) -> None:
    report, _ = await _inspect(ctx, "h2oai/h2o-danube2-tiny-chat")
    assert report.supported and report.problems == []
    assert report.model_type == "mistral" and report.architectures == ["MistralForCausalLM"]
    assert report.chat_template["present"] and report.chat_template["system_role"] is False
    assert "System role not supported" in report.chat_template["error"]
    assert "mlx-community/h2o-danube2-tiny-chat-4bit" in report.existing_conversions
    assert report.license == "apache-2.0" and report.gated is False
    assert report.parameters and report.parameters_source == "safetensors metadata"
    assert report.sha and len(report.sha) == 40


async def test_nothing_big_is_downloaded(fresh_hub) -> None:
    ctx = Context(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    fresh_hub.cdn_requests.clear()
    fresh_hub.clear_requests()
    await _inspect(ctx, "TinyLlama/TinyLlama-tiny-Chat-v1.0")
    fetched = [r.path for r in fresh_hub.requests + fresh_hub.cdn_requests if "/resolve/" in r.path]
    assert fetched and not any(p.endswith(".safetensors") for p in fetched)


async def test_sharded_model_counts_parameters(ctx: Context) -> None:
    report, _ = await _inspect(ctx, "TinyLlama/TinyLlama-tiny-Chat-v1.0")
    assert report.supported and report.parameters and report.parameters > 500_000
    assert report.chat_template["system_role"] is True


async def test_unsupported_model_type_says_why(ctx: Context) -> None:
    report, _ = await _inspect(ctx, "fancylabs/FancyNet-tiny")
    assert not report.supported
    assert any("no module for model_type 'fancynet'" in p for p in report.problems)


async def test_malformed_config_is_a_problem_not_a_crash(ctx: Context) -> None:
    report, _ = await _inspect(ctx, "someuser/broken-config-tiny")
    assert not report.supported and "not valid JSON" in report.problems[0]
    assert report.config is None and report.config_text


async def test_mlx_community_conversion_is_already_mlx(ctx: Context) -> None:
    report, _ = await _inspect(ctx, "mlx-community/h2o-danube2-tiny-chat-4bit")
    assert not report.supported and any("already an MLX" in p for p in report.problems)


async def test_repo_without_config(fresh_hub, tmp_path: Path) -> None:
    folder = tmp_path / "noconfig"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: mit\n---\nJust a readme.\n")
    fresh_hub.import_folder("alice/no-config", folder)
    ctx = Context(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    report, _ = await _inspect(ctx, "alice/no-config")
    assert not report.supported and "no config.json" in report.problems[0]


@pytest.mark.parametrize(
    "config_text, needle",
    [('{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}', "no model_type"),
     ('{"model_type": ["llama"]}', "model_type should be a non-empty string"),
     ('{"model_type": "llama", "num_hidden_layers": "two"}', "num_hidden_layers should be a whole number"),
     ('"llama"', "not a JSON object"),
     ('{"model_type": "llama",', "not valid JSON")],
    ids=["missing-model-type", "model-type-list", "layers-string", "not-object", "truncated"],
)
async def test_malformed_configs_on_the_hub(fresh_hub, tmp_path: Path, config_text: str, needle: str) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "config.json").write_text(config_text)
    fresh_hub.import_folder("alice/bad-config", folder)
    ctx = Context(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    report, _ = await _inspect(ctx, "alice/bad-config")
    assert not report.supported and any(needle in p for p in report.problems), report.problems


async def test_gated_repo_explains_access(hub) -> None:
    bob = Context(endpoint=hub.url, token=hub.other_token)
    report, notices = await _inspect(bob, "meta-llama/Llama-3.2-tiny-Instruct")
    # said once (issue 12: the gated message used to come twice), in the report, which is marked incomplete
    said = [n for n in [*notices, *report.notes, *report.problems] if "accept the conditions" in n]
    assert len(said) == 1 and said[0] in report.notes
    assert report.gated and report.incomplete and "accept the conditions" in report.incomplete
    assert report.model_type == "llama"


async def test_unknown_repo(ctx: Context) -> None:
    with pytest.raises(NotFoundError, match="may also be private"):
        await _inspect(ctx, "nobody/missing-model")


async def test_revision_that_does_not_exist(ctx: Context) -> None:
    with pytest.raises(NotFoundError, match="has no revision 'nope'"):
        await _inspect(ctx, "Qwen/Qwen2-tiny", "nope")
    report, _ = await _inspect(ctx, "Qwen/Qwen2-tiny", "main")
    assert report.revision == "main" and report.supported


async def test_invalid_repo_id(ctx: Context) -> None:
    with pytest.raises(InvalidInputError):
        await _inspect(ctx, "not a/valid id")


async def test_missing_local_path(ctx: Context, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        await _inspect(ctx, str(tmp_path / "missing-folder"))


async def test_offline_falls_back_to_the_cache(ctx: Context) -> None:
    await _inspect(ctx, "Qwen/Qwen2-tiny")  # online once: the small files land in the HF cache
    offline = Context(endpoint="http://127.0.0.1:9")
    report, notices = await _inspect(offline, "Qwen/Qwen2-tiny")
    assert report.from_cache and report.supported and report.model_type == "qwen2"
    assert any("could not be reached" in n for n in notices)
    with pytest.raises(OfflineError, match="not cached"):
        await _inspect(offline, "openlm-research/open_llama_tiny")


# --- subcommands ---------------------------------------------------------------------------------


def test_cli_inspect_json(hub, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--endpoint", hub.url, "inspect", "h2oai/h2o-danube2-tiny-chat", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("repo_id", "model_type", "architectures", "supported", "problems", "parameters", "estimates",
                "chat_template", "existing_conversions"):
        assert key in data
    assert data["supported"] is True and data["chat_template"]["system_role"] is False
    assert {"quantization", "bits_per_weight", "bytes"} <= set(data["estimates"][0])
    assert "mlx-community/h2o-danube2-tiny-chat-4bit" in data["existing_conversions"]


def test_cli_inspect_unsupported_exits_2_with_reason(hub, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--endpoint", hub.url, "inspect", "fancylabs/FancyNet-tiny"])
    out, err = capsys.readouterr()
    assert code == 7 and "NOT convertible" in out
    assert err.strip().count("\n") == 0 and "cannot be converted" in err


def test_cli_inspect_failure_is_one_line(hub, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--endpoint", hub.url, "inspect", "nobody/missing"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and "\n" not in err and "not found" in err  # 3: not found (the CLI-wide table)


def test_cli_search_json(hub, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--endpoint", hub.url, "search", "tiny", "--author", "mlx-community", "--sort", "likes",
                 "--limit", "2", "--json"])
    hits = json.loads(capsys.readouterr().out)
    assert code == 0 and len(hits) == 2
    assert all(h["repo_id"].startswith("mlx-community/") and h["mlx"] for h in hits)
    assert hits[0]["likes"] >= hits[1]["likes"]


def test_cli_search_table_with_filter(hub, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--endpoint", hub.url, "search", "--filter", "mlx", "--limit", "5"])
    out = capsys.readouterr().out
    assert code == 0 and "mlx-community/" in out and "MLX" in out


def test_cli_global_options_may_follow_the_subcommand(hub, capsys: pytest.CaptureFixture[str]) -> None:
    # As with `hf`: options anywhere. Before the fix, argparse refused `--endpoint` after `search`.
    code = main(["search", "tiny", "--author", "mlx-community", "--limit", "1", "--json", "--endpoint", hub.url])
    hits = json.loads(capsys.readouterr().out)
    assert code == 0 and len(hits) == 1 and hits[0]["repo_id"].startswith("mlx-community/")
    # Given before the subcommand, it is not reset by the subcommand's own (suppressed) default: the local
    # Hub answers "not found" (a reset would send the request to huggingface.co, unreachable here).
    code = main(["--endpoint", hub.url, "inspect", "nobody/missing"])
    err = capsys.readouterr().err
    assert code == 3 and "not found" in err, err


def test_cli_gated_repo_prints_what_it_saw_once_and_exits_4(hub, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 12: it used to exit 0 with "chat template: none" and the gated message twice
    monkeypatch.setenv("HF_TOKEN", hub.other_token)
    code = main(["--endpoint", hub.url, "inspect", "meta-llama/Llama-3.2-tiny-Instruct"])
    out, err = capsys.readouterr()
    assert code == 4, err
    assert "model_type: llama" in out and "chat template: not readable" in out
    assert (out + err).count("accept the conditions") == 1
    assert err.strip().count("\n") == 0 and "could not be read in full" in err


@pytest.mark.parametrize("front", ["tags: 7", "language: 5", "base_model: [1, 2]", "license: {a: 1}"])
async def test_card_fields_of_the_wrong_type_on_the_hub(fresh_hub, tmp_path: Path, front: str) -> None:
    # issue 12: `tags: 7` in a README used to be a traceback (huggingface_hub's ModelCardData raises on it)
    folder = tmp_path / "odd-card"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    (folder / "README.md").write_text(f"---\n{front}\n---\n\nhello\n")
    fresh_hub.import_folder("alice/odd-card", folder)
    ctx = Context(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    report, _ = await _inspect(ctx, "alice/odd-card")
    assert report.model_type == "llama" and all(isinstance(t, str) for t in report.tags)
    assert any("README.md" in n for n in report.notes), report.notes  # the card's problem is named, once

"""The quantization lab on the trained test model: what must hold for quality, the cached reference, cancel,
and the bad inputs refused with one sentence before any work.

One lab run (8bit, 4bit, 2bit, 2bit-g32) is shared by the module; its variants and reference cache are reused
by the tests that follow, as a user's second lab would reuse them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from mlxtui.services import Context
from mlxtui.services.errors import InvalidInputError, MlxtuiError, NotFoundError, UnsupportedModelError
from mlxtui.services.lab import LabFinished, LabProgress, LabReferenceReady, LabService
from tests.fixtures.trained import TRAINED_MODEL, trained_copy

pytestmark = pytest.mark.timeout(300)

SEQ_LEN = 128
MAX_SEQ = 24
FIELDS = ("name", "bits_per_weight", "bytes", "peak_memory_bytes", "prompt_tps", "generation_tps", "ttft_s",
          "perplexity", "perplexity_se", "kl_mean", "kl_p99", "top1_agreement", "path")


async def _lab(service: LabService, variants: str, out: Path, **run: Any) -> tuple[dict[str, Any], list[object]]:
    plan = await service.plan(str(TRAINED_MODEL), variants, seq_len=SEQ_LEN, max_sequences=MAX_SEQ, out_dir=out)
    events: list[object] = []
    async with aclosing(service.run(plan, prompt_tokens=32, gen_tokens=8, trials=1, **run)) as stream:
        async for event in stream:
            events.append(event)
    finished = events[-1]
    assert isinstance(finished, LabFinished)
    return finished.result, events


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One lab run, its folders (data home, outputs, reference cache) and what it reported.

    Run once per test session even with pytest-xdist: the first worker runs it under a file lock in the
    session's shared temporary folder, the others read its summary."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    # under xdist each worker's base is <session>/popen-gwN: its parent is this session's, shared by all workers
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "lab-shared"
    root.mkdir(exist_ok=True)
    summary = root / "summary.json"
    with FileLock(str(root / ".lock")):
        if not summary.exists():
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("XDG_DATA_HOME", str(root / "data"))
                mp.setenv("HF_HOME", str(root / "hf"))
                service = LabService(Context(endpoint="http://127.0.0.1:9"), cache_root=root / "cache")
                result, events = asyncio.run(_lab(service, "8bit,4bit,2bit,2bit-gs32", root / "out"))
            summary.write_text(json.dumps({
                "result": result,
                "ready_cached": [e.cached for e in events if isinstance(e, LabReferenceReady)],
                "reference_progress": sum(1 for e in events if isinstance(e, LabProgress) and e.stage == "reference"),
                "reference_runs": service.reference_runs,
            }))
    return {"root": root, **json.loads(summary.read_text())}


def _rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in result["variants"]}


def test_every_variant_row_has_the_issue_fields(shared: dict[str, Any]) -> None:
    result = shared["result"]
    assert [r["name"] for r in result["variants"]] == ["8bit", "4bit", "2bit", "2bit-g32"]  # gs32 read as g32
    assert result["reference"]["name"] == str(TRAINED_MODEL)
    assert result["eval_text"].startswith("builtin") and result["seq_len"] == SEQ_LEN
    assert result["sequences"] == MAX_SEQ and result["eval_tokens"] >= MAX_SEQ * SEQ_LEN
    for row in result["variants"]:
        assert set(FIELDS) <= set(row)
        assert Path(row["path"]).is_dir() and (Path(row["path"]) / "config.json").is_file()
        assert 0 < row["bytes"] < result["reference"]["bytes"]
        assert row["peak_memory_bytes"] > row["bytes"]  # the loaded model at least
        assert row["prompt_tps"] > 0 and row["generation_tps"] > 0 and row["ttft_s"] > 0
        assert 0 <= row["top1_agreement"] <= 1 and row["kl_p99"] >= row["kl_mean"] >= 0
    rows = _rows(result)
    # bits per weight as mlx-lm counts them: weights plus float32 scales and biases per group of 64 (or 32)
    assert rows["8bit"]["bits_per_weight"] == pytest.approx(8 + 64 / 64, abs=0.1)
    assert rows["4bit"]["bits_per_weight"] == pytest.approx(4 + 64 / 64, abs=0.1)
    assert rows["2bit-g32"]["bits_per_weight"] == pytest.approx(2 + 64 / 32, abs=0.1)


def test_quality_falls_from_8_to_4_to_2_bits(shared: dict[str, Any]) -> None:
    rows = _rows(shared["result"])
    ref = shared["result"]["reference"]
    eight, four, two = rows["8bit"], rows["4bit"], rows["2bit"]
    assert eight["kl_mean"] < four["kl_mean"] < two["kl_mean"]
    assert eight["kl_p99"] < four["kl_p99"] < two["kl_p99"]
    assert eight["perplexity"] < four["perplexity"] < two["perplexity"]
    assert eight["top1_agreement"] > four["top1_agreement"] > two["top1_agreement"]
    # 8 bits is within the standard error of the original; 2 bits is far outside it
    assert abs(eight["perplexity"] - ref["perplexity"]) < ref["perplexity_se"]
    assert two["perplexity"] - ref["perplexity"] > 5 * ref["perplexity_se"]


def test_group_size_32_beats_64_at_equal_bits(shared: dict[str, Any]) -> None:
    rows = _rows(shared["result"])
    g32, g64 = rows["2bit-g32"], rows["2bit"]
    assert g32["kl_mean"] < g64["kl_mean"]
    assert g32["perplexity"] < g64["perplexity"]
    assert g32["bytes"] > g64["bytes"]  # the price: more scales and biases


def test_first_run_computes_the_reference_once(shared: dict[str, Any]) -> None:
    assert shared["ready_cached"] == [False] and shared["reference_progress"] > 0
    assert shared["reference_runs"] == 1
    assert shared["result"]["reference"]["cached"] is False


async def test_second_lab_uses_the_cached_reference(shared: dict[str, Any]) -> None:
    root = shared["root"]
    meta = next((root / "cache").glob("*/meta.json"))
    before = meta.stat().st_mtime_ns
    service = LabService(Context(endpoint="http://127.0.0.1:9"), cache_root=root / "cache")
    result, events = await _lab(service, "4bit", root / "out")
    assert service.reference_runs == 0
    assert not [e for e in events if isinstance(e, LabProgress) and e.stage == "reference"]
    assert [e.cached for e in events if isinstance(e, LabReferenceReady)] == [True]
    assert result["reference"]["cached"] is True and meta.stat().st_mtime_ns == before
    # the variant folder from the first lab is measured again, not rebuilt
    assert not [e for e in events if isinstance(e, LabProgress) and e.stage in ("convert", "build")]
    assert _rows(result)["4bit"]["kl_mean"] == pytest.approx(_rows(shared["result"])["4bit"]["kl_mean"], rel=1e-6)


async def test_cancelled_lab_leaves_no_half_written_variant(shared: dict[str, Any], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # the builder waits with the finished model still in its partial folder: cancel exactly then
    monkeypatch.setenv("MLXTUI_LAB_SLOWDOWN_S", "60")
    service = LabService(Context(endpoint="http://127.0.0.1:9"), cache_root=shared["root"] / "cache")
    out = tmp_path / "out"
    plan = await service.plan(str(TRAINED_MODEL), "4bit-gptq", seq_len=SEQ_LEN, max_sequences=MAX_SEQ, out_dir=out)
    partial = out / f".{plan.outputs[0].name}.partial-lab"
    seen_partial = False
    async with aclosing(service.run(plan, prompt_tokens=32, gen_tokens=8, trials=1)) as stream:
        async for event in stream:
            if isinstance(event, LabProgress) and event.stage == "build" and event.done == 3:
                seen_partial = partial.is_dir() and any(partial.glob("*.safetensors"))
                break
    assert seen_partial, "the builder never reached its partial folder"
    assert not partial.exists()
    assert not plan.outputs[0].exists()
    assert sorted(p.name for p in out.iterdir()) == []


# -- bad inputs: one sentence, before any work ------------------------------------------------------


def _nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not (Path(os.environ["XDG_DATA_HOME"]) / "mlxtui" / "lab" / "work").exists()


@pytest.mark.parametrize(
    ("variants", "error", "words"),
    [
        ("mixed_9_9", InvalidInputError, "Unknown variant 'mixed_9_9'"),
        ("4bit,7bit", InvalidInputError, "7 bits is not supported"),
        ("4bit-g48", InvalidInputError, "Group size 48 is not supported"),
        ("mixed_3_6-mxfp4", InvalidInputError, "work only with affine quantization, not mxfp4"),
        ("3bit-gptq", UnsupportedModelError, "GPTQ packs only 2, 4 or 8 bits"),
        ("bf16", InvalidInputError, "is not a quantization"),
        (" , ", InvalidInputError, "at least one variant"),
    ],
)
async def test_bad_variant_names_are_refused_before_any_work(tmp_path: Path, variants: str, error: type,
                                                              words: str) -> None:
    service = LabService(Context())
    with pytest.raises(error) as info:
        await service.plan(str(TRAINED_MODEL), variants, out_dir=tmp_path / "out")
    assert words in str(info.value) and "\n" not in str(info.value)
    _nothing_written(tmp_path / "out")


async def test_awq_on_an_architecture_without_a_layer_map_is_refused(tmp_path: Path) -> None:
    folder = trained_copy(tmp_path / "phi")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "phi3"
    config["architectures"] = ["Phi3ForCausalLM"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="AWQ has no layer map for phi3"):
        await LabService(Context()).plan(str(folder), "4bit,4bit-awq", out_dir=tmp_path / "out")
    _nothing_written(tmp_path / "out")


async def test_already_quantized_source_is_refused(tmp_path: Path) -> None:
    folder = trained_copy(tmp_path / "q")
    config = json.loads((folder / "config.json").read_text())
    config["quantization"] = {"group_size": 64, "bits": 4}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match=r"already quantized \(4bit\).*unquantized model as its reference"):
        await LabService(Context()).plan(str(folder), "4bit", out_dir=tmp_path / "out")
    _nothing_written(tmp_path / "out")


async def test_evaluation_text_shorter_than_one_sequence_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("The morning was cold and clear. " * 3)
    with pytest.raises(InvalidInputError, match=r"short.txt.* tokens, fewer than one sequence of 256") as info:
        await LabService(Context()).plan(str(TRAINED_MODEL), "4bit", data=str(short), out_dir=tmp_path / "out")
    assert "\n" not in str(info.value)
    _nothing_written(tmp_path / "out")


async def test_missing_source_and_missing_text_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="is not a model folder"):
        await LabService(Context()).plan(str(tmp_path / "nope"), "4bit")
    with pytest.raises(NotFoundError, match="does not exist"):
        await LabService(Context()).plan(str(TRAINED_MODEL), "4bit", data=str(tmp_path / "none.txt"))


def test_cli_prints_one_line_for_a_bad_variant(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mlxtui", "lab", str(TRAINED_MODEL), "--variants", "4bit,9bit",
                           "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxtui: ") and "9 bits is not supported" in lines[0]
    assert done.stdout == "" and not (tmp_path / "out").exists()


def test_cli_json_names_the_reference_text_and_every_field(shared: dict[str, Any]) -> None:
    root = shared["root"]
    env = dict(os.environ, XDG_DATA_HOME=str(root / "data"))
    # the module's lab used its own cache folder; the CLI uses the data home's: point one at the other
    cache = root / "data" / "mlxtui" / "lab" / "reference"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.symlink_to(root / "cache")
    done = subprocess.run([sys.executable, "-m", "mlxtui", "lab", str(TRAINED_MODEL), "--variants", "8bit", "--json",
                           "--seq-len", str(SEQ_LEN), "--max-sequences", str(MAX_SEQ), "--prompt-tokens", "32",
                           "--generation-tokens", "8", "--output", str(root / "out")],
                          capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["reference"]["name"] == str(TRAINED_MODEL) and result["reference"]["cached"] is True
    assert result["eval_text"].startswith("builtin") and result["eval_tokens"] > 0
    assert result["seq_len"] == SEQ_LEN
    (row,) = result["variants"]
    assert set(FIELDS) <= set(row) and row["name"] == "8bit"
    assert row["kl_mean"] == pytest.approx(_rows(shared["result"])["8bit"]["kl_mean"], rel=1e-6)


def test_errors_are_mlxtui_errors() -> None:
    assert issubclass(InvalidInputError, MlxtuiError) and issubclass(UnsupportedModelError, MlxtuiError)


def test_card_of_a_lab_variant_has_the_quality_section(shared: dict[str, Any]) -> None:
    from mlxtui.services.card_build import generate_body

    four = Path(_rows(shared["result"])["4bit"]["path"])
    body = generate_body(four, source=str(TRAINED_MODEL))
    assert "## Quantization quality" in body and "| **4bit** (this model) |" in body
    assert "| 2bit-g32 |" in body  # its siblings from the same lab


async def test_evaluation_text_that_is_a_folder_or_not_text_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is not a file"):
        await LabService(Context()).plan(str(TRAINED_MODEL), "4bit", data=str(tmp_path))
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InvalidInputError, match="could not be read as UTF-8 text"):
        await LabService(Context()).plan(str(TRAINED_MODEL), "4bit", data=str(binary))


@pytest.fixture
def hub_ctx(devhub_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Context:
    """A DevHub holding the trained model as alice/tiny-trained-llama, and a context pointed at it."""
    import huggingface_hub.constants as constants

    hub = devhub_factory()
    hub.import_folder("alice/tiny-trained-llama", TRAINED_MODEL)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    return Context(endpoint=hub.url, token=hub.read_token)


async def test_a_hub_source_is_checked_before_its_weights_are_downloaded(hub_ctx: Context, tmp_path: Path) -> None:
    service = LabService(hub_ctx)
    plan = await service.plan("alice/tiny-trained-llama", "8bit,2bit-g32", seq_len=SEQ_LEN, out_dir=tmp_path / "out")
    assert plan.repo == "alice/tiny-trained-llama" and plan.sequences >= 1
    assert plan.out_dir.name == "tiny-trained-llama" or plan.out_dir == tmp_path / "out"
    assert [p.name for p in plan.outputs] == ["tiny-trained-llama-8bit", "tiny-trained-llama-2bit-g32"]
    assert (plan.folder / "config.json").is_file() and not list(plan.folder.glob("*.safetensors"))
    with pytest.raises(UnsupportedModelError, match="GPTQ packs only"):
        await service.plan("alice/tiny-trained-llama", "3bit-gptq", out_dir=tmp_path / "out")
    with pytest.raises(NotFoundError):
        await service.plan("alice/no-such-model", "4bit", out_dir=tmp_path / "out")
    assert not list(plan.folder.glob("*.safetensors")) and not (tmp_path / "out").exists()


# -- the lab as a detached job -----------------------------------------------------------------------


async def _follow_all(jobs: Any, job_id: str) -> list[object]:
    return [event async for event in jobs.follow(job_id)]


async def test_detached_lab_job_runs_in_its_own_session_and_can_be_followed(shared: dict[str, Any],
                                                                           tmp_path: Path) -> None:
    from mlxtui.services.lab_jobs import LabJobs

    root = shared["root"]
    service = LabService(Context(endpoint="http://127.0.0.1:9"), cache_root=root / "cache")
    plan = await service.plan(str(TRAINED_MODEL), "8bit", seq_len=SEQ_LEN, max_sequences=MAX_SEQ, out_dir=root / "out")
    jobs = LabJobs(service.ctx, root=tmp_path / "labs")
    job_id = jobs.start(plan, prompt_tokens=32, gen_tokens=8, trials=1)
    pid = jobs.state(job_id)["pid"]
    assert os.getsid(pid) == pid  # its own session: a closed terminal or SSH connection does not reach it
    events = await _follow_all(jobs, job_id)
    assert isinstance(events[-1], LabFinished)
    assert [r["name"] for r in events[-1].result["variants"]] == ["8bit"]
    # a follower that comes later (a new mlxtui) replays the same events
    again = await _follow_all(jobs, job_id)
    assert again[-1].result == events[-1].result and jobs.state(job_id)["state"] == "done"


async def test_cancelled_lab_job_leaves_no_half_written_variant(shared: dict[str, Any], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from mlxtui.services.lab_jobs import LabJobEnded, LabJobs

    monkeypatch.setenv("MLXTUI_LAB_SLOWDOWN_S", "60")
    service = LabService(Context(endpoint="http://127.0.0.1:9"), cache_root=shared["root"] / "cache")
    out = tmp_path / "out"
    plan = await service.plan(str(TRAINED_MODEL), "2bit-gptq", seq_len=SEQ_LEN, max_sequences=MAX_SEQ, out_dir=out)
    partial = out / f".{plan.outputs[0].name}.partial-lab"
    jobs = LabJobs(service.ctx, root=tmp_path / "labs")
    job_id = jobs.start(plan)
    seen: list[object] = []
    async with aclosing(jobs.follow(job_id)) as events:
        async for event in events:
            seen.append(event)
            if isinstance(event, LabProgress) and event.stage == "build" and event.done == 3:
                assert partial.is_dir()
                await asyncio.to_thread(jobs.cancel, job_id)
            if isinstance(event, LabJobEnded):
                break
    assert isinstance(seen[-1], LabJobEnded) and seen[-1].state == "cancelled"
    assert not partial.exists() and not plan.outputs[0].exists()
    assert jobs.state(job_id)["state"] == "cancelled"


async def test_gptq_variant_is_built_offline_and_beats_round_to_nearest(shared: dict[str, Any]) -> None:
    root = shared["root"]
    service = LabService(Context(endpoint="http://127.0.0.1:9"), cache_root=root / "cache")
    result, events = await _lab(service, "4bit-gptq", root / "out")
    (row,) = result["variants"]
    assert row["method"] == "gptq" and (Path(row["path"]) / "config.json").is_file()
    assert [e.stage for e in events if isinstance(e, LabProgress) and e.message][:1] == ["build"]
    # same bits, same text: GPTQ's error feedback (calibrated on the built-in calib split) beats plain 4-bit
    assert row["kl_mean"] < _rows(shared["result"])["4bit"]["kl_mean"]


async def test_variants_made_from_other_weights_are_not_reused(shared: dict[str, Any], tmp_path: Path) -> None:
    other = trained_copy(tmp_path / "tiny-trained-llama")  # same name, other weights (as far as the lab knows)
    out = tmp_path / "out"  # an earlier lab's folder: its results and one variant folder
    (out / "tiny-trained-llama-8bit").mkdir(parents=True)
    (out / "lab-results.json").write_bytes((shared["root"] / "out" / "lab-results.json").read_bytes())
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(InvalidInputError, match="holds variants made from other weights") as info:
        await LabService(Context()).plan(str(other), "8bit", seq_len=SEQ_LEN, out_dir=out)
    assert "\n" not in str(info.value) and sorted(p.name for p in out.iterdir()) == before


async def test_mixed_recipe_on_a_model_without_down_proj_is_refused(tmp_path: Path) -> None:
    folder = trained_copy(tmp_path / "gpt2ish")
    (folder / "config.json").write_text(json.dumps({
        "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 128, "n_layer": 2, "n_head": 4,
        "n_positions": 1024, "n_ctx": 1024, "vocab_size": 512, "layer_norm_epsilon": 1e-5, "torch_dtype": "float32"}))
    with pytest.raises(UnsupportedModelError, match="mixed recipes need down_proj layers.*gpt2") as info:
        await LabService(Context()).plan(str(folder), "4bit,mixed_3_6", seq_len=SEQ_LEN, out_dir=tmp_path / "out")
    assert "\n" not in str(info.value)
    _nothing_written(tmp_path / "out")


async def test_publish_sends_each_variant_to_its_own_repo_with_cards_linking_siblings(
        shared: dict[str, Any], tmp_path: Path, devhub_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import huggingface_hub.constants as constants
    from huggingface_hub import HfApi

    from mlxtui.services.lab_publish import PublishPlanned, publish

    # a private copy of the lab's folder (cards are rewritten), with the results pointing at it
    out = tmp_path / "out"
    shutil.copytree(shared["root"] / "out", out)
    results = out / "lab-results.json"
    results.write_text(results.read_text().replace(str(shared["root"] / "out"), str(out)))
    hub = devhub_factory()
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    ctx = Context(endpoint=hub.url, token=hub.write_token)
    events = [event async for event in publish(ctx, out, "alice", ["4bit", "2bit-g32"])]
    assert isinstance(events[0], PublishPlanned)
    assert events[0].repos == {"4bit": "alice/tiny-trained-llama-4bit", "2bit-g32": "alice/tiny-trained-llama-2bit-g32"}
    api = HfApi(endpoint=hub.url, token=hub.write_token)
    for repo in events[0].repos.values():
        assert "model.safetensors" in api.list_repo_files(repo)
    card = Path(api.hf_hub_download("alice/tiny-trained-llama-4bit", "README.md", cache_dir=tmp_path / "dl")).read_text()
    assert "## Quantization quality" in card and "| **4bit** (this model) |" in card
    assert f"[2bit-g32]({hub.url}/alice/tiny-trained-llama-2bit-g32)" in card


async def test_publish_of_an_unmeasured_variant_sends_nothing(shared: dict[str, Any], tmp_path: Path) -> None:
    from mlxtui.services.lab_publish import publish

    with pytest.raises(InvalidInputError, match="measured no variant named 3bit"):
        _ = [e async for e in publish(Context(endpoint="http://127.0.0.1:9"), shared["root"] / "out", "alice", ["3bit"])]

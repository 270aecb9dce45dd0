"""Conversion jobs end to end: the worker process, byte-identity with mlx_lm.convert, the queue, provenance,
cancel, SIGKILL, reattach after a restart, ENOSPC, and downloads from the demo Hub (progress, dropped
connection, unsupported model refused before the weights are fetched)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import os
import signal
import time
from pathlib import Path

import pytest

from mlxtui.services import Context
from mlxtui.services import jobs as jobstore
from mlxtui.services.convert import ConvertOptions, ConvertService
from mlxtui.services.convert_worker import PROVENANCE_FILE, run_job
from mlxtui.services.errors import NotFoundError, UnsupportedModelError
from mlxtui.services.events import ConvertFinished, ConvertProgress, ConvertVariantDone

pytestmark = pytest.mark.timeout(120)


def _offline_service() -> ConvertService:
    return ConvertService(Context(endpoint="http://127.0.0.1:9"))


async def _collect(events) -> list[object]:
    return [event async for event in events]


def _mlx_lm_convert(src: Path | str, dst: Path, **kwargs) -> None:
    from mlx_lm import convert

    with contextlib.redirect_stdout(io.StringIO()):
        convert(str(src), str(dst), **kwargs)


def _assert_same_folder(out: Path, ref: Path) -> None:
    """Every file of mlx_lm.convert's output, byte for byte, and nothing else but mlxtui's provenance file."""
    ours = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    theirs = sorted(str(p.relative_to(ref)) for p in ref.rglob("*") if p.is_file())
    assert ours == sorted([*theirs, PROVENANCE_FILE])
    assert len(theirs) >= 6, theirs  # weights, index, config, tokenizer files, card
    for name in theirs:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), f"{out.name}/{name} differs"


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def test_queue_of_variants_matches_mlx_lm_byte_for_byte(make_tiny_model, tmp_path: Path) -> None:
    """One job, three variants (4-bit, mixed_3_6, plain bf16) from one source, run one after another."""
    src = make_tiny_model("tiny", chat_template="{{ messages }}")
    service = _offline_service()
    variants = [
        ConvertOptions(quantize=True, q_bits=4, q_group_size=64, dtype="float32"),
        ConvertOptions(quantize=True, q_bits=3, q_group_size=64, quant_predicate="mixed_3_6", dtype="float32"),
        ConvertOptions(),
    ]
    events = await _collect(service.convert(str(src), variants))
    finished = events[-1]
    assert isinstance(finished, ConvertFinished) and finished.state == "done", finished
    done = [e for e in events if isinstance(e, ConvertVariantDone)]
    assert [d.variant for d in done] == [0, 1, 2]
    stages = {(e.stage, e.variant) for e in events if isinstance(e, ConvertProgress)}
    assert {("load", 0), ("quantize", 0), ("save", 0), ("quantize", 1), ("save", 2), ("done", 2)} <= stages
    quantize = [e for e in events if isinstance(e, ConvertProgress) and e.stage == "quantize" and e.variant == 0]
    assert quantize[-1].unit == "layers" and quantize[-1].done == quantize[-1].total > 0

    models = service.models_dir()
    outputs = [models / "tiny-4bit", models / "tiny-mixed_3_6", models / "tiny-bf16"]
    assert [Path(d.output) for d in done] == outputs
    kwargs = [
        dict(quantize=True, q_bits=4, q_group_size=64, dtype="float32"),
        dict(quantize=True, q_bits=3, q_group_size=64, quant_predicate="mixed_3_6", dtype="float32"),
        dict(),
    ]
    for out, kw in zip(outputs, kwargs):
        ref = tmp_path / f"ref-{out.name}"
        _mlx_lm_convert(src, ref, **kw)
        _assert_same_folder(out, ref)

    provenance = json.loads((outputs[1] / PROVENANCE_FILE).read_text())
    # the record is uploaded with the folder: the local source by name, never its path (issue 11)
    assert provenance["source"] == f"a local folder named {src.name}" and provenance["source_revision"] is None
    assert str(tmp_path) not in (outputs[1] / PROVENANCE_FILE).read_text()
    assert provenance["options"] == {
        "quantize": True, "q_bits": 3, "q_group_size": 64, "q_mode": "affine", "quant_predicate": "mixed_3_6",
        "dtype": "float32", "dequantize": False, "trust_remote_code": False,
    }
    assert set(provenance["versions"]) == {"mlx", "mlx_lm", "mlxtui"}
    assert set(provenance["timings"]) == {"download_s", "load_s", "quantize_s", "save_s", "total_s"}
    assert 3 < provenance["bits_per_weight"] < 7
    assert provenance["size_bytes"] == sum(p.stat().st_size for p in outputs[1].iterdir())
    assert provenance["created_at"].startswith("20")
    job = service.jobs()[0]
    assert job.state == "done" and all(v.state == "done" for v in job.variants)
    assert "[INFO] Quantized model with" in job.log_path.read_text()


async def test_cancel_stops_the_worker_and_removes_the_partial_output(
    make_tiny_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0.5")
    src = make_tiny_model("tiny")
    service = _offline_service()
    plan = await service.plan(str(src), ConvertOptions(quantize=True, dtype="float32"))
    job = await service.start(plan)
    output = plan.variants[0][1]
    partial = jobstore.partial_dir(output, job.id)
    await _wait_for(partial.exists)
    cancelled = await service.cancel(job.id, grace_s=5)
    assert cancelled.state == "cancelled"
    assert not partial.exists() and not output.exists()
    assert not jobstore.worker_alive(job.dir)
    events = await _collect(service.follow(job.id, logs=False))
    assert events[-1] == ConvertFinished(job.id, "cancelled", cancelled.message)


async def test_closing_the_convert_stream_early_cancels(make_tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    """Escape in the pane closes the stream: the job is cancelled, nothing half-written stays."""
    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0.5")
    src = make_tiny_model("tiny")
    service = _offline_service()
    stream = service.convert(str(src), ConvertOptions(quantize=True, dtype="float32"))
    async for event in stream:
        if isinstance(event, ConvertProgress) and event.stage == "quantize":
            break
    await stream.aclose()
    job = service.jobs()[0]
    assert job.state == "cancelled"
    assert not (service.models_dir() / "tiny-4bit").exists()
    assert not list(service.models_dir().glob(".*partial*"))


async def test_sigkilled_worker_is_marked_failed_and_its_partial_output_removed(
    make_tiny_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0.5")
    src = make_tiny_model("tiny")
    service = _offline_service()
    plan = await service.plan(str(src), ConvertOptions(quantize=True, dtype="float32"))
    job = await service.start(plan)
    partial = jobstore.partial_dir(plan.variants[0][1], job.id)
    await _wait_for(partial.exists)
    os.killpg(job.pid, signal.SIGKILL)
    events = await _collect(service.follow(job.id, logs=False))
    assert isinstance(events[-1], ConvertFinished) and events[-1].state == "failed"
    assert "stopped without finishing" in events[-1].message
    assert not partial.exists() and not plan.variants[0][1].exists()
    assert service.jobs()[0].state == "failed"


async def test_jobs_outlive_the_ui_and_a_new_service_reattaches(make_tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0.2")
    src = make_tiny_model("tiny")
    first = _offline_service()
    job = await first.start(await first.plan(str(src), ConvertOptions(quantize=True, dtype="float32")))
    del first  # the UI went away; the worker is in its own session
    await _wait_for(lambda: jobstore.load_job(job.dir).state == "running")
    assert os.getsid(job.pid) == job.pid
    second = _offline_service()
    listed = second.jobs()
    assert [j.id for j in listed] == [job.id] and listed[0].active
    events = await _collect(second.follow(job.id))
    assert isinstance(events[-1], ConvertFinished) and events[-1].state == "done"
    assert any(isinstance(e, ConvertProgress) and e.stage == "quantize" for e in events)
    assert (second.models_dir() / "tiny-4bit" / "config.json").exists()


async def test_disk_full_during_the_run_cleans_up(make_tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while writing the weights: the job fails with a clear reason and no folder is left behind."""
    import mlx.core as mx

    src = make_tiny_model("tiny")
    service = _offline_service()
    plan = await service.plan(str(src), ConvertOptions(quantize=True, dtype="float32"))
    job = jobstore.Job(
        id=jobstore.new_job_id(), source=plan.source, kind="local",
        variants=[jobstore.Variant(options=plan.variants[0][0].to_dict(), output=str(plan.variants[0][1]), label="4bit")],
    )
    job.dir = service.root / job.id
    job.save()

    def full(path, *args, **kwargs):
        Path(path).write_bytes(b"\0" * 100)  # a half-written shard, as a full disk leaves it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mx, "save_safetensors", full)
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_job(job.dir) == 1
    # run in-process, it hands the signal handlers back (a later child would inherit an ignored SIGTERM)
    assert {signum: signal.getsignal(signum) for signum in before} == before
    job = jobstore.load_job(job.dir)
    assert job.state == "failed" and "disk filled up" in job.message
    assert not plan.variants[0][1].exists()
    assert not list(service.models_dir().glob(".*partial*"))


async def test_unsupported_model_on_the_hub_is_refused_before_downloading_weights(ctx: Context, hub) -> None:
    service = ConvertService(ctx)
    hub.clear_requests()
    with pytest.raises(UnsupportedModelError, match="fancynet"):
        await service.plan("fancylabs/FancyNet-tiny", ConvertOptions(quantize=True))
    fetched = [r.path for r in list(hub.requests) + list(hub.cdn_requests)]
    assert not any("safetensors" in p for p in fetched), fetched
    assert service.jobs() == []


async def test_missing_repo_says_no_folder_and_no_repo(ctx: Context) -> None:
    # owner/name-shaped: named as a repo first, and the folder it could have been is ruled out too
    with pytest.raises(NotFoundError, match=r"There is no repo 'models/tiny' on .* \(and no folder of that name here\)"):
        await ConvertService(ctx).plan("models/tiny", ConvertOptions())


async def test_malformed_config_on_the_hub(ctx: Context) -> None:
    from mlxtui.services.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="not valid JSON"):
        await ConvertService(ctx).plan("someuser/broken-config-tiny", ConvertOptions())


async def test_download_with_progress_survives_a_dropped_connection(fresh_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The weights' connection drops half way: huggingface_hub resumes with Range, the job finishes."""
    import huggingface_hub.constants as constants

    for name in ("ENDPOINT", "HF_HUB_DISABLE_XET", "HUGGINGFACE_CO_URL_TEMPLATE"):
        monkeypatch.setattr(constants, name, getattr(constants, name))
    ctx = Context(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    ctx.use_endpoint(fresh_hub.url, token=fresh_hub.write_token)
    monkeypatch.setenv("HF_ENDPOINT", fresh_hub.url)
    service = ConvertService(ctx)
    repo = "h2oai/h2o-danube2-tiny-chat"
    plan = await service.plan(repo, ConvertOptions(quantize=True, dtype="float32"))
    assert plan.kind == "repo" and plan.commit and plan.download_bytes > 0
    fresh_hub.server.faults.drop_download(1, path_prefix=f"/{repo}/resolve/")
    fresh_hub.server.faults.drop_download(1, path_prefix="/")  # the CDN leg, if the weights are redirected
    job = await service.start(plan)
    events = await _collect(service.follow(job.id))
    assert isinstance(events[-1], ConvertFinished) and events[-1].state == "done", events[-1]
    downloads = [e for e in events if isinstance(e, ConvertProgress) and e.stage == "download"]
    assert any(e.unit == "bytes" and e.total and e.done == e.total for e in downloads)
    assert any(e.unit == "files" and e.total and e.done == e.total for e in downloads)
    log = job.log_path.read_text()
    assert "peer closed connection" in log and "resume" in log, log
    out = service.models_dir() / "h2o-danube2-tiny-chat-4bit"
    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    assert provenance["source"] == repo and provenance["source_revision"] == plan.commit
    readme = (out / "README.md").read_text()
    assert f"base_model: {repo}" in readme


async def test_gated_repo_says_how_to_get_access(ctx: Context) -> None:
    from mlxtui.services.errors import GatedError

    service = ConvertService(Context(endpoint=ctx.endpoint, token=None))
    with pytest.raises(GatedError, match="gated: its files need access approval.*accept the conditions"):  # hubclient.map_error
        await service.plan("meta-llama/Llama-3.2-tiny-Instruct", ConvertOptions(quantize=True))


#: huggingface_hub writes a download to disk in chunks of this size (constants.DOWNLOAD_CHUNK_SIZE)
_CHUNK = 10 * 1024 * 1024


def _hub_with_big_weights(hub, make_tiny_model, monkeypatch: pytest.MonkeyPatch, name: str) -> tuple[Context, str, str]:
    """A repo on `hub` whose single weights file (~23 MB) is larger than two download chunks, so a download
    can be caught with bytes on disk and more to come. Returns (ctx, repo id, the weights' resolve prefix)."""
    import huggingface_hub.constants as constants

    for attr in ("ENDPOINT", "HF_HUB_DISABLE_XET", "HUGGINGFACE_CO_URL_TEMPLATE"):
        monkeypatch.setattr(constants, attr, getattr(constants, attr))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    folder = make_tiny_model(name, hidden_size=512, intermediate_size=1024, num_hidden_layers=4)
    assert (folder / "model.safetensors").stat().st_size > 2 * _CHUNK
    repo = f"tests/{name}"
    sha = hub.import_folder(repo, folder)
    ctx = Context(endpoint=hub.url, token=hub.write_token)
    ctx.use_endpoint(hub.url, token=hub.write_token)
    return ctx, repo, f"/{repo}/resolve/{sha}/model.safetensors"


def _incomplete_bytes(repo: str) -> int:
    """Bytes of the weights huggingface_hub has written to its temporary file in the cache so far."""
    blobs = Path(os.environ["HF_HOME"]) / "hub" / f"models--{repo.replace('/', '--')}" / "blobs"
    return max((p.stat().st_size for p in blobs.glob("*.incomplete")), default=0) if blobs.is_dir() else 0


def _stall_the_weights_mid_file(hub, weights: str) -> object:
    """The first GET of the weights sends half (one chunk reaches the disk) and drops; the resumed GET then
    waits on the server (returns that fault: it has been taken once the resumed request is waiting)."""
    hub.server.faults.slow(0, n=1, path_prefix=weights, method="GET")  # taken by the first GET: no delay
    hub.server.faults.drop_download(1, path_prefix=weights)
    return hub.server.faults.slow(120, n=1, path_prefix=weights, method="GET")  # the resumed GET waits here


async def test_cancel_during_download_keeps_the_cache_and_a_retry_finishes(
    fresh_hub, make_tiny_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled with weight bytes on disk and more in flight: the worker stops at once, no output is left,
    finished files stay in the cache, and a retry finishes."""
    ctx, repo, weights = _hub_with_big_weights(fresh_hub, make_tiny_model, monkeypatch, "big-cancel")
    service = ConvertService(ctx)
    stall = _stall_the_weights_mid_file(fresh_hub, weights)
    job = await service.start(await service.plan(repo, ConvertOptions(quantize=True, dtype="float32")))
    await _wait_for(lambda: _incomplete_bytes(repo) >= _CHUNK and stall not in fresh_hub.server.faults.active(), 90)
    cancelled = await service.cancel(job.id, grace_s=60)
    assert cancelled.state == "cancelled", cancelled.message
    assert not jobstore.worker_alive(job.dir)
    # the worker itself stopped and cleaned up (SIGTERM), though a download thread was stuck on the Hub
    assert "cancelled: the partial output was removed" in job.log_path.read_text()
    assert _incomplete_bytes(repo) == 0, "no temporary download is left behind in the cache"
    assert not (service.models_dir() / "big-cancel-4bit").exists()
    assert not list(service.models_dir().glob(".*partial*"))
    snapshot = next((Path(os.environ["HF_HOME"]) / "hub" / "models--tests--big-cancel" / "snapshots").iterdir())
    assert (snapshot / "config.json").is_file() and (snapshot / "tokenizer.json").is_file(), "finished files stay"

    fresh_hub.server.faults.clear()
    events = await _collect(service.convert(repo, ConvertOptions(quantize=True, dtype="float32")))
    assert isinstance(events[-1], ConvertFinished) and events[-1].state == "done", events[-1]


async def test_a_hub_restart_mid_file_resumes_from_the_bytes_on_disk(
    fresh_hub, make_tiny_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Hub stops while the weights are half fetched and comes back: huggingface_hub asks for the rest
    (Range from the bytes already written) instead of starting again, and the job finishes."""
    ctx, repo, weights = _hub_with_big_weights(fresh_hub, make_tiny_model, monkeypatch, "big-resume")
    service = ConvertService(ctx)
    stall = _stall_the_weights_mid_file(fresh_hub, weights)
    job = await service.start(await service.plan(repo, ConvertOptions(quantize=True, dtype="float32")))
    await _wait_for(lambda: _incomplete_bytes(repo) >= _CHUNK and stall not in fresh_hub.server.faults.active(), 90)
    on_disk = _incomplete_bytes(repo)
    os.kill(job.pid, signal.SIGSTOP)  # hold the worker still while the Hub goes away and comes back
    try:
        fresh_hub.stop()  # closes the waiting request: the worker finds the connection gone
        fresh_hub.range_requests.clear()
        fresh_hub.start()
    finally:
        os.kill(job.pid, signal.SIGCONT)
    events = await _collect(service.follow(job.id, logs=False))
    assert isinstance(events[-1], ConvertFinished) and events[-1].state == "done", events[-1]
    ranges = [r for path, r in fresh_hub.range_requests if path == weights]
    assert ranges == [f"bytes={on_disk}-"], (ranges, on_disk)  # one request, for the rest only
    assert (service.models_dir() / "big-resume-4bit" / "model.safetensors").is_file()


async def test_a_repo_conversion_matches_mlx_lm_convert_of_the_repo_byte_for_byte(ctx: Context, tmp_path: Path) -> None:
    """From the Hub: the worker downloads with progress, then mlx-lm's own output (README with base_model too)."""
    repo = "h2oai/h2o-danube2-tiny-chat"
    service = ConvertService(ctx)
    events = await _collect(service.convert(repo, ConvertOptions(quantize=True, q_bits=4, dtype="float32")))
    assert isinstance(events[-1], ConvertFinished) and events[-1].state == "done", events[-1]
    out = service.models_dir() / "h2o-danube2-tiny-chat-4bit"
    ref = tmp_path / "ref"
    _mlx_lm_convert(repo, ref, quantize=True, q_bits=4, dtype="float32")
    _assert_same_folder(out, ref)
    assert f"base_model: {repo}" in (out / "README.md").read_text()


async def test_mxfp4_and_dequantize_match_mlx_lm_byte_for_byte(make_tiny_model, tmp_path: Path) -> None:
    """The other paths through mlx_lm.convert: a non-affine mode, and dequantizing an MLX model back to floats."""
    src = make_tiny_model("tiny", chat_template="{{ messages }}")
    service = _offline_service()
    events = await _collect(service.convert(str(src), ConvertOptions(quantize=True, q_mode="mxfp4")))
    assert isinstance(events[-1], ConvertFinished) and events[-1].state == "done", events[-1]
    mxfp4 = service.models_dir() / "tiny-mxfp4"
    _mlx_lm_convert(src, tmp_path / "ref-mxfp4", quantize=True, q_mode="mxfp4")
    _assert_same_folder(mxfp4, tmp_path / "ref-mxfp4")

    quantized = tmp_path / "tiny-4bit"
    _mlx_lm_convert(src, quantized, quantize=True)
    events = await _collect(service.convert(str(quantized), ConvertOptions(dequantize=True, dtype="float32")))
    assert isinstance(events[-1], ConvertFinished) and events[-1].state == "done", events[-1]
    _mlx_lm_convert(quantized, tmp_path / "ref-dequantized", dequantize=True, dtype="float32")
    _assert_same_folder(service.models_dir() / "tiny-4bit-fp32", tmp_path / "ref-dequantized")

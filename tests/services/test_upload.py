"""The upload service against the local devhub through the real huggingface_hub client."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mlxtui.services import Context
from mlxtui.services.errors import AuthError, CancelledByUser, InvalidInputError, UploadError
from mlxtui.services.events import UploadFinished, UploadProgress, UploadStage
from mlxtui.services.upload import UploadService, looks_like_token, suggest_repo_name

pytestmark = pytest.mark.usefixtures("restore_hub_environment")

SOURCE = "h2oai/h2o-danube2-tiny-chat"


def service_for(hub, token: str | None = "write") -> UploadService:
    """The service as the app builds it: the endpoint (and Xet off for a devhub) decided once, on this thread."""
    from mlxtui.services import configure_hub_environment

    configure_hub_environment(hub.url)
    value = {"write": hub.write_token, "read": hub.read_token, "other": hub.other_token, None: None}[token]
    return UploadService(Context(endpoint=hub.url, token=value))


async def run_upload(service: UploadService, plan) -> list:
    return [event async for event in service.upload(plan)]


def test_suggested_name_is_model_dash_quantization(mlx_folder: Path) -> None:
    assert suggest_repo_name(mlx_folder) == "h2o-danube2-tiny-chat-4bit"


def test_token_pattern() -> None:
    assert looks_like_token(b'{"token": "hf_' + b"a1B2" * 9 + b'"}')
    assert not looks_like_token(b"hf_hub_download is a function")


async def test_whoami_lists_user_and_writable_orgs(hubx) -> None:
    me = await service_for(hubx).whoami()
    assert me.user == "alice" and me.writable == ("alice", "mlx-community")
    ro = await service_for(hubx, "read").whoami()
    assert ro.role == "read" and ro.writable == ()


async def test_no_token_is_a_clear_auth_error(hubx) -> None:
    with pytest.raises(AuthError, match="HF_TOKEN"):
        await service_for(hubx, None).whoami()


async def test_upload_then_verify_then_rerun_sends_nothing(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    plan = await service.preflight(ready_folder, "mlx-community/h2o-danube2-tiny-chat-4bit", private=True)
    assert plan.ok, plan.errors
    events = await run_upload(service, plan)
    finished = events[-1]
    assert isinstance(finished, UploadFinished)
    assert finished.sent_files == len(plan.files) and finished.verified_files == len(plan.files)
    assert finished.url == f"{hubx.url}/mlx-community/h2o-danube2-tiny-chat-4bit"
    progress = [e for e in events if isinstance(e, UploadProgress)]
    assert progress[-1].bytes_done == progress[-1].bytes_total == plan.total_bytes
    assert {e.stage for e in events if isinstance(e, UploadStage)} >= {"repo", "hashing", "comparing", "sending", "verifying"}
    # the remote README is byte for byte the local one (never rewritten)
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hubx.url, token=hubx.write_token)
    assert api.model_info("mlx-community/h2o-danube2-tiny-chat-4bit").private is True
    remote = Path(api.hf_hub_download("mlx-community/h2o-danube2-tiny-chat-4bit", "README.md"))
    assert remote.read_text() == (ready_folder / "README.md").read_text()
    again = await run_upload(service, await service.preflight(ready_folder, "mlx-community/h2o-danube2-tiny-chat-4bit"))
    assert again[-1].sent_files == 0 and again[-1].skipped_files == len(plan.files)


async def test_connection_dropped_mid_upload_then_rerun_sends_only_the_rest(
    devhub_factory, source_folder: Path, ready_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import types

    import huggingface_hub.utils._http as hf_http

    from mlxtui.devhub.server import Fault

    # huggingface_hub retries a dropped PUT 5 times with backoff; skip the waiting, keep the retries
    monkeypatch.setattr(hf_http, "time", types.SimpleNamespace(**{**vars(hf_http.time), "sleep": lambda s: None}))
    hub = devhub_factory(lfs_threshold=10_000)  # tokenizer.json goes through LFS too: two LFS files
    hub.import_folder(SOURCE, source_folder)
    service = service_for(hub)
    weights = ready_folder / "model.safetensors"
    oid = hashlib.sha256(weights.read_bytes()).hexdigest()
    plan = await service.preflight(ready_folder, "alice/dropped")
    assert plan.ok, plan.errors
    hub.faults.add(Fault("drop_upload", 100, "PUT", f"/_devhub/lfs/{oid}"))  # every try of the weights dies
    with pytest.raises(UploadError, match="dropped") as caught:
        await run_upload(service, plan)
    assert "Run the same upload again" in str(caught.value)
    from huggingface_hub import HfApi

    # nothing was published: the repo has no model files
    assert "config.json" not in HfApi(endpoint=hub.url, token=hub.write_token).list_repo_files("alice/dropped")
    hub.faults.clear()
    hub.clear_requests()
    events = await run_upload(service, await service.preflight(ready_folder, "alice/dropped"))
    assert events[-1].verified_files == len(plan.files)
    # only the weights were sent again: tokenizer.json reached the server before the drop
    assert hub.count_requests("PUT", "/_devhub/lfs/") == 1
    assert events[-1].sent_bytes < plan.total_bytes - 50_000  # tokenizer.json's bytes were not sent twice


def checks_by_name(plan) -> dict[str, object]:
    return {c.name: c for c in plan.checks}


async def test_no_token_blocks_the_preflight(hubx, ready_folder: Path) -> None:
    plan = await service_for(hubx, None).preflight(ready_folder, "alice/x")
    assert not plan.ok
    assert "HF_TOKEN" in checks_by_name(plan)["Token"].detail
    with pytest.raises(UploadError, match="preflight"):
        await run_upload(service_for(hubx, None), plan)


async def test_read_only_token_is_refused_before_and_by_the_server(hubx, ready_folder: Path) -> None:
    service = service_for(hubx, "read")
    plan = await service.preflight(ready_folder, "alice/ro")
    assert checks_by_name(plan)["Token"].status == "error"
    assert "can't upload" in checks_by_name(plan)["Token"].detail
    plan.checks = []  # even past the preflight, the server's 403 becomes a clear message
    with pytest.raises(AuthError, match="read-only or has no write access"):
        await run_upload(service, plan)


async def test_a_repo_owned_by_someone_else(hubx, ready_folder: Path) -> None:
    service = service_for(hubx, "other")  # bob
    plan = await service.preflight(ready_folder, "alice/not-bobs")
    assert "belongs to someone else" in checks_by_name(plan)["Target"].detail
    plan.checks = []
    with pytest.raises(AuthError, match="403"):
        await run_upload(service, plan)
    from huggingface_hub import HfApi

    assert not HfApi(endpoint=hubx.url, token=hubx.write_token).repo_exists("alice/not-bobs")


async def test_an_org_without_write_access(hubx, ready_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlxtui.services import upload as upload_module

    # the real Hub's whoami: member of mlx-community with the read role
    info = {"name": "carol", "orgs": [{"name": "mlx-community", "roleInOrg": "read"}, {"name": "carol-lab", "roleInOrg": "admin"}],
            "auth": {"accessToken": {"role": "write"}}}
    identity = upload_module.identity_from_whoami(info)
    assert identity.writable == ("carol", "carol-lab")
    service = service_for(hubx)

    async def whoami() -> upload_module.Identity:
        return identity

    monkeypatch.setattr(service, "whoami", whoami)
    plan = await service.preflight(ready_folder, "mlx-community/x-4bit")
    assert checks_by_name(plan)["Target"].detail == "carol has no write access to the org 'mlx-community'."


@pytest.mark.parametrize("repo_id", ["alice/bad name", "a/b/c", "alice/--x", "alice/" + "x" * 97, "alice/x..y"])
async def test_invalid_repo_names(hubx, ready_folder: Path, repo_id: str) -> None:
    with pytest.raises(InvalidInputError, match="not a valid repo id"):
        await service_for(hubx).preflight(ready_folder, repo_id)


async def test_a_bare_name_goes_to_the_users_namespace(hubx, ready_folder: Path) -> None:
    plan = await service_for(hubx).preflight(ready_folder, "h2o-4bit")
    assert plan.repo_id == "alice/h2o-4bit"


async def test_readme_with_broken_yaml_blocks(hubx, ready_folder: Path) -> None:
    (ready_folder / "README.md").write_text("---\nlicense: [apache\n---\n\n# x\n")
    plan = await service_for(hubx).preflight(ready_folder, "alice/x")
    assert "YAML front matter is invalid" in checks_by_name(plan)["README.md"].detail
    (ready_folder / "README.md").unlink()
    plan = await service_for(hubx).preflight(ready_folder, "alice/x")
    assert "No README.md" in checks_by_name(plan)["README.md"].detail


async def test_a_folder_that_is_not_an_mlx_model(hubx, source_folder: Path, tmp_path: Path) -> None:
    plan = await service_for(hubx).preflight(source_folder, "alice/x")  # the Hugging Face original
    assert "Nothing marks this as an MLX conversion" in checks_by_name(plan)["MLX"].detail
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    plan = await service_for(hubx).preflight(empty, "alice/x")
    assert "not an MLX model" in checks_by_name(plan)["config.json"].detail
    assert "No .safetensors" in checks_by_name(plan)["Weights"].detail
    (empty / "pytorch_model.bin").write_bytes(b"x")
    plan = await service_for(hubx).preflight(empty, "alice/x")
    assert "not MLX" in checks_by_name(plan)["Weights"].detail
    with pytest.raises(InvalidInputError):
        await service_for(hubx).preflight(tmp_path / "missing", "alice/x")


async def test_unexpected_files_secrets_and_stray_files_block(hubx, ready_folder: Path) -> None:
    (ready_folder / ".env").write_text("HF_TOKEN=x\n")
    (ready_folder / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (ready_folder / ".DS_Store").write_bytes(b"\0")
    (ready_folder / "__pycache__").mkdir()
    (ready_folder / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (ready_folder / "backup.tar").write_bytes(b"\0" * 2_000_000)
    secret = "hf_" + "Zq9" * 12
    (ready_folder / "notes.md").write_text(f"my token is {secret}\n")
    plan = await service_for(hubx).preflight(ready_folder, "alice/x")
    checks = checks_by_name(plan)
    for name in (".env", "id_rsa", ".DS_Store", "__pycache__/"):
        assert name in checks["Unexpected files"].detail
    assert "backup.tar" in checks["Stray large files"].detail
    assert "notes.md" in checks["Secrets"].detail
    assert all(secret not in c.detail for c in plan.checks)  # never shown
    assert {f.path for f in plan.files}.isdisjoint({".env", "id_rsa", ".DS_Store"})


async def test_weights_inconsistent_with_the_index(hubx, ready_folder: Path) -> None:
    index = json.loads((ready_folder / "model.safetensors.index.json").read_text())
    index["weight_map"] = {k: "model-00001-of-00002.safetensors" for k in index["weight_map"]}
    (ready_folder / "model.safetensors.index.json").write_text(json.dumps(index))
    plan = await service_for(hubx).preflight(ready_folder, "alice/x")
    assert "missing" in checks_by_name(plan)["Weights"].detail


async def test_the_token_is_never_written_to_mlxtui_files(hubx, ready_folder: Path, isolated_home: Path) -> None:
    service = service_for(hubx)
    events = await run_upload(service, await service.preflight(ready_folder, "alice/t"))
    assert hubx.write_token not in repr(events)
    for path in isolated_home.rglob("*"):
        if path.is_file() and "hf" not in path.relative_to(isolated_home).parts[:1]:
            assert hubx.write_token.encode() not in path.read_bytes(), path


def test_xet_progress_reports_reach_the_sink() -> None:
    """The real Hub's Xet reporter is replaced for the upload; its reports become bytes and files."""
    import threading
    from types import SimpleNamespace as NS

    from mlxtui.services.upload_progress import ProgressSink, _XetReporter

    events: list = []
    sink = ProgressSink(events.append, files_total=2, bytes_total=300, cancel=threading.Event())
    reporter = type("R", (_XetReporter,), {"sink": sink})()
    reporter.update_progress(NS(total_bytes_completed=100), {"a": NS(item_name="a", bytes_completed=100, total_bytes=100)})
    reporter.update_progress(NS(total_bytes_completed=300), {"b": NS(item_name="b", bytes_completed=200, total_bytes=200)})
    reporter.update_progress(object(), None)  # an unknown report shape is ignored, never raised
    assert sink.bytes_done == 300 and sink.files_done == 2
    assert isinstance(events[-1], UploadProgress) and events[-1].files_done == 2


def test_progress_hook_restores_huggingface_hub() -> None:
    import importlib

    import huggingface_hub.utils._xet_progress_reporting as xet

    from mlxtui.services.upload_progress import ProgressSink, progress_hook

    module = importlib.import_module("huggingface_hub.utils.tqdm")
    before = (module.tqdm, xet.XetUploadProgressReporter)
    import threading

    with progress_hook(ProgressSink(lambda e: None, 0, 0, threading.Event())) as hooked:
        assert hooked and module.tqdm is not before[0]
    assert (module.tqdm, xet.XetUploadProgressReporter) == before


# --- issue 11: what is sent is what was meant -----------------------------------------------------------------


def hf(hub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.url, token=hub.write_token)


async def test_a_cache_snapshot_whose_files_link_into_its_own_blobs_uploads(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    await run_upload(service, await service.preflight(ready_folder, "alice/origin"))
    snapshot = Path(hf(hubx).snapshot_download("alice/origin"))
    assert (snapshot / "config.json").is_symlink()  # the cache layout: links into ../../blobs
    plan = await service.preflight(snapshot, "alice/copy")
    assert plan.ok, plan.errors
    events = await run_upload(service, plan)
    assert events[-1].verified_files == len(plan.files)


async def test_private_on_an_existing_public_repo_is_shown_applied_first_and_read_back(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    await run_upload(service, await service.preflight(ready_folder, "alice/vis", private=False))
    assert hf(hubx).model_info("alice/vis").private is False
    plan = await service.preflight(ready_folder, "alice/vis", private=True)
    assert plan.visibility_change == "public → private"
    assert "made private before any file is sent" in checks_by_name(plan)["Visibility"].detail
    (ready_folder / "notes.md").write_text("a new file, so something is sent\n")
    plan = await service.preflight(ready_folder, "alice/vis", private=True)
    events = await run_upload(service, plan)
    stages = [e.text for e in events if isinstance(e, UploadStage)]
    made = next(i for i, t in enumerate(stages) if "Making alice/vis private" in t)
    assert made < next(i for i, t in enumerate(stages) if t.startswith("Sending"))
    assert events[-1].private is True and events[-1].visibility_changed
    assert hf(hubx).model_info("alice/vis").private is True
    # and back: public on a private repo is a change too; no flag keeps what the repo has
    assert (await service.preflight(ready_folder, "alice/vis")).private is True
    plan = await service.preflight(ready_folder, "alice/vis", private=False)
    assert plan.visibility_change == "private → PUBLIC"
    await run_upload(service, plan)
    assert hf(hubx).model_info("alice/vis").private is False


def test_cli_private_on_a_public_repo_says_and_does_it(hubx, ready_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from mlxtui.cli import main

    monkeypatch.setenv("HF_TOKEN", hubx.write_token)
    assert main(["--endpoint", hubx.url, "upload", str(ready_folder), "alice/cli-vis", "--yes"]) == 0
    capsys.readouterr()
    assert main(["--endpoint", hubx.url, "upload", str(ready_folder), "alice/cli-vis", "--private", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Visibility: public → private (changed before any file is sent)" in out
    assert "already there with the same content" in out and "private (changed by this upload)" in out
    assert hf(hubx).model_info("alice/cli-vis").private is True


def _requantize(source: Path, out: Path, bits: int, card_from: Path) -> Path:
    import contextlib
    import io

    from mlx_lm import convert

    with contextlib.redirect_stdout(io.StringIO()):
        convert(hf_path=str(source), mlx_path=str(out), quantize=True, q_bits=bits, q_group_size=64, dtype="float32")
    shutil.copy(card_from / "README.md", out / "README.md")
    return out


def _bits_of(folder: Path) -> set[int]:
    from mlx_lm import load

    model, _ = load(str(folder))
    return {m.bits for _, m in model.named_modules() if hasattr(m, "bits")}


async def test_a_reupload_of_another_quantization_leaves_no_stale_weights(hubx, ready_folder: Path, source_folder: Path,
                                                                         tmp_path: Path) -> None:
    """The 8-bit model.safetensors on the Hub must not survive a 4-bit upload with another shard name."""
    service = service_for(hubx)
    eight = _requantize(source_folder, tmp_path / "eight", 8, ready_folder)
    (eight / "sampling_config.json").write_text('{"temperature": 0.1}')  # another file mlx-lm downloads
    (eight / "LICENSE").write_text("MIT\n")  # and one it does not
    await run_upload(service, await service.preflight(eight, "alice/requant"))
    assert _bits_of(Path(hf(hubx).snapshot_download("alice/requant"))) == {8}
    # the 4-bit folder names its single shard differently, as a sharded save does
    four = ready_folder
    (four / "model.safetensors").rename(four / "model-00001-of-00001.safetensors")
    index = json.loads((four / "model.safetensors.index.json").read_text())
    index["weight_map"] = {k: "model-00001-of-00001.safetensors" for k in index["weight_map"]}
    (four / "model.safetensors.index.json").write_text(json.dumps(index))
    plan = await service.preflight(four, "alice/requant")
    assert plan.ok, plan.errors
    assert plan.remote_delete == ["model.safetensors", "sampling_config.json"]
    assert plan.remote_keep == ["LICENSE"]
    events = await run_upload(service, plan)
    assert events[-1].deleted_files == ("model.safetensors", "sampling_config.json")
    files = hf(hubx).list_repo_files("alice/requant")
    assert "model.safetensors" not in files and "LICENSE" in files
    assert _bits_of(Path(hf(hubx).snapshot_download("alice/requant"))) == {4}


async def test_other_remote_files_go_only_when_asked(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    (ready_folder / "LICENSE").write_text("MIT\n")
    await run_upload(service, await service.preflight(ready_folder, "alice/others"))
    (ready_folder / "LICENSE").unlink()
    plan = await service.preflight(ready_folder, "alice/others", delete_others=True)
    assert plan.deletions == ["LICENSE"]
    await run_upload(service, plan)
    assert "LICENSE" not in hf(hubx).list_repo_files("alice/others")


async def test_a_card_edited_after_the_check_is_checked_again_and_refused(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    plan = await service.preflight(ready_folder, "alice/late")
    assert plan.ok
    readme = ready_folder / "README.md"
    readme.write_text(readme.read_text() + f"\nmy token: hf_{'Lm4' * 12}\n")
    with pytest.raises(UploadError, match="changed since the check .*README.md changed.* now fails: Secrets"):
        await run_upload(service, plan)
    assert not hf(hubx).repo_exists("alice/late")


@pytest.mark.parametrize("change", ["edited", "appeared", "vanished"])
async def test_a_harmless_change_after_the_check_is_rechecked_then_sent(hubx, ready_folder: Path, change: str) -> None:
    service = service_for(hubx)
    (ready_folder / "notes.md").write_text("first\n")
    plan = await service.preflight(ready_folder, "alice/recheck")
    if change == "edited":
        os.utime(ready_folder / "notes.md", ns=(0, 0))
        (ready_folder / "notes.md").write_text("second\n")
    elif change == "appeared":
        (ready_folder / "more.md").write_text("new\n")
    else:
        (ready_folder / "notes.md").unlink()
    events = await run_upload(service, plan)
    assert any(isinstance(e, UploadStage) and "changed since the check" in e.text for e in events)
    files = set(hf(hubx).list_repo_files("alice/recheck"))
    assert ("more.md" in files) == (change == "appeared") and ("notes.md" in files) == (change != "vanished")


async def test_same_size_same_time_different_content_is_still_caught(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    notes = ready_folder / "notes.md"
    notes.write_text("aaaa\n")
    plan = await service.preflight(ready_folder, "alice/sneaky")
    info = notes.stat()
    notes.write_text("bbbb\n")
    os.utime(notes, ns=(info.st_atime_ns, info.st_mtime_ns))
    events = await run_upload(service, plan)
    assert any(isinstance(e, UploadStage) and "notes.md changed" in e.text for e in events)
    assert Path(hf(hubx).hf_hub_download("alice/sneaky", "notes.md")).read_text() == "bbbb\n"


async def _cancel_at(service: UploadService, plan, stage: str) -> tuple[list, BaseException | None]:
    import threading

    cancel = threading.Event()
    events: list = []
    try:
        async for event in service.upload(plan, cancel=cancel):
            events.append(event)
            if isinstance(event, UploadStage) and event.stage == stage:
                cancel.set()
    except CancelledByUser as error:
        return events, error
    return events, None


async def test_cancel_before_the_commit_publishes_nothing_and_says_so(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    hubx.faults.slow(3.0, 1, method="PUT")  # the weights' answer is held while the cancel arrives
    events, error = await _cancel_at(service, await service.preflight(ready_folder, "alice/c1"), "sending")
    committed = any(isinstance(e, UploadStage) and e.stage == "committing" for e in events)
    # whatever the machine's speed, the message matches what the Hub holds
    if not committed:
        assert error is not None and "nothing was published" in str(error)
        assert "config.json" not in hf(hubx).list_repo_files("alice/c1")
    else:  # the held answer came back before the event loop saw "sending" (a very loaded machine)
        assert error is None or "nothing was published" not in str(error)


async def test_cancel_after_the_commit_was_sent_checks_and_tells_what_landed(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    plan = await service.preflight(ready_folder, "alice/c2")
    hubx.faults.slow(1.0, 1, method="POST", path_prefix="/api/models/alice/c2/commit")
    events, error = await _cancel_at(service, plan, "committing")
    if error is None:  # the commit and the verification beat the cancel: then it finished, truthfully
        assert isinstance(events[-1], UploadFinished)
    else:
        assert "nothing was published" not in str(error)
        assert any(isinstance(e, UploadStage) and "may already be on the Hub: checking" in e.text for e in events)
        assert "the commit landed: alice/c2 holds the folder" in str(error)
    assert "config.json" in hf(hubx).list_repo_files("alice/c2")  # and it did land


async def test_the_summary_says_what_the_hub_already_had(hubx, ready_folder: Path) -> None:
    from mlxtui.services.upload import finished_summary

    service = service_for(hubx)
    await run_upload(service, await service.preflight(ready_folder, "alice/sum"))
    (ready_folder / "notes.md").write_text("one more\n")
    events = await run_upload(service, await service.preflight(ready_folder, "alice/sum"))
    done = events[-1]
    assert done.sent_files == 1 and done.skipped_files == done.verified_files - 1 > 0
    line = finished_summary(done)
    assert f"{done.skipped_files} already there with the same content" in line and "1 sent" in line


async def test_no_object_prints_the_token(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    plan = await service.preflight(ready_folder, "alice/repr")
    for thing in (service, service.ctx, plan, plan.identity, plan.binding, *plan.checks, *plan.files):
        assert hubx.write_token not in repr(thing) and hubx.write_token not in str(thing)
    from mlxtui.services.upload_scan import Hidden

    assert "secret-value" not in repr(Hidden("secret-value")) + str(Hidden("secret-value"))


async def test_another_huggingface_hub_major_uploads_without_byte_progress(hubx, ready_folder: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The private hooks are touched only on the major version they were written for."""
    import importlib

    import mlxtui.services.upload_progress as progress

    module = importlib.import_module("huggingface_hub.utils.tqdm")
    before = module.tqdm
    monkeypatch.setattr(progress, "installed_major", lambda: progress.HF_HUB_MAJOR + 1)
    with progress.progress_hook(progress.ProgressSink(lambda e: None, 0, 0, __import__("threading").Event())) as hooked:
        assert hooked is False and module.tqdm is before
    service = service_for(hubx)
    events = await run_upload(service, await service.preflight(ready_folder, "alice/other-major"))
    assert isinstance(events[-1], UploadFinished) and events[-1].verified_files > 0
    assert module.tqdm is before


async def test_a_remote_file_that_appeared_after_the_check_is_never_deleted_unseen(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    await run_upload(service, await service.preflight(ready_folder, "alice/grown"))
    plan = await service.preflight(ready_folder, "alice/grown", private=True)
    assert plan.deletions == [] and plan.visibility_change == "public → private"
    hf(hubx).upload_file(path_or_fileobj=b"{}", path_in_repo="extra_config.json", repo_id="alice/grown")
    with pytest.raises(UploadError, match="now holds extra_config.json.*did not list; nothing was published"):
        await run_upload(service, plan)
    assert "extra_config.json" in hf(hubx).list_repo_files("alice/grown")
    assert hf(hubx).model_info("alice/grown").private is False  # refused before any change on the Hub
    plan = await service.preflight(ready_folder, "alice/grown")
    assert plan.deletions == ["extra_config.json"]
    await run_upload(service, plan)
    assert "extra_config.json" not in hf(hubx).list_repo_files("alice/grown")


async def test_a_repo_made_private_after_the_check_stays_private_when_nobody_asked(hubx, ready_folder: Path) -> None:
    """The check saw no repo and showed "public"; the repo appeared private since: it is never made public unasked,
    and the result says what the repo is."""
    service = service_for(hubx)
    plan = await service.preflight(ready_folder, "alice/appeared")
    assert plan.repo_exists is False and plan.private is False and not plan.visibility_asked
    hf(hubx).create_repo("alice/appeared", private=True)
    events = await run_upload(service, plan)
    assert hf(hubx).model_info("alice/appeared").private is True
    assert events[-1].private is True and not events[-1].visibility_changed


async def test_a_rate_limited_upload_says_so_and_goes_on(hubx, ready_folder: Path) -> None:
    """huggingface_hub waits and retries a 429 itself; the wait reaches the consumer as a Notice."""
    from mlxtui.services.events import Notice

    service = service_for(hubx)
    plan = await service.preflight(ready_folder, "alice/rl")
    hubx.faults.rate_limit(1, method="POST", path_prefix="/api/models/alice/rl/preupload")
    events = await run_upload(service, plan)
    assert any(isinstance(e, Notice) and "rate limited" in e.text for e in events)
    assert isinstance(events[-1], UploadFinished)


async def test_a_card_written_for_another_repo_is_a_warning_until_it_follows_the_target(
    hubx, ready_folder: Path
) -> None:
    """Issue 14: the usage snippet loaded the folder name and went up unchanged; the preflight now says so."""
    from mlxtui.services.card import CardService

    plan = await service_for(hubx).preflight(ready_folder, "alice/tiny-4bit")
    card = checks_by_name(plan)["README.md"]
    assert card.status == "warning" and "usage snippet names another repo than alice/tiny-4bit" in card.detail
    assert "--repo alice/tiny-4bit` (or the Card pane)" in card.detail and plan.ok  # a warning, not a block
    service = CardService(Context(endpoint=hubx.url))
    text, _ = await service.build(ready_folder, existing=(ready_folder / "README.md").read_text(), repo_id="alice/tiny-4bit")
    (ready_folder / "README.md").write_text(text)
    plan = await service_for(hubx).preflight(ready_folder, "alice/tiny-4bit")
    assert "another repo" not in checks_by_name(plan)["README.md"].detail

"""Files the Hub already stores outside the target repo (another repo's copy of the weights) are not sent again,
and the result, the progress totals and `mlxtui upload --json` say so. Real huggingface_hub against the devhub."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from mlxtui.devhub.objects import is_lfs_path
from mlxtui.services import hubclient
from mlxtui.services.events import UploadFinished, UploadProgress, UploadStage
from mlxtui.services.upload import finished_summary
from tests.services.test_upload import SOURCE, run_upload, service_for

pytestmark = pytest.mark.usefixtures("restore_hub_environment")

LFS_PREFIX = "/_devhub/lfs/"


def lfs_paths(hub, folder: Path) -> set[str]:
    """The files the devhub stores as LFS objects (its preupload rule)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
            and (p.stat().st_size >= hub.lfs_threshold or is_lfs_path(p.relative_to(folder).as_posix(), p.stat().st_size))}


def put_oids(hub) -> set[str]:
    """The LFS objects whose bytes were PUT since the last clear_requests."""
    return {r.path[len(LFS_PREFIX):] for r in hub.requests if r.method == "PUT" and r.path.startswith(LFS_PREFIX)}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download_equals(hub, token: str, repo_id: str, folder: Path) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=token)
    for f in (p for p in folder.rglob("*") if p.is_file()):
        rel = f.relative_to(folder).as_posix()
        assert Path(api.hf_hub_download(repo_id, rel)).read_bytes() == f.read_bytes(), rel


async def test_a_second_name_for_the_same_folder_sends_no_weights_and_says_so(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    first = await run_upload(service, await service.preflight(ready_folder, "alice/first", private=True))
    assert isinstance(first[-1], UploadFinished) and first[-1].stored_files == 0
    lfs = lfs_paths(hubx, ready_folder)
    assert lfs == {"model.safetensors"}
    plan = await service.preflight(ready_folder, "alice/second")
    assert plan.ok, plan.errors
    hubx.clear_requests()
    events = await run_upload(service, plan)
    done = events[-1]
    assert isinstance(done, UploadFinished)
    weights = (ready_folder / "model.safetensors").stat().st_size
    # the weights are in the commit but not one byte of them travelled (alice's private repo holds them)
    assert put_oids(hubx) == set()
    assert (done.stored_files, done.stored_bytes) == (1, weights)
    assert done.sent_files + done.skipped_files == done.verified_files == len(plan.files)
    assert done.skipped_files == 1 and done.skipped_bytes == weights
    assert done.sent_bytes == plan.total_bytes - weights
    progress = [e for e in events if isinstance(e, UploadProgress)]
    assert progress and all(p.files_total == len(plan.files) - 1 for p in progress)
    assert all(p.bytes_total == plan.total_bytes - weights for p in progress)
    stages = [e.text for e in events if isinstance(e, UploadStage) and e.stage == "sending"]
    assert stages and stages[0].startswith(f"Sending {len(plan.files) - 1} files") and "1 already on the Hub" in stages[0]
    line = finished_summary(done)
    assert "1 already there with the same content" in line and "1 from elsewhere on the Hub" in line
    # one batch request before the send, the client's own after it; one preupload (the modes were kept)
    assert hubx.count_requests("POST", "/alice/second.git/info/lfs/objects/batch") == 2
    assert hubx.count_requests("POST", "/api/models/alice/second/preupload/") == 1
    download_equals(hubx, hubx.write_token, "alice/second", ready_folder)


async def test_only_the_lfs_files_the_hub_holds_are_skipped(devhub_factory, source_folder: Path, ready_folder: Path,
                                                           tmp_path: Path) -> None:
    hub = devhub_factory(lfs_threshold=10_000)  # tokenizer.json and a notes file go through LFS too
    hub.import_folder(SOURCE, source_folder)
    service = service_for(hub)
    await run_upload(service, await service.preflight(ready_folder, "alice/base"))
    second = tmp_path / "second"
    shutil.copytree(ready_folder, second)
    (second / "notes.md").write_text("Measured on a laptop.\n" * 1000)  # 22 kB: LFS, and new
    plan = await service.preflight(second, "alice/variant")
    assert plan.ok, plan.errors
    lfs = lfs_paths(hub, second)
    known = lfs - {"notes.md"}
    assert "notes.md" in lfs and len(known) >= 2  # the weights and tokenizer.json
    hub.clear_requests()
    events = await run_upload(service, plan)
    done = events[-1]
    sizes = {f.path: f.size for f in plan.files}
    assert put_oids(hub) == {sha(second / "notes.md")}
    assert done.stored_files == len(known) and done.stored_bytes == sum(sizes[p] for p in known)
    assert done.sent_files == len(plan.files) - len(known) and done.skipped_files == len(known)
    assert done.sent_bytes == plan.total_bytes - done.stored_bytes
    last = [e for e in events if isinstance(e, UploadProgress)][-1]
    assert last.files_total == done.sent_files and last.bytes_done == last.bytes_total == done.sent_bytes
    download_equals(hub, hub.write_token, "alice/variant", second)


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
async def test_another_users_weights_count_only_when_their_repo_is_readable(hubx, ready_folder: Path,
                                                                           private: bool) -> None:
    """A private repo's objects are never announced to someone who can't read it: bob sends the bytes himself."""
    alice = service_for(hubx)
    await run_upload(alice, await alice.preflight(ready_folder, "alice/origin", private=private))
    bob = service_for(hubx, "other")
    plan = await bob.preflight(ready_folder, "bob/copy")
    assert plan.ok, plan.errors
    hubx.clear_requests()
    done = (await run_upload(bob, plan))[-1]
    weights = ready_folder / "model.safetensors"
    if private:
        assert put_oids(hubx) == {sha(weights)} and done.stored_files == 0
        assert done.sent_files == len(plan.files) and done.sent_bytes == plan.total_bytes
    else:
        assert put_oids(hubx) == set() and done.stored_files == 1
        assert done.sent_bytes == plan.total_bytes - weights.stat().st_size
    download_equals(hubx, hubx.other_token, "bob/copy", ready_folder)


async def test_a_failed_batch_check_uploads_and_counts_as_before(hubx, ready_folder: Path) -> None:
    service = service_for(hubx)
    await run_upload(service, await service.preflight(ready_folder, "alice/one"))
    plan = await service.preflight(ready_folder, "alice/two")
    # the check's batch request fails; the client's own one (the next) answers
    hubx.faults.error(400, 1, path_prefix="/alice/two.git/info/lfs/objects/batch", method="POST")
    hubx.clear_requests()
    events = await run_upload(service, plan)
    done = events[-1]
    assert isinstance(done, UploadFinished) and done.verified_files == len(plan.files)
    assert done.stored_files == 0 and done.sent_files == len(plan.files) and done.skipped_files == 0
    assert put_oids(hubx) == set()  # huggingface_hub's own step still skipped the weights' bytes
    assert done.sent_bytes == plan.total_bytes - (ready_folder / "model.safetensors").stat().st_size
    assert "elsewhere" not in finished_summary(done)
    download_equals(hubx, hubx.write_token, "alice/two", ready_folder)


async def test_another_huggingface_hub_major_does_not_ask_and_counts_as_before(hubx, ready_folder: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    service = service_for(hubx)
    await run_upload(service, await service.preflight(ready_folder, "alice/m1"))
    plan = await service.preflight(ready_folder, "alice/m2")
    monkeypatch.setattr(hubclient, "installed_major", lambda: hubclient.HF_HUB_MAJOR + 1)
    hubx.clear_requests()
    events = await run_upload(service, plan)
    done = events[-1]
    assert isinstance(done, UploadFinished) and done.verified_files == len(plan.files)
    assert done.stored_files == 0 and done.sent_files == len(plan.files)
    assert hubx.count_requests("POST", "/alice/m2.git/info/lfs/objects/batch") == 1  # only the client's own
    assert not any(isinstance(e, UploadStage) and "Asking the Hub" in e.text for e in events)


def test_cli_json_says_the_weights_were_already_on_the_hub(hubx, mlx_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from mlxtui.cli import main

    monkeypatch.setenv("HF_TOKEN", hubx.write_token)
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    capsys.readouterr()
    assert main(["--endpoint", hubx.url, "upload", str(mlx_folder), "alice/j1", "--yes", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["stored_files"] == 0 and first["sent_files"] == first["verified_files"]
    assert main(["--endpoint", hubx.url, "upload", str(mlx_folder), "alice/j2", "--yes", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout is the JSON object alone; the checklist went to stderr
    weights = (mlx_folder / "model.safetensors").stat().st_size
    assert "Preflight:" in captured.err and "Verified" in captured.err
    assert result["repo_id"] == "alice/j2" and result["stored_files"] == 1 and result["stored_bytes"] == weights
    assert result["sent_files"] + result["skipped_files"] == result["verified_files"]
    assert result["skipped_files"] == 1 and result["sent_bytes"] == first["sent_bytes"] - weights
    assert "1 from elsewhere on the Hub" in result["summary"]
    assert hubx.write_token not in captured.out + captured.err


async def test_bytes_an_interrupted_upload_left_on_the_hub_are_not_sent_again(
        devhub_factory, source_folder: Path, ready_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import huggingface_hub.utils._http as hf_http

    from mlxtui.devhub.server import Fault
    from mlxtui.services.errors import UploadError

    # huggingface_hub retries a dropped PUT 5 times with backoff; skip the waiting, keep the retries
    monkeypatch.setattr(hf_http, "time", types.SimpleNamespace(**{**vars(hf_http.time), "sleep": lambda s: None}))
    hub = devhub_factory(lfs_threshold=10_000)  # tokenizer.json goes through LFS too
    hub.import_folder(SOURCE, source_folder)
    service = service_for(hub)
    plan = await service.preflight(ready_folder, "alice/resumed")
    weights = ready_folder / "model.safetensors"
    hub.faults.add(Fault("drop_upload", 100, "PUT", f"{LFS_PREFIX}{sha(weights)}"))  # every try of the weights dies
    with pytest.raises(UploadError, match="dropped"):
        await run_upload(service, plan)
    assert sha(ready_folder / "tokenizer.json") in put_oids(hub)  # it reached the server, uncommitted
    hub.faults.clear()
    hub.clear_requests()
    plan = await service.preflight(ready_folder, "alice/resumed")
    events = await run_upload(service, plan)
    done = events[-1]
    tokenizer = (ready_folder / "tokenizer.json").stat().st_size
    assert put_oids(hub) == {sha(weights)}
    assert (done.stored_files, done.stored_bytes) == (1, tokenizer) and done.skipped_files == 1
    assert done.sent_files == len(plan.files) - 1 and done.sent_bytes == plan.total_bytes - tokenizer
    assert "1 from elsewhere on the Hub" in finished_summary(done)
    download_equals(hub, hub.write_token, "alice/resumed", ready_folder)

"""The upload service against the local devhub through the real huggingface_hub client."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlxtui.services import Context
from mlxtui.services.errors import AuthError, InvalidInputError, UploadError
from mlxtui.services.events import UploadFinished, UploadProgress, UploadStage
from mlxtui.services.upload import UploadService, looks_like_token, suggest_repo_name

pytestmark = pytest.mark.usefixtures("restore_hub_environment")

SOURCE = "h2oai/h2o-danube2-tiny-chat"


@pytest.fixture
def hubx(devhub_factory, source_folder: Path):
    """A devhub holding the original model, so base_model resolves."""
    hub = devhub_factory()
    hub.import_folder(SOURCE, source_folder)
    return hub


@pytest.fixture
def ready_folder(mlx_folder: Path) -> Path:
    """The converted folder with a lint-clean card, as after the Card pane."""
    import asyncio

    from mlxtui.services.card import CardService

    service = CardService(Context(endpoint="http://127.0.0.1:9"))
    text, _ = asyncio.run(service.build(mlx_folder, existing=(mlx_folder / "README.md").read_text()))
    (mlx_folder / "README.md").write_text(text)
    return mlx_folder


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
    import sys

    import huggingface_hub.utils._xet_progress_reporting as xet
    import huggingface_hub.utils.tqdm  # noqa: F401

    from mlxtui.services.upload_progress import ProgressSink, progress_hook

    module = sys.modules["huggingface_hub.utils.tqdm"]
    before = (module.tqdm, xet.XetUploadProgressReporter)
    import threading

    with progress_hook(ProgressSink(lambda e: None, 0, 0, threading.Event())) as hooked:
        assert hooked and module.tqdm is not before[0]
    assert (module.tqdm, xet.XetUploadProgressReporter) == before

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
    plan = await service_for(hubx, None).preflight(Path(hubx.root), "alice/x") if False else None


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

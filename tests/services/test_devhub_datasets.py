"""Dataset repos on the local Hub, through the real huggingface_hub client: info, files, downloads, access rules."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import GatedRepoError, RemoteEntryNotFoundError, RepositoryNotFoundError

from mlxtui.devhub.demo import DEMO_DATASET
from mlxtui.services.lab_text import builtin_text
from tests.fixtures.devhub import OTHER_TOKEN, WRITE_TOKEN, make_repo_folder

TEXT = "The baker went to the market.\nThe sun was shining.\n"
ROWS = '{"text": "one"}\n{"text": "two"}\n'


@pytest.fixture(autouse=True)
def client_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A download cache of this test's own (huggingface_hub reads HF_HOME only at import)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


def dataset_folder(folder: Path, **extra: str | bytes) -> Path:
    files: dict[str, str | bytes] = {"README.md": "---\nlicense: mit\n---\n# Text\n", "eval.txt": TEXT,
                                     "data/train.jsonl": ROWS, **extra}
    return make_repo_folder(folder, files)


def test_a_dataset_is_served_as_the_client_expects(devhub_factory, tmp_path: Path) -> None:
    hub = devhub_factory()
    sha = hub.import_folder("alice/text", dataset_folder(tmp_path / "d"), repo_type="dataset")
    api = HfApi(endpoint=hub.url)
    info = api.dataset_info("alice/text")
    assert info.id == "alice/text" and info.sha == sha and info.author == "alice"
    assert sorted(s.rfilename for s in info.siblings) == [".gitattributes", "README.md", "data/train.jsonl", "eval.txt"]
    assert info.card_data is not None and info.card_data.get("license") == "mit"
    sized = api.dataset_info("alice/text", revision=sha, files_metadata=True)
    assert {s.rfilename: s.size for s in sized.siblings}["eval.txt"] == len(TEXT.encode())
    assert api.list_repo_files("alice/text", repo_type="dataset") == [
        ".gitattributes", "README.md", "data/train.jsonl", "eval.txt"]
    assert [e.path for e in api.list_repo_tree("alice/text", "data", repo_type="dataset")] == ["data/train.jsonl"]
    path = hf_hub_download("alice/text", "eval.txt", repo_type="dataset", endpoint=hub.url)
    assert Path(path).read_text() == TEXT
    folder = Path(snapshot_download("alice/text", repo_type="dataset", endpoint=hub.url))
    assert (folder / "data" / "train.jsonl").read_text() == ROWS and folder.name == sha
    head = httpx.head(f"{hub.url}/datasets/alice/text/resolve/main/eval.txt")
    assert head.status_code == 200 and head.headers["X-Repo-Commit"] == sha and head.headers["ETag"]
    # a dataset is not a model: the model routes do not see it
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("alice/text")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/text", "eval.txt", endpoint=hub.url)
    assert [m.id for m in api.list_models()] == []


def test_a_dataset_and_a_model_of_the_same_id_are_both_served(devhub_factory, tmp_path: Path) -> None:
    hub = devhub_factory()
    model_sha = hub.import_folder("alice/same", make_repo_folder(tmp_path / "m", {"config.json": "{}"}))
    data_sha = hub.import_folder("alice/same", dataset_folder(tmp_path / "d"), repo_type="dataset")
    api = HfApi(endpoint=hub.url)
    assert api.model_info("alice/same").sha == model_sha and api.dataset_info("alice/same").sha == data_sha
    assert api.list_repo_files("alice/same") == [".gitattributes", "config.json"]
    assert "eval.txt" in api.list_repo_files("alice/same", repo_type="dataset")
    assert Path(hf_hub_download("alice/same", "config.json", endpoint=hub.url)).read_text() == "{}"
    assert Path(hf_hub_download("alice/same", "eval.txt", repo_type="dataset", endpoint=hub.url)).read_text() == TEXT
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("alice/same", "config.json", repo_type="dataset", endpoint=hub.url)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("alice/same", "eval.txt", endpoint=hub.url)
    # a new commit to one leaves the other as it was
    hub.import_folder("alice/same", dataset_folder(tmp_path / "d2", **{"more.txt": "x"}), repo_type="dataset")
    assert api.model_info("alice/same").sha == model_sha and api.dataset_info("alice/same").sha != data_sha
    assert hub.store.list_repos() == ["alice/same"]
    assert hub.store.list_repos("dataset") == ["datasets/alice/same"]


def test_a_private_dataset_is_invisible_without_its_owners_token(devhub_factory, tmp_path: Path) -> None:
    hub = devhub_factory()
    hub.import_folder("alice/secret", dataset_folder(tmp_path / "d"), repo_type="dataset", private=True)
    for token in (None, OTHER_TOKEN):
        api = HfApi(endpoint=hub.url, token=token)
        with pytest.raises(RepositoryNotFoundError):
            api.dataset_info("alice/secret")
        with pytest.raises(RepositoryNotFoundError):
            api.list_repo_files("alice/secret", repo_type="dataset")
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download("alice/secret", "eval.txt", repo_type="dataset", endpoint=hub.url, token=token or False)
    assert HfApi(endpoint=hub.url, token=WRITE_TOKEN).dataset_info("alice/secret").private is True
    path = hf_hub_download("alice/secret", "eval.txt", repo_type="dataset", endpoint=hub.url, token=WRITE_TOKEN)
    assert Path(path).read_text() == TEXT


def test_a_gated_dataset_needs_access_for_its_files(devhub_factory, tmp_path: Path) -> None:
    hub = devhub_factory()
    hub.import_folder("alice/gated", dataset_folder(tmp_path / "d"), repo_type="dataset", gated="manual")
    with pytest.raises(GatedRepoError, match="dataset alice/gated"):
        hf_hub_download("alice/gated", "eval.txt", repo_type="dataset", endpoint=hub.url, token=OTHER_TOKEN)
    hub.store.grant_access("datasets/alice/gated", "bob")
    path = hf_hub_download("alice/gated", "eval.txt", repo_type="dataset", endpoint=hub.url, token=OTHER_TOKEN)
    assert Path(path).read_text() == TEXT


def test_a_large_dataset_file_comes_through_the_cdn_redirect(devhub_factory, tmp_path: Path) -> None:
    big = os.urandom(200_000)
    hub = devhub_factory(redirect_threshold=100_000)
    hub.import_folder("alice/big", dataset_folder(tmp_path / "d", **{"data.parquet": big}), repo_type="dataset")
    path = hf_hub_download("alice/big", "data.parquet", repo_type="dataset", endpoint=hub.url)
    assert Path(path).read_bytes() == big and [r.method for r in hub.cdn_requests] == ["GET"]


@pytest.mark.parametrize("url", [
    "/datasets/alice/text/resolve/main/../../../tokens.json",
    "/datasets/alice/text/resolve/main/..%2F..%2F..%2Ftokens.json",
    "/datasets/alice/text/resolve/main/%2E%2E/config.json",
    "/datasets/alice/text/resolve/main//etc/passwd",
    "/api/datasets/alice%2F..%2Ftext/x/tree/main",
    "/api/datasets/alice/..%2Ftext",
    "/api/models/datasets%2Falice/text",  # a model route never reaches a dataset's store key
    "/datasets%2Falice/text/resolve/main/eval.txt",
    "/api/spaces/alice/text",
])
def test_paths_out_of_a_dataset_or_across_repo_types_are_refused(devhub_factory, tmp_path: Path, url: str) -> None:
    hub = devhub_factory()
    hub.import_folder("alice/text", dataset_folder(tmp_path / "d"), repo_type="dataset")
    hub.import_folder("alice/text", make_repo_folder(tmp_path / "m", {"config.json": "{}"}))
    connection = http.client.HTTPConnection(hub.host, hub.port, timeout=30)
    connection.request("GET", url)  # sent as written: no client-side dot-segment clean-up
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    assert answer.status == 404 and answer.getheader("X-Error-Code") in ("RepoNotFound", "EntryNotFound", "NotFound")
    assert WRITE_TOKEN.encode() not in body and b"{}" != body


def test_the_client_refuses_a_traversal_filename_before_asking(devhub_factory, tmp_path: Path) -> None:
    hub = devhub_factory()
    hub.import_folder("alice/text", dataset_folder(tmp_path / "d"), repo_type="dataset")
    with pytest.raises((ValueError, RemoteEntryNotFoundError)):
        hf_hub_download("alice/text", "../../tokens.json", repo_type="dataset", endpoint=hub.url)
    assert not any(p.name == "tokens.json" for p in (tmp_path / "hf-cache").rglob("*"))


def test_the_demo_hub_serves_the_labs_text_as_a_dataset(hub) -> None:
    api = HfApi(endpoint=hub.url)
    files = api.list_repo_files(DEMO_DATASET, repo_type="dataset")
    assert {"eval.txt", "train.jsonl", "README.md"} <= set(files)
    path = hf_hub_download(DEMO_DATASET, "eval.txt", repo_type="dataset", endpoint=hub.url)
    assert Path(path).read_text() == builtin_text("eval")
    assert DEMO_DATASET not in [m.id for m in api.list_models(author="mlxtui")]

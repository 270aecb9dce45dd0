"""The local Hub through the real huggingface_hub client: every request kind of hub-protocol.md."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.fixtures.devhub import OTHER_TOKEN, READ_TOKEN, WRITE_TOKEN, make_repo_folder, safetensors_bytes

CARD = """---
license: apache-2.0
language:
- en
library_name: transformers
pipeline_tag: text-generation
tags:
- chat
base_model: acme/base
---
# Tiny model
"""
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8,
    "num_hidden_layers": 1,
    "vocab_size": 32,
}


@pytest.fixture(autouse=True)
def client_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Plain LFS (the devhub has no Xet; read at each upload) and a cache of our own.

    huggingface_hub reads HF_HOME once, at import, so a per-test HF_HOME set later does not move its cache.
    """
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


def tiny_model(folder: Path, **extra: str | bytes) -> Path:
    """A small but well-formed model folder: card, config, tokenizer config, bf16 safetensors, a nested file."""
    files: dict[str, str | bytes] = {
        "README.md": CARD,
        "config.json": json.dumps(CONFIG),
        "tokenizer_config.json": json.dumps({"eos_token": "</s>", "chat_template": "{{ messages }}", "model_max_length": 9}),
        "model.safetensors": safetensors_bytes({"embed.weight": ("BF16", [32, 8]), "norm.weight": ("F32", [8])}),
        "extra/notes.txt": "nested file\n",
        **extra,
    }
    return make_repo_folder(folder, files)


def seeded(devhub_factory, tmp_path: Path, **kwargs):
    """A hub with a public, a gated, a private and a community repo."""
    hub = devhub_factory(**kwargs)
    hub.import_folder("alice/tiny-llama", tiny_model(tmp_path / "a"), downloads=50, likes=7,
                      created_at="2024-03-01T00:00:00Z")
    hub.import_folder("alice/gated-llama", tiny_model(tmp_path / "b"), gated=True, downloads=10, likes=30,
                      created_at="2024-05-01T00:00:00Z")
    hub.import_folder("alice/secret-llama", tiny_model(tmp_path / "c"), private=True, downloads=999, likes=999)
    hub.import_folder("mlx-community/tiny-llama-4bit", make_repo_folder(tmp_path / "d", {
        "README.md": "---\nlibrary_name: mlx\ntags: [mlx]\nbase_model: alice/tiny-llama\n---\n",
        "config.json": json.dumps({**CONFIG, "quantization": {"group_size": 64, "bits": 4}}),
        "model.safetensors": safetensors_bytes({"w": ("U32", [4, 2])}),
    }), downloads=100, likes=1, created_at="2024-06-01T00:00:00Z")
    return hub


# ------------------------------------------------------------------ listing
def test_list_models_search_author_filter_sort_and_limit(devhub_factory, tmp_path: Path) -> None:
    hub = seeded(devhub_factory, tmp_path)
    api = HfApi(endpoint=hub.url)
    assert {m.id for m in api.list_models()} == {"alice/tiny-llama", "alice/gated-llama", "mlx-community/tiny-llama-4bit"}
    assert [m.id for m in api.list_models(search="TINY-LLAMA")] != []
    assert {m.id for m in api.list_models(search="gated")} == {"alice/gated-llama"}
    assert {m.id for m in api.list_models(author="mlx-community")} == {"mlx-community/tiny-llama-4bit"}
    assert [m.id for m in api.list_models(filter="mlx")] == ["mlx-community/tiny-llama-4bit"]
    assert [m.id for m in api.list_models(filter="library:mlx")] == ["mlx-community/tiny-llama-4bit"]
    assert {m.id for m in api.list_models(filter=["text-generation", "license:apache-2.0"])} == {
        "alice/tiny-llama", "alice/gated-llama"}
    assert [m.id for m in api.list_models(sort="downloads")][0] == "mlx-community/tiny-llama-4bit"
    assert [m.id for m in api.list_models(sort="likes")][0] == "alice/gated-llama"
    assert [m.id for m in api.list_models(sort="created_at")][0] == "mlx-community/tiny-llama-4bit"
    assert [m.id for m in api.list_models(sort="trending_score", limit=1)] == ["alice/gated-llama"]
    assert len(list(api.list_models(limit=2))) == 2
    first = next(iter(api.list_models(search="tiny-llama", sort="downloads")))
    assert first.downloads == 100 and first.likes == 1 and "mlx" in first.tags and first.library_name == "mlx"


def test_list_models_follows_link_pagination_across_pages(devhub_factory, tmp_path: Path) -> None:
    hub = devhub_factory(page_size=2)
    for i in range(5):
        hub.import_folder(f"alice/m{i}", make_repo_folder(tmp_path / f"m{i}", {"config.json": "{}"}), likes=i)
    api = HfApi(endpoint=hub.url)
    hub.clear_requests()
    assert [m.id for m in api.list_models(sort="likes")] == [f"alice/m{i}" for i in range(4, -1, -1)]
    assert hub.count_requests("GET", "/api/models") == 3  # pages of 2, 2, 1
    hub.clear_requests()
    assert len(list(api.list_models(limit=3))) == 3  # limit above the page size still works
    assert hub.count_requests("GET", "/api/models") == 2
    link = httpx.get(f"{hub.url}/api/models", params={"sort": "likes"}).headers["Link"]
    assert link.startswith(f"<{hub.url}/api/models?") and link.endswith('>; rel="next"')


def test_list_models_full_card_data_config_and_expand(devhub_factory, tmp_path: Path) -> None:
    hub = seeded(devhub_factory, tmp_path)
    api = HfApi(endpoint=hub.url)
    plain = next(iter(api.list_models(search="alice/tiny")))
    assert plain.siblings is None and plain.card_data is None and plain.config is None
    full = next(iter(api.list_models(search="alice/tiny", full=True, cardData=True, fetch_config=True)))
    assert {s.rfilename for s in full.siblings} >= {"config.json", "model.safetensors", "extra/notes.txt"}
    assert full.card_data.license == "apache-2.0"
    assert full.config["model_type"] == "llama"
    assert full.sha == api.model_info("alice/tiny-llama").sha
    expanded = next(iter(api.list_models(search="alice/tiny", expand=["downloads", "gated"])))
    assert expanded.downloads == 50 and expanded.gated is False and expanded.likes is None


# --------------------------------------------------------------- model_info
def test_model_info_reports_what_the_hub_derives(devhub_factory, tmp_path: Path) -> None:
    hub = seeded(devhub_factory, tmp_path)
    api = HfApi(endpoint=hub.url)
    info = api.model_info("alice/tiny-llama", files_metadata=True)
    assert len(info.sha) == 40
    assert info.private is False and info.gated is False
    assert info.downloads == 50 and info.likes == 7
    assert info.created_at.year == 2024 and info.last_modified is not None
    assert info.library_name == "transformers" and info.pipeline_tag == "text-generation"
    for tag in ["transformers", "safetensors", "llama", "text-generation", "chat", "en", "license:apache-2.0",
                "base_model:acme/base"]:
        assert tag in info.tags
    assert info.card_data.language == ["en"]
    assert info.config["architectures"] == ["LlamaForCausalLM"] and "hidden_size" not in info.config
    assert info.config["tokenizer_config"]["chat_template"] == "{{ messages }}"
    assert info.safetensors.parameters == {"BF16": 256, "F32": 8} and info.safetensors.total == 264
    siblings = {s.rfilename: s for s in info.siblings}
    weights = siblings["model.safetensors"]
    assert weights.lfs is not None and weights.lfs.size == weights.size
    assert weights.lfs.sha256 == hashlib.sha256((tmp_path / "a" / "model.safetensors").read_bytes()).hexdigest()
    assert siblings["config.json"].lfs is None and siblings["config.json"].size > 0
    assert len(siblings["config.json"].blob_id) == 40
    # by revision (branch or sha) and gated info is public
    assert api.model_info("alice/tiny-llama", revision=info.sha).sha == info.sha
    assert api.model_info("alice/gated-llama").gated == "manual"
    quant = api.model_info("mlx-community/tiny-llama-4bit")
    assert quant.config["quantization"] == {"group_size": 64, "bits": 4}
    assert quant.safetensors.parameters == {"U32": 8}


def test_tree_listing_files_and_pagination(devhub_factory, tmp_path: Path) -> None:
    hub = devhub_factory(page_size=3)
    hub.import_folder("alice/tiny-llama", tiny_model(tmp_path / "a", **{"extra/deep/x.txt": "x"}))
    api = HfApi(endpoint=hub.url)
    files = api.list_repo_files("alice/tiny-llama")
    assert files == sorted(files) and set(files) == {
        ".gitattributes", "README.md", "config.json", "tokenizer_config.json", "model.safetensors",
        "extra/notes.txt", "extra/deep/x.txt"}
    top = {(type(e).__name__, e.path) for e in api.list_repo_tree("alice/tiny-llama")}
    assert ("RepoFolder", "extra") in top and ("RepoFile", "config.json") in top and len(top) == 6
    sub = [e.path for e in api.list_repo_tree("alice/tiny-llama", path_in_repo="extra")]
    assert sub == ["extra/deep", "extra/notes.txt"]
    weights = next(e for e in api.list_repo_tree("alice/tiny-llama", expand=True) if e.path == "model.safetensors")
    assert weights.lfs is not None and weights.last_commit is not None and weights.last_commit.title == "Import"
    assert hub.count_requests("GET", "/api/models/alice/tiny-llama/tree") >= 3  # paginated by Link
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree("alice/tiny-llama", path_in_repo="nope"))
    info = api.get_paths_info("alice/tiny-llama", ["config.json", "extra"])
    assert [type(e).__name__ for e in info] == ["RepoFile", "RepoFolder"]


# ---------------------------------------------------------------- downloads
def test_hf_hub_download_direct_and_through_the_cdn_redirect(devhub_factory, tmp_path: Path) -> None:
    big = os.urandom(300_000)
    hub = devhub_factory(redirect_threshold=100_000)
    hub.import_folder("alice/big", make_repo_folder(tmp_path / "big", {"config.json": "{}", "weights.bin": big}))
    path = hf_hub_download("alice/big", "config.json", endpoint=hub.url)
    assert Path(path).read_text() == "{}" and hub.cdn_requests == []
    head = httpx.head(f"{hub.url}/alice/big/resolve/main/weights.bin")
    assert head.status_code == 302 and head.headers["Location"].startswith(hub.cdn_url)
    assert head.headers["X-Linked-Size"] == str(len(big)) and len(head.headers["X-Repo-Commit"]) == 40
    path = hf_hub_download("alice/big", "weights.bin", endpoint=hub.url)
    assert Path(path).read_bytes() == big
    assert [r.method for r in hub.cdn_requests] == ["GET"]
    # served from cache: one HEAD, no new download
    hf_hub_download("alice/big", "weights.bin", endpoint=hub.url)
    assert len(hub.cdn_requests) == 1
    # CDN URLs are signed
    assert httpx.get(head.headers["Location"].replace("sig=", "sig=0")).status_code == 403


def test_download_resumes_with_range_after_a_dropped_connection(
    devhub_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    import huggingface_hub.constants
    import huggingface_hub.file_download

    # the client only keeps whole chunks (10 MB by default) of a broken stream: use small ones
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    waits: list[float] = []  # and it waits 1 s before resuming: record instead
    monkeypatch.setattr(huggingface_hub.file_download, "time", types.SimpleNamespace(sleep=waits.append))
    data = os.urandom(2_000_000)
    hub = devhub_factory(redirect_threshold=1_000_000)
    hub.import_folder("alice/big", make_repo_folder(tmp_path / "big", {"weights.bin": data, "small.bin": data[:500_000]}))
    hub.faults.drop_download(1, path_prefix="/alice/big/resolve/main/weights.bin")
    assert Path(hf_hub_download("alice/big", "weights.bin", endpoint=hub.url)).read_bytes() == data
    assert [r.method for r in hub.cdn_requests] == ["GET", "GET"]
    [(path, ranged)] = hub.range_requests
    assert path == "/alice/big/resolve/main/weights.bin"
    start = int(ranged.removeprefix("bytes=").removesuffix("-"))
    assert 0 < start <= 1_000_000  # resumed where the dropped answer stopped, not from zero
    assert waits == [1]
    # the same on the API origin (no redirect below the threshold)
    hub.faults.drop_download(1, path_prefix="/alice/big/resolve/main/small.bin")
    assert Path(hf_hub_download("alice/big", "small.bin", endpoint=hub.url)).read_bytes() == data[:500_000]
    assert hub.range_requests[-1][0] == "/alice/big/resolve/main/small.bin"


def test_range_requests_answer_206(devhub_factory, tmp_path: Path) -> None:
    hub = devhub_factory()
    hub.import_folder("alice/t", make_repo_folder(tmp_path / "t", {"a.txt": "0123456789"}))
    url = f"{hub.url}/alice/t/resolve/main/a.txt"
    r = httpx.get(url, headers={"Range": "bytes=2-4"})
    assert r.status_code == 206 and r.content == b"234" and r.headers["Content-Range"] == "bytes 2-4/10"
    assert httpx.get(url, headers={"Range": "bytes=-3"}).content == b"789"
    assert httpx.get(url, headers={"Range": "bytes=50-"}).status_code == 416
    head = httpx.head(url)
    assert head.headers["Accept-Ranges"] == "bytes" and head.headers["Content-Length"] == "10"
    assert head.headers["ETag"].strip('"') == hashlib.sha1(b"blob 10\x000123456789").hexdigest()


def test_snapshot_download_fetches_every_file(devhub_factory, tmp_path: Path) -> None:
    hub = seeded(devhub_factory, tmp_path, redirect_threshold=100)
    folder = Path(snapshot_download("alice/tiny-llama", endpoint=hub.url))
    assert json.loads((folder / "config.json").read_text()) == CONFIG
    assert (folder / "extra" / "notes.txt").read_text() == "nested file\n"
    assert (folder / "model.safetensors").read_bytes() == (tmp_path / "a" / "model.safetensors").read_bytes()
    assert hub.count_requests("GET", "/api/models/alice/tiny-llama/revision/main") == 1
    only = Path(snapshot_download("alice/tiny-llama", endpoint=hub.url, allow_patterns=["*.json"],
                                  cache_dir=tmp_path / "cache2"))
    assert sorted(p.name for p in only.iterdir()) == ["config.json", "tokenizer_config.json"]


# ------------------------------------------------------------------- errors
def test_error_codes_map_to_client_exceptions(devhub_factory, tmp_path: Path) -> None:
    hub = seeded(devhub_factory, tmp_path)
    api = HfApi(endpoint=hub.url)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("alice/nope")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("alice/tiny-llama", revision="v9")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("alice/tiny-llama", "config.json", revision="v9", endpoint=hub.url)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("alice/tiny-llama", "missing.txt", endpoint=hub.url)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/nope", "config.json", endpoint=hub.url)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("gpt2")  # one-part ids do not exist here
    # gated: metadata is public, files need access (401 anonymous, 403 without grant) until granted
    with pytest.raises(GatedRepoError, match="restricted"):
        hf_hub_download("alice/gated-llama", "config.json", endpoint=hub.url)
    with pytest.raises(GatedRepoError, match="not in the authorized list"):
        hf_hub_download("alice/gated-llama", "config.json", endpoint=hub.url, token=OTHER_TOKEN)
    assert hf_hub_download("alice/gated-llama", "README.md", endpoint=hub.url, token=OTHER_TOKEN)
    assert hf_hub_download("alice/gated-llama", "config.json", endpoint=hub.url, token=WRITE_TOKEN)  # owner
    hub.grant_access("alice/gated-llama", "bob")
    assert hf_hub_download("alice/gated-llama", "config.json", endpoint=hub.url, token=OTHER_TOKEN)
    # every error carries X-Error-Code and a JSON body
    r = httpx.get(f"{hub.url}/api/models/alice/nope")
    assert r.headers["X-Error-Code"] == "RepoNotFound" and r.json() == {"error": "Repository not found"}
    # an unknown token: 401, and whoami says so
    with pytest.raises(HfHubHTTPError, match="Invalid user token") as caught:
        api.whoami(token="hf_bogus")
    assert caught.value.response.status_code == 401
    assert api.whoami(token=WRITE_TOKEN)["name"] == "alice"
    me = api.whoami(token=READ_TOKEN)
    assert me["auth"]["accessToken"]["role"] == "read" and me["orgs"][0]["name"] == "mlx-community"
    assert httpx.get(f"{hub.url}/api/agent-harnesses").status_code == 404


def test_private_repo_is_hidden_from_others_and_listings(devhub_factory, tmp_path: Path) -> None:
    hub = seeded(devhub_factory, tmp_path)
    api = HfApi(endpoint=hub.url)
    for token in (None, OTHER_TOKEN):
        with pytest.raises(RepositoryNotFoundError):
            api.model_info("alice/secret-llama", token=token)
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download("alice/secret-llama", "config.json", endpoint=hub.url, token=token)
        assert "alice/secret-llama" not in {m.id for m in api.list_models(token=token)}
    assert api.model_info("alice/secret-llama", token=READ_TOKEN).private is True
    assert "alice/secret-llama" in {m.id for m in api.list_models(token=WRITE_TOKEN)}


# ------------------------------------------------------------------- writes
def test_create_repo_private_and_exist_ok(devhub_factory) -> None:
    hub = devhub_factory()
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    url = api.create_repo("fresh", private=True)
    assert url.repo_id == "alice/fresh" and url == f"{hub.url}/alice/fresh"
    assert api.model_info("alice/fresh").private is True
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("alice/fresh", token=OTHER_TOKEN)
    with pytest.raises(HfHubHTTPError) as caught:
        api.create_repo("fresh")
    assert caught.value.response.status_code == 409
    assert api.create_repo("fresh", exist_ok=True).repo_id == "alice/fresh"
    assert api.create_repo("mlx-community/shared").repo_id == "mlx-community/shared"
    assert api.list_repo_files("alice/fresh") == [".gitattributes"]
    api.delete_repo("alice/fresh")
    assert not api.repo_exists("alice/fresh")


def test_read_only_and_foreign_tokens_are_refused(devhub_factory, tmp_path: Path) -> None:
    hub = seeded(devhub_factory, tmp_path)
    sha = HfApi(endpoint=hub.url).model_info("alice/tiny-llama").sha
    reader = HfApi(endpoint=hub.url, token=READ_TOKEN)
    for call in (
        lambda: reader.create_repo("nope"),
        lambda: reader.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/tiny-llama"),
        lambda: HfApi(endpoint=hub.url, token=OTHER_TOKEN).create_repo("mlx-community/nope"),
        lambda: HfApi(endpoint=hub.url, token=OTHER_TOKEN).upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/tiny-llama"),
    ):
        with pytest.raises(HfHubHTTPError) as caught:
            call()
        assert caught.value.response.status_code == 403
    assert HfApi(endpoint=hub.url).model_info("alice/tiny-llama").sha == sha
    assert not HfApi(endpoint=hub.url, token=WRITE_TOKEN).repo_exists("alice/nope")


def test_upload_folder_with_a_large_lfs_file(devhub_factory, tmp_path: Path) -> None:
    hub = devhub_factory()
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo("uploaded")
    big = os.urandom(11 * 1024 * 1024)
    folder = make_repo_folder(tmp_path / "up", {
        "README.md": "---\nlicense: mit\ntags: [mlx]\nlibrary_name: mlx\n---\n# Card\n",
        "config.json": json.dumps(CONFIG),
        "weights/model.safetensors": safetensors_bytes({"w": ("F32", [4])}),
        "big.dat": big,
    })
    hub.clear_requests()
    info = api.upload_folder(repo_id="alice/uploaded", folder_path=folder, commit_message="Add model")
    paths = [r.path for r in hub.requests]
    assert "/api/validate-yaml" in paths and "/api/models/alice/uploaded/preupload/main" in paths
    assert "/alice/uploaded.git/info/lfs/objects/batch" in paths
    assert sum(1 for r in hub.requests if r.method == "PUT") == 2  # big.dat (>10 MB) and the safetensors
    assert paths[-1] == "/api/models/alice/uploaded/commit/main"
    model = api.model_info("alice/uploaded", files_metadata=True)
    assert model.sha == info.oid and info.commit_url.endswith(info.oid)
    siblings = {s.rfilename: s for s in model.siblings}
    assert siblings["big.dat"].lfs.sha256 == hashlib.sha256(big).hexdigest()
    assert siblings["config.json"].lfs is None
    assert model.library_name == "mlx" and "mlx" in model.tags and model.safetensors.total == 4
    assert Path(hf_hub_download("alice/uploaded", "big.dat", endpoint=hub.url)).read_bytes() == big
    # a second identical upload sends no bytes and makes no commit
    hub.clear_requests()
    again = api.upload_folder(repo_id="alice/uploaded", folder_path=folder)
    assert again.oid == info.oid and not any(r.method == "PUT" for r in hub.requests)
    # deletions
    api.delete_file("config.json", repo_id="alice/uploaded")
    api.delete_folder("weights", repo_id="alice/uploaded")
    assert set(api.list_repo_files("alice/uploaded")) == {".gitattributes", "README.md", "big.dat"}
    with pytest.raises(RemoteEntryNotFoundError):
        api.delete_file("config.json", repo_id="alice/uploaded")


def test_invalid_card_yaml_is_refused_before_any_commit(devhub_factory, tmp_path: Path) -> None:
    hub = seeded(devhub_factory, tmp_path)
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    sha = api.model_info("alice/tiny-llama").sha
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(path_or_fileobj=b"---\nlicense: [unclosed\n---\n", path_in_repo="README.md",
                        repo_id="alice/tiny-llama")
    assert api.model_info("alice/tiny-llama").sha == sha
    ok = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": "---\nlicense: mit\n---\n", "repoType": "model"})
    assert ok.status_code == 200 and ok.json() == {"errors": [], "warnings": []}


def _snapshot_state(hub, repo: str) -> tuple[str, list[str], list[str]]:
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    commits = sorted(p.name for p in (hub.root / "repos" / repo / "commits").iterdir())
    return api.model_info(repo).sha, api.list_repo_files(repo), commits


def test_failed_or_interrupted_commits_leave_no_trace(
    devhub_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    import huggingface_hub.utils._http as client_http

    # the client backs off 1+2+4+8 s between retries of a dropped upload: skip the waiting
    monkeypatch.setattr(client_http, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    hub = seeded(devhub_factory, tmp_path)
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    before = _snapshot_state(hub, "alice/tiny-llama")
    folder = make_repo_folder(tmp_path / "new", {"new.txt": "new", "weights.bin": os.urandom(4096)})
    # 1. the server fails the commit itself (after validating it)
    hub.faults.fail_commit()
    with pytest.raises(HfHubHTTPError):
        api.upload_folder(repo_id="alice/tiny-llama", folder_path=folder)
    assert _snapshot_state(hub, "alice/tiny-llama") == before
    # 2. the connection drops in the middle of an LFS upload (new bytes: the pool already holds step 1's)
    hub.faults.drop_upload(10)  # more than the client's retries
    other = make_repo_folder(tmp_path / "other", {"new.txt": "new", "other.bin": os.urandom(300_000)})
    with pytest.raises(Exception):
        api.upload_folder(repo_id="alice/tiny-llama", folder_path=other)
    assert _snapshot_state(hub, "alice/tiny-llama") == before
    assert list((hub.root / "objects" / "tmp").iterdir()) == []  # no partial blob kept
    # 3. a commit naming an LFS object that was never uploaded is refused as a whole
    lines = [
        {"key": "header", "value": {"summary": "sneaky"}},
        {"key": "file", "value": {"path": "ok.txt", "content": "b2s=", "encoding": "base64"}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "0" * 64, "size": 3}},
    ]
    r = httpx.post(f"{hub.url}/api/models/alice/tiny-llama/commit/main",
                   content="\n".join(json.dumps(line) for line in lines),
                   headers={"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/x-ndjson"})
    assert r.status_code == 400 and "was not uploaded" in r.json()["error"]
    assert _snapshot_state(hub, "alice/tiny-llama") == before
    # and then a normal upload works
    api.upload_folder(repo_id="alice/tiny-llama", folder_path=folder)
    assert "new.txt" in api.list_repo_files("alice/tiny-llama")


# ------------------------------------------------------------------- faults
def test_429_with_retry_after_is_retried_by_the_client(
    devhub_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    import huggingface_hub.utils._http as client_http

    waits: list[float] = []
    monkeypatch.setattr(client_http, "time", types.SimpleNamespace(sleep=waits.append))
    hub = seeded(devhub_factory, tmp_path, redirect_threshold=100)
    api = HfApi(endpoint=hub.url)
    hub.faults.rate_limit(1, path_prefix="/api/models", method="GET", retry_after=7)
    assert len(list(api.list_models())) == 3
    assert hub.count_requests("GET", "/api/models") == 2
    assert waits == [8]  # Retry-After (+1 s the client adds)
    hub.clear_requests()
    fault = {"kind": "rate_limit", "n": 1, "path_prefix": "/alice/tiny-llama/resolve", "method": "GET"}
    assert httpx.post(f"{hub.url}/_devhub/faults", json=fault).status_code == 401  # admin routes need the admin token
    r = httpx.post(f"{hub.url}/_devhub/faults", json=fault, headers=hub.admin_headers)
    assert r.status_code == 200
    assert hf_hub_download("alice/tiny-llama", "config.json", endpoint=hub.url)
    assert hub.count_requests("GET", "/alice/tiny-llama/resolve") == 2
    # also on the CDN origin, where large files are fetched from
    hub.faults.rate_limit(1, path_prefix="/alice/tiny-llama/resolve/main/model.safetensors", method="GET")
    assert hf_hub_download("alice/tiny-llama", "model.safetensors", endpoint=hub.url)
    assert [r.method for r in hub.cdn_requests] == ["GET", "GET"]
    # the admin route lists, and clears, faults; admin calls are not logged as Hub requests
    hub.faults.slow(0.01, 5)
    assert httpx.get(f"{hub.url}/_devhub/faults", headers=hub.admin_headers).json()[0]["kind"] == "slow"
    httpx.delete(f"{hub.url}/_devhub/faults", headers=hub.admin_headers)
    assert hub.faults.active() == []
    assert not any(r.path.startswith("/_devhub") for r in hub.requests)


def test_keep_alive_connection_survives_error_answers_with_bodies(devhub) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", devhub.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("POST", "/api/models/alice/nope/preupload/main", body=b'{"files": []}' * 1000,
                         headers={"Authorization": f"Bearer {WRITE_TOKEN}", "Content-Type": "application/json"})
            answer = conn.getresponse()
            assert answer.status == 404 and answer.getheader("X-Error-Code") == "RepoNotFound"
            answer.read()
        conn.request("GET", "/api/models")
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read()) == []
    finally:
        conn.close()


def test_repos_survive_a_restart(devhub_factory, tmp_path: Path) -> None:
    hub = seeded(devhub_factory, tmp_path)
    info = HfApi(endpoint=hub.url).model_info("alice/tiny-llama")
    root = hub.root
    hub.stop()
    again = devhub_factory(root, tokens=None, port=hub.port)  # same port, stored tokens.json
    assert again.url == hub.url
    assert HfApi(endpoint=again.url).model_info("alice/tiny-llama").sha == info.sha
    assert HfApi(endpoint=again.url).whoami(token=WRITE_TOKEN)["name"] == "alice"
    assert Path(hf_hub_download("alice/tiny-llama", "config.json", endpoint=again.url)).read_text() == json.dumps(CONFIG)

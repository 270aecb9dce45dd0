"""The devhub's on-disk store and its command line, without HTTP (plus history routes through the client)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from mlxtui.devhub.store import CommitError, HubStore, RevisionNotFound
from tests.fixtures.devhub import WRITE_TOKEN, make_repo_folder, safetensors_bytes


def test_import_folder_publishes_the_folder_as_the_whole_tree(tmp_path: Path) -> None:
    store = HubStore(tmp_path / "root")
    first = make_repo_folder(tmp_path / "v1", {
        "config.json": "{}", "model.safetensors": safetensors_bytes({"w": ("F32", [2])}),
        "old.txt": "old", ".git/HEAD": "ref", "sub/.cache/x": "skip me",
    })
    sha1 = store.import_folder("alice/m", first, gated=True, downloads=5, likes=2, created_at="2024-01-02T03:04:05Z")
    assert len(sha1) == 40 and store.resolve_revision("alice/m", "main") == sha1
    files = store.files("alice/m", sha1)
    assert set(files) == {".gitattributes", "config.json", "model.safetensors", "old.txt"}
    assert files["model.safetensors"].lfs and not files["config.json"].lfs
    meta = store.meta("alice/m")
    assert meta["gated"] == "manual" and meta["downloads"] == 5 and meta["owner"] == "alice"
    assert meta["createdAt"] == "2024-01-02T03:04:05.000Z" == meta["lastModified"]

    second = make_repo_folder(tmp_path / "v2", {"config.json": '{"a": 1}'})
    sha2 = store.import_folder("alice/m", second, message="Second")
    assert sha2 != sha1
    assert set(store.files("alice/m", sha2)) == {".gitattributes", "config.json"}
    assert set(store.files("alice/m", sha1)) >= {"old.txt"}  # old snapshots stay readable
    assert [c["title"] for c in store.history("alice/m", sha2)] == ["Second", "Import", "initial commit"]
    # a re-import keeps the repo's flags unless told (issue 11: it used to make gated/private repos open)
    assert store.meta("alice/m")["gated"] == "manual" and store.meta("alice/m")["downloads"] == 5
    store.import_folder("alice/m", second, gated=False, private=True)
    assert store.meta("alice/m")["gated"] is False and store.meta("alice/m")["private"] is True
    assert store.resolve_revision("alice/m", sha1[:8]) == sha1
    with pytest.raises(RevisionNotFound):
        store.resolve_revision("alice/m", "nope")


def test_a_refused_commit_changes_nothing(tmp_path: Path) -> None:
    store = HubStore(tmp_path)
    sha = store.import_folder("alice/m", make_repo_folder(tmp_path / "f", {"a.txt": "a"}))
    commits = sorted((tmp_path / "repos/alice/m/commits").iterdir())
    good = store.put_bytes(b"fine")
    for ops in (
        [{"op": "add", "path": "b.txt", "sha256": good}, {"op": "add", "path": "c.bin", "sha256": "0" * 64, "lfs": True}],
        [{"op": "add", "path": "b.txt", "sha256": good}, {"op": "delete", "path": "missing.txt"}],
        [{"op": "add", "path": "../escape.txt", "sha256": good}],
        [{"op": "add", "path": "a.txt/inner", "sha256": good}],
        [{"op": "add", "path": "d/inner", "sha256": good}, {"op": "add", "path": "d", "sha256": good}],
    ):
        with pytest.raises(CommitError):
            store.commit("alice/m", ops)
    def boom() -> None:
        raise RuntimeError("late failure")

    with pytest.raises(RuntimeError):
        store.commit("alice/m", [{"op": "add", "path": "b.txt", "sha256": good}], before_publish=boom)
    assert store.resolve_revision("alice/m", "main") == sha
    assert sorted((tmp_path / "repos/alice/m/commits").iterdir()) == commits


def test_concurrent_commits_are_serialised(tmp_path: Path) -> None:
    store = HubStore(tmp_path)
    store.create_repo("alice/m")
    def add(i: int) -> None:
        store.commit("alice/m", [{"op": "add", "path": f"f{i}.txt", "sha256": store.put_bytes(str(i).encode())}])

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    head = store.resolve_revision("alice/m", "main")
    assert {f"f{i}.txt" for i in range(8)} <= set(store.files("alice/m", head))
    assert len(store.history("alice/m", head)) == 9


def test_cli_token_import_and_grant(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    import io

    from mlxtui.cli import main

    root = tmp_path / "root"
    folder = make_repo_folder(tmp_path / "m", {"config.json": "{}"})
    monkeypatch.setattr("sys.stdin", io.StringIO("hf_cli_token_1234\n"))
    assert main(["devhub", "token", "--root", str(root), "--stdin", "--user", "carol", "--org", "acme", "--role", "read"]) == 0
    tokens = json.loads((root / "tokens.json").read_text())
    assert tokens["hf_cli_token_1234"] == {"user": "carol", "orgs": ["acme"], "role": "read"}
    assert (root / "tokens.json").stat().st_mode & 0o777 == 0o600
    capsys.readouterr()
    assert main(["devhub", "import", "--root", str(root), "acme/m", str(folder), "--private", "--gated"]) == 0
    out = capsys.readouterr().out
    store = HubStore(root)
    assert f"acme/m@{store.resolve_revision('acme/m', 'main')}" in out
    assert store.meta("acme/m")["private"] is True and store.meta("acme/m")["gated"] == "manual"
    assert main(["devhub", "grant", "--root", str(root), "acme/m", "dave"]) == 0
    assert store.meta("acme/m")["granted"] == ["dave"]
    assert main(["devhub", "import", "--root", str(root), "acme/x", str(tmp_path / "missing")]) == 2


def test_commit_history_and_refs_through_the_client(devhub_factory, tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    hub = devhub_factory()
    hub.import_folder("alice/m", make_repo_folder(tmp_path / "m", {"a.txt": "a"}))
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id="alice/m", commit_message="Add b")
    commits = api.list_repo_commits("alice/m")
    assert [c.title for c in commits] == ["Add b", "Import", "initial commit"]
    refs = api.list_repo_refs("alice/m")
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", commits[0].commit_id)]
    assert api.file_exists("alice/m", "b.txt") and not api.file_exists("alice/m", "c.txt")
    api.update_repo_settings("alice/m", private=True, gated="auto")
    assert api.model_info("alice/m").private is True and api.model_info("alice/m").gated == "auto"


def test_cli_serve_prints_the_endpoint_and_serves(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    root = tmp_path / "root"
    HubStore(root).import_folder("alice/m", make_repo_folder(tmp_path / "m", {"config.json": "{}"}))
    proc = subprocess.Popen([sys.executable, "-m", "mlxtui", "devhub", "serve", "--root", str(root)],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        url = re.search(r"endpoint: (http://\S+)", "".join(lines)).group(1)
        assert HfApi(endpoint=url).model_info("alice/m").id == "alice/m"
    finally:
        proc.terminate()
        proc.wait(timeout=10)

"""The local Hub tried as an attacker would: each class of attack with several instances.

Every answer must be a 4xx (never a 500, never a hang), nothing outside the root may be served, and a refused
write must leave the repo exactly as it was. The real huggingface_hub client is used where it can express the
attack; raw httpx or a raw socket where it cannot (bad oids, malformed bodies).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RevisionNotFoundError
from hypothesis import given, settings
from hypothesis import strategies as st

from mlxtui.devhub.objects import CommitError, check_repo_path
from tests.fixtures.devhub import OTHER_TOKEN, WRITE_TOKEN, make_repo_folder, safetensors_bytes

SENTINEL = "OUTSIDE-THE-ROOT-7f3a9c"
WEIGHTS = safetensors_bytes({"w": ("F32", [64])})
WEIGHTS_SHA = hashlib.sha256(WEIGHTS).hexdigest()


@pytest.fixture(autouse=True)
def client_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def hub(devhub_factory, tmp_path: Path):
    """A hub with alice/open (public), alice/gated (gated weights) and alice/hidden (private), and a secret next door."""
    (tmp_path / "secret.json").write_text(json.dumps({"files": {}, "parents": [], "note": SENTINEL}))
    server = devhub_factory(root=tmp_path / "root", read_timeout=2.0)
    server.import_folder("alice/open", make_repo_folder(tmp_path / "o", {"config.json": "{}", "README.md": "# open"}))
    server.import_folder("alice/gated", make_repo_folder(tmp_path / "g", {"config.json": "{}", "model.safetensors": WEIGHTS}),
                         gated=True)
    hidden = safetensors_bytes({"h": ("F32", [32])})
    server.import_folder("alice/hidden", make_repo_folder(tmp_path / "h", {"model.safetensors": hidden}), private=True)
    server.hidden_sha = hashlib.sha256(hidden).hexdigest()  # type: ignore[attr-defined]
    HfApi(endpoint=server.url, token=OTHER_TOKEN).create_repo("bob/mine")
    return server


def secrets_of(hub) -> list[str]:
    """Strings that must never appear in an answer: tokens, the admin token, the signing secret, the sentinel."""
    root = hub.root
    return [SENTINEL, WRITE_TOKEN, OTHER_TOKEN, hub.admin_token,
            (root / "signing-secret").read_text().strip(), "root:x:0:0"]


def assert_refused(response: httpx.Response, hub, *, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    for secret in secrets_of(hub):
        assert secret not in response.text


def commit_raw(hub, token: str, repo: str, lines: list, *, raw: bytes | None = None) -> httpx.Response:
    body = raw if raw is not None else "\n".join(json.dumps(line) for line in lines).encode()
    headers = {"Content-Type": "application/x-ndjson", **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.post(f"{hub.url}/api/models/{repo}/commit/main", content=body, timeout=20, headers=headers)


def head_of(hub, repo: str) -> str:
    return hub.store.resolve_revision(repo, "main")


HEADER = {"key": "header", "value": {"summary": "attack"}}


# ------------------------------------------------------------------ LFS oids
BAD_OIDS = [
    "../../tokens.json", "../../../../../../etc/passwd", "ab/../../tokens", "../" * 21 + "x",
    WEIGHTS_SHA.upper(), WEIGHTS_SHA[:63], WEIGHTS_SHA + "0", WEIGHTS_SHA[:63] + "g", WEIGHTS_SHA + "\x00",
    " " + WEIGHTS_SHA, "tmp/" + "a" * 60, "", 12345, None, ["x"], {"a": 1},
]


@pytest.mark.parametrize("oid", BAD_OIDS, ids=range(len(BAD_OIDS)))
def test_commit_with_a_malformed_lfs_oid_is_refused_and_changes_nothing(hub, oid) -> None:
    before = head_of(hub, "bob/mine")
    r = commit_raw(hub, OTHER_TOKEN, "bob/mine", [HEADER, {"key": "lfsFile", "value": {
        "path": "stolen.bin", "algo": "sha256", "oid": oid, "size": 10}}])
    assert_refused(r, hub, status=400)
    assert head_of(hub, "bob/mine") == before


def test_malformed_oids_in_the_lfs_batch_get_per_object_errors(hub) -> None:
    objects = [{"oid": oid, "size": 1} for oid in BAD_OIDS[:8]] + [{"oid": WEIGHTS_SHA, "size": "1"}]
    r = httpx.post(f"{hub.url}/bob/mine.git/info/lfs/objects/batch", timeout=20,
                   headers={"Authorization": f"Bearer {OTHER_TOKEN}"},
                   json={"operation": "upload", "transfers": ["basic"], "objects": objects})
    assert r.status_code == 200
    answers = r.json()["objects"]
    assert len(answers) == len(objects) and all(a["error"]["code"] == 422 for a in answers)


# ------------------------------------------------- laundering gated / private weights
@pytest.mark.parametrize("source", ["gated", "hidden"])
def test_weights_of_a_repo_one_cannot_read_cannot_be_committed_into_ones_own(hub, source) -> None:
    sha = WEIGHTS_SHA if source == "gated" else hub.hidden_sha
    size = len(WEIGHTS) if source == "gated" else hub.store.blobs.path(sha).stat().st_size
    # the batch does not say "already here" (that would be an oracle and a licence to reference it)
    r = httpx.post(f"{hub.url}/bob/mine.git/info/lfs/objects/batch", timeout=20,
                   headers={"Authorization": f"Bearer {OTHER_TOKEN}"},
                   json={"operation": "upload", "objects": [{"oid": sha, "size": size}]})
    assert "upload" in r.json()["objects"][0]["actions"]
    before = head_of(hub, "bob/mine")
    for path in ("model.safetensors", "copy/weights.bin"):
        r = commit_raw(hub, OTHER_TOKEN, "bob/mine", [HEADER, {"key": "lfsFile", "value": {
            "path": path, "algo": "sha256", "oid": sha, "size": size}}])
        assert_refused(r, hub, status=400)
    assert head_of(hub, "bob/mine") == before
    with pytest.raises(HfHubHTTPError):
        hf_hub_download("bob/mine", "model.safetensors", endpoint=hub.url, token=OTHER_TOKEN)
    # an anonymous caller (no token) cannot write at all
    assert_refused(commit_raw(hub, "", "bob/mine", [HEADER]), hub)


def test_referencing_is_allowed_to_readers_and_to_whoever_uploads_the_bytes(hub, tmp_path: Path) -> None:
    line = {"key": "lfsFile", "value": {"path": "model.safetensors", "algo": "sha256", "oid": WEIGHTS_SHA,
                                        "size": len(WEIGHTS)}}
    # alice owns the gated repo: she may reference its weights in another (private) repo of hers
    HfApi(endpoint=hub.url, token=WRITE_TOKEN).create_repo("alice/copy", private=True)
    assert commit_raw(hub, WRITE_TOKEN, "alice/copy", [HEADER, line]).status_code == 200
    # bob, once granted, may too
    assert commit_raw(hub, OTHER_TOKEN, "bob/mine", [HEADER, line]).status_code == 400
    hub.grant_access("alice/gated", "bob")
    assert commit_raw(hub, OTHER_TOKEN, "bob/mine", [HEADER, line]).status_code == 200
    # carol-less case: bob uploads the same bytes himself through the real client to another repo: fine
    api = HfApi(endpoint=hub.url, token=OTHER_TOKEN)
    api.create_repo("bob/own-bytes")
    api.upload_file(path_or_fileobj=io.BytesIO(safetensors_bytes({"x": ("F32", [48])})),
                    path_in_repo="model.safetensors", repo_id="bob/own-bytes")
    assert hf_hub_download("bob/own-bytes", "model.safetensors", endpoint=hub.url, token=OTHER_TOKEN)


def test_uploading_bytes_equal_to_a_gated_blob_works_and_serves_only_the_uploader(hub, tmp_path: Path) -> None:
    api = HfApi(endpoint=hub.url, token=OTHER_TOKEN)
    api.upload_file(path_or_fileobj=io.BytesIO(WEIGHTS), path_in_repo="model.safetensors", repo_id="bob/mine")
    path = hf_hub_download("bob/mine", "model.safetensors", endpoint=hub.url, token=OTHER_TOKEN)
    assert Path(path).read_bytes() == WEIGHTS  # he had the bytes: nothing was laundered
    with pytest.raises(GatedRepoError):
        hf_hub_download("alice/gated", "model.safetensors", endpoint=hub.url, token=OTHER_TOKEN)


# ------------------------------------------------------------------ revisions
def padded(target: str, length: int = 40) -> str:
    """A revision that walks out of commits/ and is exactly `length` long (the old full-sha test)."""
    rest = length - len(target)
    return "./" * (rest // 2) + ("/" if rest % 2 else "") + target


BAD_REVISIONS = [
    padded("../../../../tokens"), padded("../../../../../secret"), padded("../../meta"), padded("../refs"),
    "../../../../tokens", "..%2F..%2Fmeta", "main/../../meta", "\x00main", "a" * 300,
]


@pytest.mark.parametrize("revision", BAD_REVISIONS, ids=range(len(BAD_REVISIONS)))
def test_revisions_that_walk_out_of_the_commits_folder_are_not_found(hub, revision) -> None:
    assert len(BAD_REVISIONS[0]) == 40
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    with pytest.raises((RevisionNotFoundError, HfHubHTTPError)) as caught:
        api.model_info("alice/open", revision=revision)
    assert caught.value.response.status_code in (400, 404)
    for secret in secrets_of(hub):
        assert secret not in caught.value.response.text
    for url in (f"{hub.url}/api/models/alice/open/tree/{revision}", f"{hub.url}/alice/open/resolve/{revision}/config.json",
                f"{hub.url}/api/models/alice/open/commits/{revision}"):
        r = httpx.get(url.replace("\x00", "%00"), headers={"Authorization": f"Bearer {WRITE_TOKEN}"}, timeout=20)
        assert_refused(r, hub)


def test_an_upper_case_or_short_commit_sha_is_not_a_path(hub) -> None:
    sha = head_of(hub, "alice/open")
    api = HfApi(endpoint=hub.url)
    assert api.model_info("alice/open", revision=sha).sha == sha
    assert api.model_info("alice/open", revision=sha[:7]).sha == sha
    for revision in (sha.upper(), sha[:7] + "*", sha + "0"):
        with pytest.raises(RevisionNotFoundError):
            api.model_info("alice/open", revision=revision)


# ------------------------------------------------------------------ file paths
BAD_PATHS = ["../escape.txt", "/etc/passwd", "a/../../b.txt", "a\\..\\b.txt", "dir\\file.txt", "a\x00b.txt",
             "a\nb.txt", ".git/config", "", "a//b.txt", "./a.txt", "a/./b.txt", "..", "x" * 1200, 7, None]


@pytest.mark.parametrize("path", BAD_PATHS, ids=range(len(BAD_PATHS)))
def test_commits_with_bad_file_paths_are_refused(hub, path) -> None:
    before = head_of(hub, "bob/mine")
    content = base64.b64encode(b"hello").decode()
    for op in ({"key": "file", "value": {"path": path, "content": content, "encoding": "base64"}},
               {"key": "deletedFile", "value": {"path": path}}, {"key": "deletedFolder", "value": {"path": path}}):
        assert_refused(commit_raw(hub, OTHER_TOKEN, "bob/mine", [HEADER, op]), hub)
    assert head_of(hub, "bob/mine") == before


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "..", ".", "", "b.txt", "\\", "\x00", ".git"]), min_size=1, max_size=6))
def test_no_path_with_a_dot_dot_empty_or_control_segment_is_accepted(parts: list[str]) -> None:
    path = "/".join(parts)
    try:
        clean = check_repo_path(path)
    except CommitError:
        return
    segments = clean.split("/")
    assert not any(s in ("", ".", "..") for s in segments) and "\\" not in clean and "\x00" not in clean
    assert segments[0] != ".git"


@pytest.mark.parametrize("spelling", ["..%2F..%2Ftokens.json", "%2E%2E/%2E%2E/tokens.json", "..%5C..%5Ctokens.json",
                                      "%2Fetc%2Fpasswd", "....//....//tokens.json", "objects/../tokens.json"])
def test_resolve_never_serves_a_file_outside_the_repo(hub, spelling) -> None:
    for repo in ("alice/open", "..%2F..", "alice/..%2F.."):
        r = httpx.get(f"{hub.url}/{repo}/resolve/main/{spelling}", timeout=20)
        assert_refused(r, hub, status=404)


# ------------------------------------------------------------------ bodies
JSON_ROUTES = [
    ("POST", "/api/repos/create"), ("DELETE", "/api/repos/delete"), ("PUT", "/api/models/bob/mine/settings"),
    ("POST", "/api/models/bob/mine/preupload/main"), ("POST", "/bob/mine.git/info/lfs/objects/batch"),
    ("POST", "/api/models/bob/mine/paths-info/main"), ("POST", "/api/validate-yaml"),
]
BAD_JSON = [b"[1, 2, 3]", b'"text"', b"42", b"null", b"{not json", b"\xff\xfe", b"[" * 5000 + b"]" * 5000,
            b'{"n": ' + b"9" * 5000 + b"}"]


@pytest.mark.parametrize("method,route", JSON_ROUTES)
def test_json_bodies_that_are_not_objects_get_400(hub, method, route) -> None:
    for body in BAD_JSON:
        r = httpx.request(method, f"{hub.url}{route}", content=body, timeout=20,
                          headers={"Authorization": f"Bearer {OTHER_TOKEN}", "Content-Type": "application/json"})
        assert_refused(r, hub, status=400)


WRONG_TYPES = [
    ("POST", "/api/repos/create", {"name": ["x"]}), ("POST", "/api/repos/create", {"name": "ok", "organization": 5}),
    ("DELETE", "/api/repos/delete", {"name": None}), ("PUT", "/api/models/bob/mine/settings", {"private": "yes"}),
    ("PUT", "/api/models/bob/mine/settings", {"gated": ["manual"]}),
    ("POST", "/api/models/bob/mine/preupload/main", {"files": "x"}),
    ("POST", "/api/models/bob/mine/preupload/main", {"files": [{"path": "a", "size": "12"}]}),
    ("POST", "/api/models/bob/mine/preupload/main", {"files": [["a", 1]]}),
    ("POST", "/bob/mine.git/info/lfs/objects/batch", {"objects": {"oid": "x"}}),
    ("POST", "/bob/mine.git/info/lfs/objects/batch", {"objects": ["x"]}),
    ("POST", "/api/models/bob/mine/paths-info/main", {"paths": 5}),
    ("POST", "/api/validate-yaml", {"content": {"a": 1}}),
]


@pytest.mark.parametrize("method,route,body", WRONG_TYPES, ids=range(len(WRONG_TYPES)))
def test_fields_of_the_wrong_type_get_400(hub, method, route, body) -> None:
    r = httpx.request(method, f"{hub.url}{route}", json=body, timeout=20,
                      headers={"Authorization": f"Bearer {OTHER_TOKEN}"})
    assert_refused(r, hub, status=400)


BAD_COMMITS = [b"[1,2]", b'{"key": "header", "value": []}', b'{"key": "file", "value": {"path": "a", "content": 5}}',
               b'{"key": "lfsFile", "value": {"path": "a", "oid": "' + b"a" * 64 + b'", "size": "big"}}',
               b'{"key": "header", "value": {"parentCommit": 5}}', b'{"key": "nope", "value": {}}',
               b"\xff\xfe", b'{"key": "file", "value": {"path": "a", "content": "***"}}']


@pytest.mark.parametrize("body", BAD_COMMITS, ids=range(len(BAD_COMMITS)))
def test_malformed_commit_payloads_get_400(hub, body) -> None:
    before = head_of(hub, "bob/mine")
    assert_refused(commit_raw(hub, OTHER_TOKEN, "bob/mine", [], raw=body), hub, status=400)
    assert head_of(hub, "bob/mine") == before


def raw_request(hub, data: bytes, timeout: float = 15.0) -> tuple[int | None, bytes]:
    """Send bytes on a fresh connection; (status, body) of the answer, or (None, b"") when it was closed unanswered."""
    with socket.create_connection(("127.0.0.1", hub.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)  # socket.timeout here would mean the server hung: the test fails
            if not chunk:
                return None, b""
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(head.split(b" ")[1]), body


def post_raw(path: str, headers: str, body: bytes) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body


@pytest.mark.parametrize("headers,body", [
    ("Content-Length: abc\r\n", b"{}"),
    ("Content-Length: -5\r\n", b"{}"),
    ("Content-Length: 1e3\r\n", b"{}"),
    ("Content-Length: 99999999999999999999\r\n", b"{}"),
    ("Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"),
    ("Transfer-Encoding: chunked\r\n", b"2\r\n{}XX0\r\n\r\n"),
    ("Transfer-Encoding: chunked\r\n", b"-1\r\n{}\r\n0\r\n\r\n"),
    ("Transfer-Encoding: chunked\r\n", b"fffffffffffffffffffff\r\n"),
    ("Transfer-Encoding: gzip\r\n", b"{}"),
], ids=range(9))
def test_malformed_lengths_and_chunked_bodies_get_400_not_500_or_a_hang(hub, headers, body) -> None:
    for path in ("/api/validate-yaml", "/api/repos/create", "/api/models/bob/mine/commit/main"):
        status, answer = raw_request(hub, post_raw(path, headers + f"Authorization: Bearer {OTHER_TOKEN}\r\n", body))
        assert status is not None and 400 <= status < 500, (status, answer[:200])
        assert SENTINEL.encode() not in answer


def test_a_body_that_stops_arriving_is_dropped_after_the_read_timeout(hub) -> None:
    # announces 100 bytes, sends 2, then waits: the server (read_timeout=2 s) closes instead of waiting forever
    status, _ = raw_request(hub, post_raw("/api/validate-yaml", "Content-Length: 100\r\n", b"{}"), timeout=60)
    assert status is None
    status, _ = raw_request(hub, post_raw("/api/validate-yaml", "Transfer-Encoding: chunked\r\n", b"10\r\n{}"), timeout=60)
    assert status is None
    assert httpx.get(f"{hub.url}/api/models/alice/open", timeout=20).status_code == 200  # still serving


@pytest.mark.parametrize("size", [2_000_001, 3_000_000, 9_000_000])
def test_oversized_validate_yaml_bodies_get_413_and_the_connection_survives(hub, size) -> None:
    content = "---\nlicense: mit\n---\n" + "x" * size
    with httpx.Client(timeout=30) as client:
        r = client.post(f"{hub.url}/api/validate-yaml", json={"content": content})
        assert_refused(r, hub, status=413)
        assert client.post(f"{hub.url}/api/validate-yaml", json={"content": "---\na: 1\n---\n"}).status_code == 200


def test_oversized_json_bodies_on_other_routes_get_413(hub) -> None:
    big = {"files": [{"path": f"f{i}.txt", "size": 1, "sample": "x" * 200} for i in range(60_000)]}
    r = httpx.post(f"{hub.url}/api/models/bob/mine/preupload/main", json=big, timeout=60,
                   headers={"Authorization": f"Bearer {OTHER_TOKEN}"})
    assert_refused(r, hub, status=413)


# ------------------------------------------------------------------ front matter
ALIAS_BOMBS = [
    # classic billion laughs: each level repeats the one before ten times
    "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
    # few aliases, long strings: 4 levels of 10 over a 4 kB string
    "s: &s " + "x" * 4000 + "\n" + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 10)}]\n" for p, c in zip("sabc", "abcd")),
    # a mapping merged over and over
    "base: &b {k1: v, k2: v, k3: v}\n" + "".join(f"m{i}: {{<<: *b, i: {i}}}\n" for i in range(150)),
]


@pytest.mark.parametrize("bomb", ALIAS_BOMBS, ids=["laughs", "long-strings", "merges"])
def test_a_tiny_readme_cannot_make_model_info_huge(hub, tmp_path: Path, bomb: str) -> None:
    readme = f"---\nlicense: mit\n{bomb}---\n# card\n"
    assert len(readme) < 10_000
    hub.import_folder("alice/bomb", make_repo_folder(tmp_path / "bomb", {"README.md": readme, "config.json": "{}"}))
    r = httpx.get(f"{hub.url}/api/models/alice/bomb", timeout=30)
    assert r.status_code == 200 and len(r.content) < 100_000
    assert "cardData" not in r.json()
    r = httpx.post(f"{hub.url}/api/validate-yaml", json={"content": readme}, timeout=30)
    assert r.status_code == 400 and len(r.content) < 10_000


def test_front_matter_with_yaml_only_types_is_served_as_json(hub, tmp_path: Path) -> None:
    readme = "---\nlicense: mit\ndate: 2024-05-01\nlibrary_name: [not, a, string]\n---\n"
    hub.import_folder("alice/dates", make_repo_folder(tmp_path / "d", {"README.md": readme}))
    info = HfApi(endpoint=hub.url).model_info("alice/dates")
    assert info.card_data["date"] == "2024-05-01"
    for query in ("library=transformers", "filter=library:mlx", "pipeline_tag=text-generation"):
        assert httpx.get(f"{hub.url}/api/models?{query}", timeout=20).status_code == 200


# ------------------------------------------------------------------ admin
ADMIN_CALLS = [("POST", "/_devhub/grant", {"repo": "alice/gated", "user": "bob"}),
               ("POST", "/_devhub/faults", {"kind": "error", "status": 503, "n": 1000}),
               ("GET", "/_devhub/faults", None), ("DELETE", "/_devhub/faults", None),
               ("GET", "/_devhub/requests", None), ("DELETE", "/_devhub/requests", None)]


@pytest.mark.parametrize("method,path,body", ADMIN_CALLS, ids=[f"{m} {p}" for m, p, _ in ADMIN_CALLS])
def test_admin_routes_need_the_admin_token(hub, method, path, body) -> None:
    for headers, status in (({}, 401), ({"Authorization": f"Bearer {WRITE_TOKEN}"}, 403),
                            ({"Authorization": f"Bearer {OTHER_TOKEN}"}, 403),
                            ({"Authorization": "Bearer " + hub.admin_token[:-1]}, 403)):
        r = httpx.request(method, f"{hub.url}{path}", json=body, headers=headers, timeout=20)
        assert_refused(r, hub, status=status)
        assert "alice/hidden" not in r.text
    assert hub.faults.active() == [] and "bob" not in hub.store.meta("alice/gated")["granted"]
    with pytest.raises(GatedRepoError):
        hf_hub_download("alice/gated", "model.safetensors", endpoint=hub.url, token=OTHER_TOKEN)
    r = httpx.request(method, f"{hub.url}{path}", json=body, headers=hub.admin_headers, timeout=20)
    assert r.status_code == 200


def test_the_admin_token_and_signing_secret_are_private_files_in_the_root(hub) -> None:
    for name in ("admin-token", "signing-secret", "tokens.json"):
        assert (hub.root / name).stat().st_mode & 0o777 == 0o600, name
    assert (hub.root / "admin-token").read_text().strip() == hub.admin_token
    assert hub.store.token_info(hub.admin_token) is None  # not a user token


def test_a_root_made_by_an_older_version_gets_its_secrets_tightened(devhub_factory, tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    (root / "tokens.json").write_text(json.dumps({WRITE_TOKEN: {"user": "alice", "orgs": [], "role": "write"}}))
    (root / "admin-token").write_text("devhub_admin_from_before\n")
    for name in ("tokens.json", "admin-token"):
        (root / name).chmod(0o644)
    hub = devhub_factory(root=root, tokens=None)
    assert hub.admin_token == "devhub_admin_from_before"
    for name in ("tokens.json", "admin-token", "signing-secret"):
        assert (root / name).stat().st_mode & 0o777 == 0o600, name
    assert HfApi(endpoint=hub.url, token=WRITE_TOKEN).whoami()["name"] == "alice"


# ------------------------------------------------------------------ restarts
def test_a_signed_download_url_survives_a_restart(devhub_factory, tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = devhub_factory(root=root, redirect_threshold=100)
    first.import_folder("alice/big", make_repo_folder(tmp_path / "b", {"model.safetensors": WEIGHTS}))
    head = httpx.head(f"{first.url}/alice/big/resolve/main/model.safetensors")
    location = head.headers["Location"]
    assert httpx.get(location, headers={"Range": "bytes=0-9"}).content == WEIGHTS[:10]
    port, cdn_port = first.port, first.cdn_port
    first.stop()
    second = devhub_factory(root=root, tokens=None, port=port, cdn_port=cdn_port, redirect_threshold=100)
    r = httpx.get(location, headers={"Range": "bytes=10-"})  # a resumed download after the restart
    assert r.status_code == 206 and r.content == WEIGHTS[10:]
    assert second.admin_token == first.admin_token


def test_stale_upload_temp_files_are_swept_at_start_but_live_ones_kept(devhub_factory, tmp_path: Path) -> None:
    import fcntl

    root = tmp_path / "root"
    devhub_factory(root=root).stop()
    tmp_dir = root / "objects" / "tmp"
    stale = [tmp_dir / "upload-killed1", tmp_dir / "upload-killed2"]
    for path in stale:
        path.write_bytes(os.urandom(1000))
    live = tmp_dir / "upload-live"
    with open(live, "wb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # another process's upload still in flight
        devhub_factory(root=root, tokens=None)
        assert not any(path.exists() for path in stale)
        assert live.exists()


def test_a_dropped_upload_leaves_no_temp_file(devhub_factory, tmp_path: Path) -> None:
    hub = devhub_factory()
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo("alice/drop")
    temp = hub.root / "objects" / "tmp"
    # The server drops the connection halfway through the body: the client's retry lands the file whole.
    # (One drop, not "every try": the client backs off 1+2+4+8+8 s before giving up, 23 s of a test's time.)
    fault = hub.faults.drop_upload(1)
    api.upload_file(path_or_fileobj=io.BytesIO(WEIGHTS), path_in_repo="model.safetensors", repo_id="alice/drop")
    assert fault.remaining == 0
    assert Path(hf_hub_download("alice/drop", "model.safetensors", endpoint=hub.url, token=WRITE_TOKEN)).read_bytes() == WEIGHTS
    assert list(temp.iterdir()) == []

    # The client goes away mid-body, after the server started writing the bytes to a temp file.
    big = os.urandom(4_000_000)
    oid = hashlib.sha256(big).hexdigest()
    batch = httpx.post(f"{hub.url}/alice/drop.git/info/lfs/objects/batch", timeout=20,
                       headers={"Authorization": f"Bearer {WRITE_TOKEN}"},
                       json={"operation": "upload", "objects": [{"oid": oid, "size": len(big)}]})
    href = httpx.URL(batch.json()["objects"][0]["actions"]["upload"]["href"])
    head = f"PUT {href.raw_path.decode()} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(big)}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", hub.port), timeout=20) as sock:
        sock.sendall(head + big[: len(big) // 2])
        assert wait_until(lambda: any(temp.glob("upload-*"))), "the server never started writing the upload"
    assert wait_until(lambda: not any(temp.iterdir())), f"left behind: {list(temp.iterdir())}"
    assert not hub.store.blobs.path(oid).exists()


def wait_until(check, timeout: float = 30.0) -> bool:
    """Poll `check` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# ------------------------------------------------------------------ the CLI
def cli(args: list[str], capsys) -> tuple[int, str, str]:
    from mlxtui.cli import main

    try:
        code = main(args)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mlxtui: "), err
    assert "Traceback" not in err


def test_reimport_keeps_visibility_and_gating_unless_told(tmp_path: Path, capsys) -> None:
    root, folder = str(tmp_path / "root"), str(make_repo_folder(tmp_path / "m", {"config.json": "{}"}))
    from mlxtui.devhub.store import HubStore

    store = HubStore(root)
    assert cli(["devhub", "import", "--root", root, "alice/m", folder, "--private", "--gated"], capsys)[0] == 0
    assert cli(["devhub", "import", "--root", root, "alice/m", folder], capsys)[0] == 0
    assert store.meta("alice/m")["private"] is True and store.meta("alice/m")["gated"] == "manual"
    assert cli(["devhub", "import", "--root", root, "alice/m", folder, "--public", "--not-gated"], capsys)[0] == 0
    assert store.meta("alice/m")["private"] is False and store.meta("alice/m")["gated"] is False
    code, _, err = cli(["devhub", "import", "--root", root, "alice/m", folder, "--public", "--private"], capsys)
    assert code == 2
    assert_one_line(err)


def test_token_never_comes_from_argv(tmp_path: Path, capsys, monkeypatch) -> None:
    root = str(tmp_path / "root")
    secret = "hf_onTheCommandLine123"
    code, out, err = cli(["devhub", "token", "--root", root, secret, "--user", "carol"], capsys)
    assert code == 2 and secret not in out + err
    assert_one_line(err)
    assert not (tmp_path / "root" / "tokens.json").exists() or secret not in (tmp_path / "root" / "tokens.json").read_text()
    # generated: printed alone on stdout, and it works
    code, out, err = cli(["devhub", "token", "--root", root, "--user", "carol"], capsys)
    token = out.strip()
    assert code == 0 and token.startswith("hf_") and len(token) > 30
    from mlxtui.devhub.store import HubStore

    assert HubStore(root).token_info(token)["user"] == "carol"
    # from stdin; a bad one is refused
    for bad in ("", "short", "has space in it", "x" * 300):
        monkeypatch.setattr("sys.stdin", io.StringIO(bad + "\n"))
        code, out, err = cli(["devhub", "token", "--root", root, "--stdin", "--user", "carol"], capsys)
        assert code == 2
        assert_one_line(err)


@pytest.mark.parametrize("args,code", [
    (["devhub", "import", "--root", "{root}", "not a repo", "{folder}"], 2),
    (["devhub", "import", "--root", "{root}", "../../etc", "{folder}"], 2),
    (["devhub", "import", "--root", "{root}", "alice/m", "{root}/missing"], 2),
    (["devhub", "import", "alice/m", "{folder}"], 2),
    (["devhub", "grant", "--root", "{root}", "alice/none", "bob"], 1),
    (["devhub", "grant", "--root", "{root}", "alice/../x", "bob"], 2),
    (["devhub", "grant", "--root", "{root}", "alice/m", "bad user!"], 2),
    (["devhub", "grant", "--root", "{root}"], 2),
    (["devhub", "serve", "--root", "{root}", "--host", "0.0.0.0"], 2),
    (["devhub", "serve", "--root", "{root}", "--host", "192.168.1.20"], 2),
    (["devhub", "serve", "--root", "{root}", "--port", "abc"], 2),
    (["devhub", "serve", "--root", "{root}", "--port", "70000"], 2),
    (["devhub", "serve", "--root", "{file}"], 1),
    (["devhub", "token", "--root", "{root}", "--user", "carol", "--role", "admin"], 2),
    (["devhub", "token", "--root", "{root}", "--user", "../evil"], 2),
    (["devhub", "frobnicate"], 2),
], ids=range(16))
def test_cli_mistakes_are_one_line_and_no_traceback(tmp_path: Path, capsys, args, code) -> None:
    root = tmp_path / "root"
    folder = make_repo_folder(tmp_path / "m", {"config.json": "{}"})
    (tmp_path / "file").write_text("not a folder")
    filled = [a.format(root=root, folder=folder, file=tmp_path / "file") for a in args]
    got, _, err = cli(filled, capsys)
    assert got == code, err
    assert_one_line(err)


def test_serve_with_allow_remote_warns(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "mlxtui", "devhub", "serve", "--root", str(tmp_path / "r"),
                             "--host", "0.0.0.0", "--allow-remote"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert "endpoint:" in "".join(proc.stdout.readline() for _ in range(2))
        assert "warning" in proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    refused = subprocess.run([sys.executable, "-m", "mlxtui", "devhub", "serve", "--root", str(tmp_path / "r"),
                              "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.parametrize("kind", ["file-link", "dir-link", "relative-link"])
def test_import_never_reads_through_a_link_out_of_the_folder(tmp_path: Path, capsys, kind) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_rsa").write_text(SENTINEL)
    folder = make_repo_folder(tmp_path / "m", {"config.json": "{}"})
    if kind == "file-link":
        (folder / "vocab.txt").symlink_to(outside / "id_rsa")
    elif kind == "dir-link":
        (folder / "extra").symlink_to(outside, target_is_directory=True)
    else:
        (folder / "notes.txt").symlink_to(Path("..") / "outside" / "id_rsa")
    root = tmp_path / "root"
    code, out, err = cli(["devhub", "import", "--root", str(root), "alice/m", str(folder)], capsys)
    assert code == 2 and "outside" in err
    assert_one_line(err)
    from mlxtui.devhub.store import HubStore

    store = HubStore(root)
    assert not store.repo_exists("alice/m")
    assert not any(SENTINEL.encode() in p.read_bytes() for p in (root / "objects").rglob("*") if p.is_file())


def test_import_of_a_cache_snapshot_follows_its_links_into_blobs(tmp_path: Path) -> None:
    from mlxtui.devhub.store import HubStore

    repo = tmp_path / "cache" / "models--alice--m"
    blob = repo / "blobs" / ("a" * 64)
    blob.parent.mkdir(parents=True)
    blob.write_text("{}")
    snapshot = repo / "snapshots" / ("b" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").symlink_to(Path("..") / ".." / "blobs" / ("a" * 64))
    store = HubStore(tmp_path / "root")
    sha = store.import_folder("alice/m", snapshot)
    assert store.read_bytes("alice/m", sha, "config.json") == b"{}"


def test_the_request_log_stays_bounded(hub) -> None:
    hub.log.max_entries = 5
    for _ in range(20):
        httpx.get(f"{hub.url}/api/models/alice/open", timeout=20)
    assert len(hub.requests) == 5 and hub.count_requests("GET", "/api/models/alice/open") == 5


def test_the_lfs_upload_and_verify_urls_only_work_as_signed(hub) -> None:
    for suffix in ("", "?size=328", f"?size={len(WEIGHTS)}&sig=" + "0" * 32, "?repo=bob/mine&user=bob&size=1&sig=x"):
        r = httpx.post(f"{hub.url}/_devhub/lfs/{WEIGHTS_SHA}/verify{suffix}", json={"oid": WEIGHTS_SHA, "size": len(WEIGHTS)})
        assert_refused(r, hub, status=403)  # no oracle for what the pool holds
        r = httpx.put(f"{hub.url}/_devhub/lfs/{WEIGHTS_SHA}{suffix}", content=WEIGHTS)
        assert_refused(r, hub, status=403)
    # a signed URL for one repo and user does not work for another
    r = httpx.post(f"{hub.url}/bob/mine.git/info/lfs/objects/batch", timeout=20,
                   headers={"Authorization": f"Bearer {OTHER_TOKEN}"},
                   json={"operation": "upload", "objects": [{"oid": WEIGHTS_SHA, "size": len(WEIGHTS)}]})
    href = r.json()["objects"][0]["actions"]["upload"]["href"]
    assert_refused(httpx.put(href.replace("repo=bob%2Fmine", "repo=alice%2Fopen"), content=WEIGHTS), hub, status=403)
    assert httpx.put(href, content=WEIGHTS).status_code == 200
    verify = r.json()["objects"][0]["actions"]["verify"]["href"]
    assert httpx.post(verify, json={"oid": WEIGHTS_SHA, "size": len(WEIGHTS)}).status_code == 200

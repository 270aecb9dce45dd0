"""Write routes of the API: repos, settings, validate-yaml, preupload, LFS batch/upload/verify, commits.

Every field is type-checked (400 otherwise); object ids must be 64 lowercase hex digits; a commit may name an
LFS object only when the caller uploaded it to that repo or can already read a repo that holds it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
from typing import Any
from urllib.parse import urlencode

from mlxtui.devhub.auth import ApiBase, Caller
from mlxtui.devhub.info import FrontMatterError, parse_front_matter
from mlxtui.devhub.objects import gated_value, is_sha256
from mlxtui.devhub.plumbing import Dropped, HubError, get_int, get_list, get_str, int_param, repo_not_found, truthy
from mlxtui.devhub.store import CommitError, RepoExists, RepoNotFound, RevisionNotFound, is_lfs_path
from mlxtui.services.modelfolder import is_repo_id

__all__ = ["WriteRoutes", "VALIDATE_YAML_LIMIT"]

#: a model card sent to validate-yaml (the front matter inside is capped again by bounded.load_yaml)
VALIDATE_YAML_LIMIT = 2_000_000
#: the most operations one commit may carry
MAX_COMMIT_OPERATIONS = 100_000
#: a chunked LFS upload (no Content-Length) is held in memory: keep it small
MAX_CHUNKED_UPLOAD = 64 * 1024 * 1024


class WriteRoutes(ApiBase):
    """What the client sends: repo creation and deletion, settings, uploads and commits."""

    def h_create_repo(self) -> None:
        caller = self.caller()
        if caller.user is None:
            raise HubError(401, "Unauthorized", "You must be authenticated to create a repository")
        body = self.json_body()
        if body.get("type") not in (None, "model"):
            raise HubError(400, "BadRequest", "devhub only hosts model repositories")
        name = get_str(body, "name", "", what="create repo")
        namespace = get_str(body, "organization", None, what="create repo") or caller.user
        repo = f"{namespace}/{name}"
        if not is_repo_id(repo):
            raise HubError(400, "BadRequest", f"Invalid repo name: {repo[:200]!r}")
        if not caller.can_write(namespace):
            raise HubError(403, "Forbidden", f'You don\'t have the rights to create a model under the namespace "{namespace}"')
        visibility = get_str(body, "visibility", None, what="create repo")
        private = visibility == "private" or bool(body.get("private"))
        url = f"{self.base_url()}/{repo}"
        try:
            self.hub.store.create_repo(repo, private=private)
        except RepoExists:
            raise HubError(409, "RepoExists", "You already created this model repo",
                           body={"error": "You already created this model repo", "url": url}) from None
        self.send_json({"url": url, "name": repo, "id": hashlib.sha1(repo.encode()).hexdigest()[:24]})

    def h_delete_repo(self) -> None:
        caller = self.caller()
        body = self.json_body()
        namespace = get_str(body, "organization", None, what="delete repo") or caller.user
        repo = f"{namespace}/{get_str(body, 'name', what='delete repo')}"
        if not is_repo_id(repo):  # a plain owner/name only: never another repo type's store key
            raise repo_not_found()
        self.writable_repo(repo, caller)
        self.hub.store.delete_repo(repo)
        self.send_json({})

    def h_settings(self, repo: str) -> None:
        caller = self.caller()
        self.writable_repo(repo, caller)
        body = self.json_body()
        fields: dict[str, Any] = {}
        if "private" in body:
            if not isinstance(body["private"], bool):
                raise HubError(400, "BadRequest", "settings: 'private' must be true or false")
            fields["private"] = body["private"]
        if "visibility" in body:
            visibility = get_str(body, "visibility", what="settings")
            if visibility not in ("private", "public"):
                raise HubError(400, "BadRequest", "settings: 'visibility' must be 'private' or 'public'")
            fields["private"] = visibility == "private"
        if "gated" in body:
            if body["gated"] not in (False, True, "auto", "manual", "false", "true"):
                raise HubError(400, "BadRequest", "settings: 'gated' must be false, 'auto' or 'manual'")
            fields["gated"] = gated_value(False if body["gated"] == "false" else body["gated"])
        meta = self.hub.store.update_meta(repo, **fields)
        self.send_json({"private": meta["private"], "gated": meta["gated"]})

    def h_validate_yaml(self) -> None:
        body = self.json_body(VALIDATE_YAML_LIMIT)
        content = get_str(body, "content", "", what="validate-yaml")
        try:
            data = parse_front_matter(content)
        except FrontMatterError as error:
            raise HubError(400, "BadRequest", "Invalid metadata in README.md",
                           body={"errors": [{"message": str(error)}], "warnings": []}) from None
        warnings = [] if data else [{"message": "Empty or missing yaml metadata in repo card"}]
        self.send_json({"errors": [], "warnings": warnings})

    def h_preupload(self, repo: str, rev: str) -> None:
        caller = self.caller()
        self.writable_repo(repo, caller)
        body = self.json_body()
        sha = self.resolve_sha(repo, rev)
        current = self.hub.store.files(repo, sha)
        out = []
        for item in get_list(body, "files", what="preupload"):
            if not isinstance(item, dict):
                raise HubError(400, "BadRequest", "preupload: each file must be an object")
            path = get_str(item, "path", what="preupload")
            size = get_int(item, "size", 0, what="preupload")
            lfs = size >= self.hub.lfs_threshold or is_lfs_path(path, size)
            existing = current.get(path)
            oid = None
            if existing is not None:
                oid = existing.sha256 if lfs else existing.oid
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": path.startswith(".git/"), "oid": oid})
        self.send_json({"files": out, "commitOid": sha})

    # -------------------------------------------------------------------- LFS
    def may_reference(self, caller: Caller, repo: str, oid: str) -> bool:
        """Whether a commit by `caller` to `repo` may name LFS object `oid` without uploading its bytes."""
        store = self.hub.store
        if not store.has_blob(oid):
            return False
        if caller.user is not None and store.uploaded_by(repo, caller.user, oid):
            return True
        return any(self.can_read_files(holder, caller) for holder in store.repos_holding(oid))

    def h_lfs_batch(self, repo: str) -> None:
        caller = self.caller()
        body = self.json_body()
        if body.get("operation", "upload") != "upload":
            self.repo_meta(repo, caller)
            raise HubError(400, "BadRequest", "devhub serves downloads through resolve URLs, not the LFS batch API")
        self.writable_repo(repo, caller)
        base = self.base_url()
        objects = []
        for obj in get_list(body, "objects", what="LFS batch"):
            if not isinstance(obj, dict):
                raise HubError(400, "BadRequest", "LFS batch: each object must be an object")
            oid, size = obj.get("oid"), obj.get("size")
            if not is_sha256(oid) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
                objects.append({"oid": str(oid)[:80], "size": size if isinstance(size, int) else None,
                                "error": {"code": 422, "message": "invalid oid or size"}})
                continue
            if self.hub.store.has_blob(oid, size) and self.may_reference(caller, repo, oid):
                objects.append({"oid": oid, "size": size})  # no actions: nothing to send
                continue
            # whoever is not already entitled proves they hold the bytes by sending them (no existence oracle)
            sig = self.hub.sign("upload", repo, caller.user or "", oid, str(size))
            query = urlencode({"repo": repo, "user": caller.user, "size": size, "sig": sig})
            objects.append({
                "oid": oid, "size": size, "authenticated": True,
                "actions": {
                    "upload": {"href": f"{base}/_devhub/lfs/{oid}?{query}", "expires_in": 3600},
                    "verify": {"href": f"{base}/_devhub/lfs/{oid}/verify?{query}", "expires_in": 3600},
                },
            })
        self.send(200, json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(),
                  content_type="application/vnd.git-lfs+json")

    def h_lfs_put(self, oid: str) -> None:
        q = {k: v[0] for k, v in self.query.items()}
        repo, user, size = q.get("repo", ""), q.get("user", ""), int_param(self.query, "size", -1)
        if size < 0 or not self.hub.signature_ok(q.get("sig", ""), "upload", repo, user, oid, str(size)):
            raise HubError(403, "Forbidden", "Invalid or expired upload URL")
        length = self.content_length()
        if length is not None and length != size:
            raise HubError(400, "BadRequest", f"Content-Length {length} does not match the announced size {size}")
        if self.hub.faults.take("drop_upload", "PUT", self.raw_path):
            # read half the bytes, then vanish: the client sees the connection die mid-upload
            self.rfile.read(max(0, size // 2))
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raise Dropped()
        if length is not None:
            stream = self.rfile
            self._body = b""  # put_stream drains it
        else:
            body = self.read_body(min(MAX_CHUNKED_UPLOAD, size))
            if len(body) != size:
                raise HubError(400, "BadRequest", f"Uploaded {len(body)} bytes, announced {size}")
            stream = io.BytesIO(body)
        try:
            self.hub.store.put_stream(stream, size, expected_sha256=oid)
        except CommitError as error:
            self.close_connection = True  # a short or wrong body: the stream position is unknown
            raise HubError(400, "BadRequest", str(error)) from None
        try:
            if user:
                self.hub.store.record_upload(repo, user, oid)
        except RepoNotFound:
            pass  # the repo was deleted meanwhile: the bytes stay in the pool, unreferenced
        self.send(200, b"", {"ETag": f'"{oid}"'}, "text/plain")

    def h_lfs_verify(self, oid: str) -> None:
        q = {k: v[0] for k, v in self.query.items()}
        repo, user, size = q.get("repo", ""), q.get("user", ""), int_param(self.query, "size", -1)
        # signed like the upload URL: an unsigned verify would tell anyone which objects the pool holds
        if size < 0 or not self.hub.signature_ok(q.get("sig", ""), "upload", repo, user, oid, str(size)):
            raise HubError(403, "Forbidden", "Invalid or expired verify URL")
        body = self.json_body()
        if get_int(body, "size", size, what="LFS verify") != size:
            raise HubError(400, "BadRequest", "LFS verify: size does not match the upload")
        if not self.hub.store.has_blob(oid, size):
            raise HubError(404, "EntryNotFound", f"LFS object {oid} was not uploaded")
        self.send_json({"success": True})

    def h_xet_token(self, repo: str, rev: str) -> None:
        raise HubError(404, "XetNotSupported",
                       "devhub does not speak Xet: set HF_HUB_DISABLE_XET=1 to upload with plain LFS")

    # ----------------------------------------------------------------- commit
    def h_commit(self, repo: str, rev: str) -> None:
        caller = self.caller()
        meta = self.writable_repo(repo, caller)  # before reading the body: strangers get 401/403/404 at once
        self.resolve_sha(repo, rev)  # 404 RevisionNotFound before anything else
        if truthy(self.query.get("create_pr", [""])[0]):
            raise HubError(400, "BadRequest", "devhub does not support pull requests")
        body = self.read_body(self.hub.max_commit_body)
        header, operations = self.parse_commit(body, caller, repo)
        store = self.hub.store
        # regular files only reach the blob pool now (content-addressed: harmless if the commit later fails)
        for op in operations:
            if "data" in op:
                op["sha256"] = store.put_bytes(op.pop("data"))
        fault = self.hub.faults.take("fail_commit", "POST", self.raw_path)

        def before_publish() -> None:
            if fault is not None:
                raise HubError(fault.status, "Injected", fault.message)

        try:
            sha = store.commit(
                repo, operations, revision=rev, title=str(header.get("summary") or "Upload"),
                message=str(header.get("description") or ""), author=caller.user or meta["owner"],
                parent_commit=header.get("parentCommit"), before_publish=before_publish,
            )
        except CommitError as error:
            message = str(error)
            code = "EntryNotFound" if "cannot delete" in message else "BadRequest"
            status = 404 if code == "EntryNotFound" else 400
            if code == "EntryNotFound":
                message += ". A file with this name doesn't exist"
            raise HubError(status, code, message) from None
        except RevisionNotFound:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}") from None
        base = self.base_url()
        self.send_json({"success": True, "commitOid": sha, "commitUrl": f"{base}/{repo}/commit/{sha}",
                        "hookOutput": ""})

    def parse_commit(self, body: bytes, caller: Caller, repo: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Validate every NDJSON line into (header, operations); nothing is stored until all of them pass."""
        from mlxtui.services.bounded import BadFileError, parse_json

        header: dict[str, Any] = {}
        operations: list[dict[str, Any]] = []
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise HubError(400, "BadRequest", "Commit payload is not UTF-8") from None
        for number, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                line = parse_json(raw, f"commit line {number}", max_bytes=len(raw))
            except BadFileError as error:
                raise HubError(400, "BadRequest", f"Commit payload is not valid NDJSON: {error}") from None
            if not isinstance(line, dict) or not isinstance(line.get("value", {}), dict):
                raise HubError(400, "BadRequest", f"commit line {number}: expected {{\"key\": ..., \"value\": {{...}}}}")
            key, value, what = line.get("key"), line.get("value") or {}, f"commit line {number}"
            if key == "header":
                for name in ("summary", "description", "parentCommit"):
                    get_str(value, name, None, what=what)
                header = value
                continue
            if len(operations) >= MAX_COMMIT_OPERATIONS:
                raise HubError(400, "BadRequest", f"A commit may hold at most {MAX_COMMIT_OPERATIONS:,} operations")
            path = get_str(value, "path", what=what)
            if key == "file":
                if get_str(value, "encoding", "base64", what=what) != "base64":
                    raise HubError(400, "BadRequest", "Only base64 file content is supported")
                try:
                    data = base64.b64decode(get_str(value, "content", "", what=what), validate=True)
                except ValueError:
                    raise HubError(400, "BadRequest", f"{path[:200]!r}: content is not valid base64") from None
                operations.append({"op": "add", "path": path, "data": data, "lfs": False})
            elif key == "lfsFile":
                oid = value.get("oid")
                if get_str(value, "algo", "sha256", what=what) != "sha256" or not is_sha256(oid):
                    raise HubError(400, "BadRequest", f"{path[:200]!r}: the LFS oid must be 64 lowercase hex digits")
                if not self.may_reference(caller, repo, oid):
                    # the same answer whether the object is missing or not the caller's: no existence oracle
                    raise HubError(400, "BadRequest",
                                   f"{path[:200]!r}: LFS object {oid} was not uploaded (run the LFS batch first)")
                operations.append({"op": "add", "path": path, "sha256": oid,
                                   "size": get_int(value, "size", None, what=what), "lfs": True})
            elif key == "deletedFile":
                operations.append({"op": "delete", "path": path})
            elif key == "deletedFolder":
                operations.append({"op": "delete_folder", "path": path})
            else:
                raise HubError(400, "BadRequest", f"Unknown commit operation {str(key)[:40]!r}")
        return header, operations

"""Write routes of the API: repos, settings, validate-yaml, preupload, LFS batch/upload/verify, commits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
import socket
from typing import Any

from mlxtui.devhub.auth import ApiBase
from mlxtui.devhub.info import FrontMatterError, parse_front_matter
from mlxtui.devhub.plumbing import Dropped, HubError, int_param, truthy
from mlxtui.devhub.store import CommitError, RepoExists, RevisionNotFound, is_lfs_path

__all__ = ["WriteRoutes"]


class WriteRoutes(ApiBase):
    """What the client sends: repo creation and deletion, settings, uploads and commits."""

    def h_create_repo(self) -> None:
        caller = self.caller()
        body = self.json_body()
        if caller.user is None:
            raise HubError(401, "Unauthorized", "You must be authenticated to create a repository")
        if body.get("type") not in (None, "model"):
            raise HubError(400, "BadRequest", "devhub only hosts model repositories")
        name = str(body.get("name") or "")
        namespace = body.get("organization") or caller.user
        repo = f"{namespace}/{name}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", name) or ".." in name:
            raise HubError(400, "BadRequest", f"Invalid repo name: {name!r}")
        if not caller.can_write(namespace):
            raise HubError(403, "Forbidden", f'You don\'t have the rights to create a model under the namespace "{namespace}"')
        private = body.get("visibility") == "private" or bool(body.get("private"))
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
        namespace = body.get("organization") or caller.user
        repo = f"{namespace}/{body.get('name')}"
        self.writable_repo(repo, caller)
        self.hub.store.delete_repo(repo)
        self.send_json({})

    def h_settings(self, repo: str) -> None:
        caller = self.caller()
        self.writable_repo(repo, caller)
        body = self.json_body()
        fields = {}
        if "private" in body:
            fields["private"] = bool(body["private"])
        if "visibility" in body:
            fields["private"] = body["visibility"] == "private"
        if "gated" in body:
            fields["gated"] = body["gated"]
        meta = self.hub.store.update_meta(repo, **fields)
        self.send_json({"private": meta["private"], "gated": meta["gated"]})

    def h_validate_yaml(self) -> None:
        body = self.json_body()
        content = str(body.get("content", ""))
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
        for item in body.get("files", []):
            path = str(item.get("path", ""))
            size = int(item.get("size", 0))
            lfs = size >= self.hub.lfs_threshold or is_lfs_path(path, size)
            existing = current.get(path)
            oid = None
            if existing is not None:
                oid = existing.sha256 if lfs else existing.oid
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular",
                        "shouldIgnore": path.startswith(".git/"), "oid": oid})
        self.send_json({"files": out, "commitOid": sha})

    def h_lfs_batch(self, repo: str) -> None:
        caller = self.caller()
        body = self.json_body()
        if body.get("operation") == "download":
            self.repo_meta(repo, caller)
        else:
            self.writable_repo(repo, caller)
        base = self.base_url()
        objects = []
        for obj in body.get("objects", []):
            oid, size = str(obj.get("oid", "")), int(obj.get("size", 0))
            if not re.fullmatch(r"[0-9a-f]{64}", oid):
                objects.append({"oid": oid, "size": size, "error": {"code": 422, "message": "invalid oid"}})
                continue
            if self.hub.store.has_blob(oid, size):
                objects.append({"oid": oid, "size": size})  # no actions: the server already has it
                continue
            sig = self.hub._sign("upload", oid, str(size))
            objects.append({
                "oid": oid, "size": size, "authenticated": True,
                "actions": {
                    "upload": {"href": f"{base}/_devhub/lfs/{oid}?size={size}&sig={sig}", "expires_in": 3600},
                    "verify": {"href": f"{base}/_devhub/lfs/{oid}/verify", "expires_in": 3600},
                },
            })
        self.send(200, json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(),
                  content_type="application/vnd.git-lfs+json")

    def h_lfs_put(self, oid: str) -> None:
        size = int_param(self.query, "size", -1)
        sig = self.query.get("sig", [""])[0]
        length = int(self.headers.get("Content-Length") or -1)
        if not hmac.compare_digest(sig, self.hub._sign("upload", oid, str(size))):
            raise HubError(403, "Forbidden", "Invalid or expired upload URL")
        if self.hub.faults.take("drop_upload", "PUT", self.raw_path):
            # read half the bytes, then vanish: the client sees the connection die mid-upload
            self.rfile.read(max(0, length // 2))
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raise Dropped()
        if length >= 0:
            stream, count = self.rfile, length
        else:
            body = self.read_body()  # chunked
            stream, count = io.BytesIO(body), len(body)
        self._body = b""  # drained by put_stream (or read above)
        try:
            self.hub.store.put_stream(stream, count, expected_sha256=oid)
        except CommitError as error:
            raise HubError(400, "BadRequest", str(error)) from None
        self.send(200, b"", {"ETag": f'"{oid}"'}, "text/plain")

    def h_lfs_verify(self, oid: str) -> None:
        body = self.json_body()
        size = body.get("size")
        if not self.hub.store.has_blob(oid, int(size) if size is not None else None):
            raise HubError(404, "EntryNotFound", f"LFS object {oid} was not uploaded")
        self.send_json({"success": True})

    def h_xet_token(self, repo: str, rev: str) -> None:
        raise HubError(404, "XetNotSupported",
                       "devhub does not speak Xet: set HF_HUB_DISABLE_XET=1 to upload with plain LFS")

    def h_commit(self, repo: str, rev: str) -> None:
        caller = self.caller()
        body = self.read_body()
        meta = self.writable_repo(repo, caller)
        self.resolve_sha(repo, rev)  # 404 RevisionNotFound before anything else
        if truthy(self.query.get("create_pr", [""])[0]):
            raise HubError(400, "BadRequest", "devhub does not support pull requests")
        header: dict[str, Any] = {}
        operations: list[dict[str, Any]] = []
        try:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        except ValueError:
            raise HubError(400, "BadRequest", "Commit payload is not valid NDJSON") from None
        store = self.hub.store
        # validate and stage every line first; the branch only moves once they all pass
        for line in lines:
            key, value = line.get("key"), line.get("value") or {}
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, "BadRequest", "Only base64 file content is supported")
                try:
                    data = base64.b64decode(value.get("content", ""), validate=True)
                except ValueError:
                    raise HubError(400, "BadRequest", f"{value.get('path')}: content is not valid base64") from None
                operations.append({"op": "add", "path": value.get("path", ""), "data": data, "lfs": False})
            elif key == "lfsFile":
                oid = str(value.get("oid", ""))
                if value.get("algo", "sha256") != "sha256" or not store.has_blob(oid):
                    raise HubError(400, "BadRequest",
                                   f"{value.get('path')}: LFS object {oid or '?'} was not uploaded (run the LFS batch first)")
                operations.append({"op": "add", "path": value.get("path", ""), "sha256": oid,
                                   "size": value.get("size"), "lfs": True})
            elif key == "deletedFile":
                operations.append({"op": "delete", "path": value.get("path", "")})
            elif key == "deletedFolder":
                operations.append({"op": "delete_folder", "path": value.get("path", "")})
            else:
                raise HubError(400, "BadRequest", f"Unknown commit operation {key!r}")
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

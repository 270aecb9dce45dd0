"""The local Hub's HTTP side: a Hub-compatible API origin plus a second "CDN" origin for large files.

Speaks what the real ``huggingface_hub`` client (2.4) sends; see /work/shared/reference/hub-protocol.md and
docs/devhub.md. Standard library only (``http.server``), HTTP/1.1 keep-alive, every request body drained.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from mlxtui.devhub.info import FrontMatterError, parse_front_matter, repo_facts
from mlxtui.devhub.store import (
    LFS_SIZE_THRESHOLD,
    CommitError,
    EntryNotFound,
    FileEntry,
    HubStore,
    RepoExists,
    RepoNotFound,
    RevisionNotFound,
    is_lfs_path,
)

__all__ = ["DevHub", "Faults", "Fault", "RequestRecord", "HubError"]

_REPO = r"(?P<repo>[^/?#]+/[^/?#]+)"


class RequestRecord(NamedTuple):
    """One request that reached the API origin."""

    method: str
    path: str
    query: str


@dataclass
class Fault:
    """One injected fault; `remaining` counts down on each request it hits."""

    kind: str  # "rate_limit" | "drop_download" | "slow" | "fail_commit" | "drop_upload" | "error"
    remaining: int = 1
    method: str | None = None
    path_prefix: str | None = None
    retry_after: int = 0
    delay: float = 0.0
    status: int = 500
    message: str = "Injected failure"

    def matches(self, method: str, path: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path_prefix or path.startswith(self.path_prefix)


class Faults:
    """Faults injected on demand by tests: each fires for the next N matching requests, then disappears."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def rate_limit(self, n: int = 1, *, path_prefix: str | None = None, method: str | None = None,
                   retry_after: int = 0) -> Fault:
        """Answer 429 with `Retry-After: retry_after` to the next `n` matching requests."""
        return self.add(Fault("rate_limit", n, method, path_prefix, retry_after=retry_after))

    def drop_download(self, n: int = 1, *, path_prefix: str | None = None) -> Fault:
        """Send half the body of the next `n` file GETs (resolve or CDN; prefix matches the repo file URL), then close."""
        return self.add(Fault("drop_download", n, "GET", path_prefix))

    def slow(self, delay: float, n: int = 1, *, path_prefix: str | None = None, method: str | None = None) -> Fault:
        """Wait `delay` seconds before answering the next `n` matching requests."""
        return self.add(Fault("slow", n, method, path_prefix, delay=delay))

    def error(self, status: int = 500, n: int = 1, *, path_prefix: str | None = None, method: str | None = None,
              message: str = "Injected failure") -> Fault:
        """Answer `status` (with X-Error-Code: Injected) to the next `n` matching requests."""
        return self.add(Fault("error", n, method, path_prefix, status=status, message=message))

    def fail_commit(self, n: int = 1, *, status: int = 500, message: str = "Injected commit failure") -> Fault:
        """Make the next `n` commits fail after validation, just before they would be published."""
        return self.add(Fault("fail_commit", n, "POST", None, status=status, message=message))

    def drop_upload(self, n: int = 1) -> Fault:
        """Read half of the next `n` LFS uploads (PUT), then close the connection without answering."""
        return self.add(Fault("drop_upload", n, "PUT", None))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.remaining > 0]

    def take(self, kind: str, method: str, path: str) -> Fault | None:
        """Consume one hit of the first matching fault of `kind`."""
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


class HubError(Exception):
    """An error answer with the Hub's headers: X-Error-Code and X-Error-Message, JSON {"error": ...}."""

    def __init__(self, status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.body = body


def _repo_not_found() -> HubError:
    return HubError(404, "RepoNotFound", "Repository not found")


@dataclass
class Caller:
    """Who is asking: None user means anonymous."""

    token: str | None = None
    user: str | None = None
    orgs: list[str] = field(default_factory=list)
    role: str = "read"

    def owns(self, namespace: str) -> bool:
        return self.user is not None and (namespace == self.user or namespace in self.orgs)

    def can_write(self, namespace: str) -> bool:
        return self.role == "write" and self.owns(namespace)


class DevHub:
    """A local Hugging Face Hub-compatible server over a `HubStore` folder.

    >>> with DevHub(tmp_path, tokens={"hf_w": {"user": "alice", "orgs": ["mlx-community"], "role": "write"}}) as hub:
    ...     HfApi(endpoint=hub.url).model_info("alice/model")

    `url` is the API origin; `cdn_url` is the second origin that serves LFS files larger than
    `redirect_threshold` through a 302, as the Hub's CDN does. `requests` logs every API request
    (method, path, query); `faults` injects failures. Set HF_HUB_DISABLE_XET=1 for uploads.
    """

    def __init__(
        self,
        root: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        cdn_port: int = 0,
        page_size: int = 50,
        redirect_threshold: int = 1_000_000,
        lfs_threshold: int = LFS_SIZE_THRESHOLD,
    ) -> None:
        self.store = HubStore(root)
        if tokens is not None:
            self.store.set_tokens(tokens)
        self.host = host
        self._port = port
        self._cdn_port = cdn_port
        self.page_size = page_size
        self.redirect_threshold = redirect_threshold
        self.lfs_threshold = lfs_threshold
        self.faults = Faults()
        self.requests: list[RequestRecord] = []
        self.cdn_requests: list[RequestRecord] = []
        #: (repo file URL path, Range header) of every ranged file request, on either origin (resume checks)
        self.range_requests: list[tuple[str, str]] = []
        self._secret = os.urandom(16)
        self._api: _Server | None = None
        self._cdn: _Server | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ lifecycle
    @property
    def root(self) -> Path:
        return self.store.root

    @property
    def port(self) -> int:
        return self._api.server_address[1] if self._api else self._port

    @property
    def cdn_port(self) -> int:
        return self._cdn.server_address[1] if self._cdn else self._cdn_port

    @property
    def url(self) -> str:
        """The endpoint to give huggingface_hub (HF_ENDPOINT / endpoint=)."""
        return f"http://{self.host}:{self.port}"

    @property
    def cdn_url(self) -> str:
        return f"http://{self.host}:{self.cdn_port}"

    def start(self) -> "DevHub":
        """Listen on both origins, each served by a background thread."""
        if self._api is not None:
            return self
        self._api = _Server((self.host, self._port), _ApiHandler, self)
        self._cdn = _Server((self.host, self._cdn_port), _CdnHandler, self)
        for server, name in ((self._api, "devhub-api"), (self._cdn, "devhub-cdn")):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop listening and close kept-alive connections."""
        for server in (self._api, self._cdn):
            if server is not None:
                server.shutdown()
                server.close_all()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        # keep the bound ports so .url stays meaningful after stop (e.g. for restart on the same port)
        if self._api is not None:
            self._port = self._api.server_address[1]
            self._cdn_port = self._cdn.server_address[1] if self._cdn else 0
        self._api = self._cdn = None

    def serve_forever(self) -> None:
        """Block until KeyboardInterrupt (used by `mlxtui devhub serve`)."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    def __enter__(self) -> "DevHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --------------------------------------------------------- conveniences
    def import_folder(self, repo_id: str, folder: Path, **kwargs: Any) -> str:
        """Same as `HubStore.import_folder`."""
        return self.store.import_folder(repo_id, folder, **kwargs)

    def grant_access(self, repo_id: str, user: str) -> None:
        self.store.grant_access(repo_id, user)

    def add_token(self, token: str, user: str, orgs: Iterable[str] = (), role: str = "write") -> None:
        self.store.add_token(token, user, orgs, role)

    def set_tokens(self, tokens: Mapping[str, Mapping[str, Any]]) -> None:
        self.store.set_tokens(tokens)

    def clear_requests(self) -> None:
        self.requests.clear()
        self.cdn_requests.clear()
        self.range_requests.clear()

    def count_requests(self, method: str | None = None, path_prefix: str = "") -> int:
        """How many API requests matched (handy for "served from cache" assertions)."""
        return sum(
            1 for r in list(self.requests) if (method is None or r.method == method) and r.path.startswith(path_prefix)
        )

    # ------------------------------------------------------------- signing
    def _sign(self, *parts: str) -> str:
        return hmac.new(self._secret, "\n".join(parts).encode(), hashlib.sha256).hexdigest()[:32]

    def cdn_link(self, repo_id: str, revision: str, entry: FileEntry, ttl: int = 3600,
                 hostname: str | None = None) -> str:
        """A signed, expiring URL on the CDN origin for one blob (`hostname`: as the client reached the API)."""
        expires = str(int(time.time()) + ttl)
        sig = self._sign(entry.sha256, repo_id, revision, entry.path, expires)
        query = urlencode({"repo": repo_id, "rev": revision, "path": entry.path, "expires": expires, "sig": sig})
        base = f"http://{hostname}:{self.cdn_port}" if hostname else self.cdn_url
        return f"{base}/blobs/{entry.sha256}?{query}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, hub: DevHub) -> None:
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer is normal (cancelled downloads); never spray tracebacks

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conn_lock:
            (self._connections.add if alive else self._connections.discard)(conn)

    def close_all(self) -> None:
        with self._conn_lock:
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()


class _Dropped(Exception):
    """The handler deliberately dropped the connection (an injected fault)."""


class _BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per answer
    disable_nagle_algorithm = True
    server: _Server
    server_version = "devhub/1.0"

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: tests and the demo would drown in access logs

    @property
    def hub(self) -> DevHub:
        return self.server.hub

    # ------------------------------------------------------------- bodies
    def read_body(self) -> bytes:
        """Read (drain) the whole request body: Content-Length or chunked."""
        if self._body is not None:
            return self._body
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self._body = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length > 0 else b""
        return self._body

    def json_body(self) -> Any:
        body = self.read_body()
        if not body:
            return {}
        try:
            return json.loads(body)
        except ValueError:
            raise HubError(400, "BadRequest", "Request body is not valid JSON") from None

    # ------------------------------------------------------------ answers
    def send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
             content_type: str = "application/json; charset=utf-8") -> None:
        self.send_response(status)
        merged = {"Content-Type": content_type, "Content-Length": str(len(body)), **(headers or {})}
        for key, value in merged.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_json(self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.send(status, json.dumps(data).encode(), headers)

    def send_error_answer(self, error: HubError) -> None:
        headers = dict(error.headers)
        if error.code:
            headers["X-Error-Code"] = error.code
        headers["X-Error-Message"] = error.message.encode("ascii", "replace").decode()
        self.send_json(error.body or {"error": error.message}, error.status, headers)

    def _dispatch(self) -> None:
        self._body: bytes | None = None
        split = urlsplit(self.path)
        self.raw_path = split.path
        self.query = parse_qs(split.query, keep_blank_values=True)
        self.query_string = split.query
        try:
            try:
                self.route()
            except HubError as error:
                self.read_body_quietly()
                self.send_error_answer(error)
            except (_Dropped, ConnectionError, TimeoutError):
                raise
            except Exception as error:  # a bug must answer 500, not hang the client
                self.read_body_quietly()
                self.send_error_answer(HubError(500, "InternalError", f"devhub internal error: {error!r}"))
            else:
                self.read_body_quietly()
        except (_Dropped, ConnectionError, TimeoutError):
            # a fault we injected, or the client went away: this connection is done
            self.close_connection = True

    def read_body_quietly(self) -> None:
        try:
            self.read_body()
        except (OSError, ValueError):
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = lambda self: self._dispatch()  # noqa: E731

    def route(self) -> None:
        raise NotImplementedError

    def apply_faults(self, path: str) -> None:
        """Injected slow / 429 / error answers; `path` is the API path, or the file's resolve path on the CDN."""
        faults = self.hub.faults
        slow = faults.take("slow", self.command, path)
        if slow:
            time.sleep(slow.delay)
        limited = faults.take("rate_limit", self.command, path)
        if limited:
            raise HubError(429, "RateLimited", "You have been rate-limited (injected by devhub).",
                           {"Retry-After": str(limited.retry_after)})
        failed = faults.take("error", self.command, path)
        if failed:
            raise HubError(failed.status, "Injected", failed.message)

    # ------------------------------------------------------------ file bytes
    def serve_blob(self, path: Path, size: int, headers: dict[str, str], fault_path: str) -> None:
        """Answer a file download (HEAD or GET) with Range support and the drop-download fault."""
        headers = {**headers, "Accept-Ranges": "bytes"}
        start, end = 0, size - 1
        status = 200
        range_header = self.headers.get("Range")
        if range_header:
            self.hub.range_requests.append((fault_path, range_header))
        if range_header and size > 0:
            parsed = _parse_range(range_header, size)
            if parsed is None:
                raise HubError(416, "RangeNotSatisfiable", f"Range {range_header} not satisfiable",
                               {"Content-Range": f"bytes */{size}"})
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        self.send_response(status)
        headers.setdefault("Content-Type", "application/octet-stream")
        headers["Content-Length"] = str(length)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        drop = self.hub.faults.take("drop_download", "GET", fault_path)
        limit = length // 2 if drop else length
        with open(path, "rb") as handle:
            handle.seek(start)
            remaining = limit
            while remaining > 0:
                chunk = handle.read(min(remaining, 256 * 1024))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)
        if drop:
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            raise _Dropped()


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # suffix: the last N bytes
        count = int(last)
        if count == 0:
            return None
        return max(0, size - count), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return start, end


# ====================================================================== API origin
class _ApiHandler(_BaseHandler):
    """The Hub API and resolve URLs."""

    ROUTES: list[tuple[str, re.Pattern[str], str]] = [
        (m, re.compile(p), h)
        for m, p, h in [
            ("GET", r"/api/whoami-v2", "whoami"),
            ("GET", r"/api/models", "list_models"),
            ("GET", rf"/api/models/{_REPO}", "model_info"),
            ("GET", rf"/api/models/{_REPO}/revision/(?P<rev>[^/]+)", "model_info"),
            ("GET", rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
            ("POST", rf"/api/models/{_REPO}/paths-info/(?P<rev>[^/]+)", "paths_info"),
            ("GET", rf"/api/models/{_REPO}/refs", "refs"),
            ("GET", rf"/api/models/{_REPO}/commits/(?P<rev>[^/]+)", "commits"),
            ("POST", rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
            ("POST", rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", "commit"),
            ("GET", rf"/api/models/{_REPO}/xet-write-token/(?P<rev>[^/]+)", "xet_token"),
            ("GET", rf"/api/models/{_REPO}/xet-read-token/(?P<rev>[^/]+)", "xet_token"),
            ("PUT", rf"/api/models/{_REPO}/settings", "settings"),
            ("POST", r"/api/repos/create", "create_repo"),
            ("DELETE", r"/api/repos/delete", "delete_repo"),
            ("POST", r"/api/validate-yaml", "validate_yaml"),
            ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
            ("PUT", r"/_devhub/lfs/(?P<oid>[0-9a-f]{64})", "lfs_put"),
            ("POST", r"/_devhub/lfs/(?P<oid>[0-9a-f]{64})/verify", "lfs_verify"),
            ("HEAD", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
            ("GET", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
            ("GET", r"/_devhub/faults", "faults_list"),
            ("POST", r"/_devhub/faults", "faults_add"),
            ("DELETE", r"/_devhub/faults", "faults_clear"),
            ("GET", r"/_devhub/requests", "requests_list"),
            ("DELETE", r"/_devhub/requests", "requests_clear"),
            ("POST", r"/_devhub/grant", "grant"),
        ]
    ]

    def route(self) -> None:
        path = self.raw_path
        admin = path.startswith("/_devhub/") and not path.startswith("/_devhub/lfs/")
        if not admin:
            self.hub.requests.append(RequestRecord(self.command, unquote(path), self.query_string))
            self.apply_faults(unquote(path))
        for method, pattern, handler in self.ROUTES:
            match = pattern.fullmatch(path)
            if match and method == self.command:
                params = {k: unquote(v) if v is not None else None for k, v in match.groupdict().items()}
                getattr(self, f"h_{handler}")(**params)
                return
        if re.match(r"/api/(datasets|spaces)/", path):
            raise HubError(404, "RepoNotFound", "Repository not found (devhub serves models only)")
        if re.match(r"/api/models/[^/]+(/|$)", path) or re.match(r"/[^/_][^/]*(/[^/]+)?/resolve/", path):
            raise _repo_not_found()  # e.g. a canonical one-part id ("gpt2"): devhub repos are owner/name
        raise HubError(404, "NotFound", f"Sorry, we can't find the page you are looking for ({self.command} {path}).")

    # --------------------------------------------------------------- auth
    def caller(self) -> Caller:
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return Caller()
        token = header[7:].strip()
        info = self.hub.store.token_info(token)
        if info is None:
            raise HubError(401, "Unauthorized", "Invalid credentials in Authorization header",
                           body={"error": "Invalid user token"})
        return Caller(token, info["user"], list(info.get("orgs", [])), info.get("role", "read"))

    def base_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.hub.url

    def visible(self, meta: dict[str, Any], caller: Caller) -> bool:
        return not meta.get("private") or caller.owns(meta["owner"])

    def repo_meta(self, repo: str, caller: Caller) -> dict[str, Any]:
        """meta.json of a repo the caller may see, else 404 RepoNotFound (private repos look absent)."""
        try:
            meta = self.hub.store.meta(repo)
        except RepoNotFound:
            raise _repo_not_found() from None
        if not self.visible(meta, caller):
            raise _repo_not_found()
        return meta

    def writable_repo(self, repo: str, caller: Caller) -> dict[str, Any]:
        if caller.user is None:
            raise HubError(401, "RepoNotFound", "You must be authenticated to write to this repository")
        meta = self.repo_meta(repo, caller)
        if not caller.can_write(meta["owner"]):
            raise HubError(403, "Forbidden", f"You don't have the rights to write to {repo} "
                           f"({'read-only token' if caller.role != 'write' else 'not your namespace'}).")
        return meta

    def resolve_sha(self, repo: str, rev: str | None) -> str:
        try:
            return self.hub.store.resolve_revision(repo, rev or "main")
        except RevisionNotFound:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}") from None

    # --------------------------------------------------------------- whoami
    def h_whoami(self) -> None:
        caller = self.caller()
        if caller.user is None:
            raise HubError(401, "Unauthorized", "Invalid credentials in Authorization header",
                           body={"error": "Invalid user token"})
        role = caller.role
        self.send_json({
            "type": "user",
            "id": hashlib.sha1(caller.user.encode()).hexdigest()[:24],
            "name": caller.user,
            "fullname": caller.user,
            "email": f"{caller.user}@devhub.local",
            "emailVerified": True,
            "canPay": False,
            "isPro": False,
            "periodEnd": None,
            "avatarUrl": "",
            "orgs": [
                {"type": "org", "name": org, "fullname": org, "roleInOrg": "admin" if role == "write" else "read",
                 "isEnterprise": False, "avatarUrl": ""}
                for org in caller.orgs
            ],
            "auth": {"type": "access_token", "accessToken": {"displayName": "devhub", "role": role,
                                                            "createdAt": "2024-01-01T00:00:00.000Z"}},
        })

    # --------------------------------------------------------------- listing
    def h_list_models(self) -> None:
        caller = self.caller()
        q = self.query
        store = self.hub.store
        search = (q.get("search", [""])[0] or "").lower()
        author = q.get("author", [""])[0]
        filters = [f for f in q.get("filter", []) if f]
        pipeline = q.get("pipeline_tag", [""])[0]
        library = q.get("library", [""])[0]
        gated_param = q.get("gated", [""])[0].lower()
        sort_key = q.get("sort", [""])[0] or "trendingScore"
        items = []
        for repo in store.list_repos():
            try:
                meta = store.meta(repo)
                sha = store.resolve_revision(repo, "main")
            except (RepoNotFound, RevisionNotFound):
                continue
            if not self.visible(meta, caller):
                continue
            if search and search not in repo.lower():
                continue
            if author and meta["owner"].lower() != author.lower():
                continue
            facts = repo_facts(store, repo, sha)
            if not all(_filter_matches(f, facts, meta) for f in filters):
                continue
            if pipeline and facts.pipeline_tag != pipeline:
                continue
            if library and not _filter_matches(f"library:{library}", facts, meta):
                continue
            if gated_param in ("true", "false") and bool(meta.get("gated")) != (gated_param == "true"):
                continue
            items.append((repo, meta, sha, facts))
        if sort_key not in ("downloads", "likes", "trendingScore", "lastModified", "createdAt", "id"):
            raise HubError(400, "BadRequest", f"Invalid sort key: {sort_key}")
        if sort_key == "id":
            items.sort(key=lambda item: item[0])
        else:
            items.sort(key=lambda item: item[0])
            items.sort(key=lambda item: item[1].get(sort_key) or 0, reverse=True)

        full = _truthy(q.get("full", [""])[0])
        with_card = _truthy(q.get("cardData", [""])[0])
        with_config = _truthy(q.get("config", [""])[0])
        expand = [e for e in q.get("expand", []) if e]
        offset, limit = _int_param(q, "cursor", 0), _int_param(q, "limit", None)
        total = len(items) if limit is None else min(len(items), limit)
        page = items[offset : min(total, offset + self.hub.page_size)]
        out = []
        for repo, meta, sha, facts in page:
            full_info = self.model_json(repo, meta, sha, facts, blobs=False)
            if expand:
                out.append(_expanded(full_info, expand))
                continue
            keys = ["_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
                    "library_name", "createdAt", "modelId"]
            if full:
                keys += ["author", "sha", "lastModified", "gated", "disabled", "siblings"]
            if with_card:
                keys.append("cardData")
            if with_config:
                keys.append("config")
            out.append({k: full_info[k] for k in keys if k in full_info})
        headers = {}
        if offset + len(page) < total:
            params = [(k, v) for k, values in q.items() if k != "cursor" for v in values]
            params.append(("cursor", str(offset + len(page))))
            headers["Link"] = f'<{self.base_url()}/api/models?{urlencode(params)}>; rel="next"'
        self.send_json(out, headers=headers)

    # ------------------------------------------------------------ model_info
    def h_model_info(self, repo: str, rev: str | None = None) -> None:
        caller = self.caller()
        meta = self.repo_meta(repo, caller)
        sha = self.resolve_sha(repo, rev)
        facts = repo_facts(self.hub.store, repo, sha)
        blobs = _truthy(self.query.get("blobs", [""])[0])
        info = self.model_json(repo, meta, sha, facts, blobs=blobs)
        expand = [e for e in self.query.get("expand", []) if e]
        self.send_json(_expanded(info, expand) if expand else info)

    def model_json(self, repo: str, meta: dict[str, Any], sha: str, facts: Any, *, blobs: bool) -> dict[str, Any]:
        store = self.hub.store
        record = store.commit_record(repo, sha)
        siblings = []
        for path, entry in sorted(store.files(repo, sha).items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling["size"] = entry.size
                sibling["blobId"] = entry.oid
                if entry.lfs:
                    sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
            "id": repo,
            "modelId": repo,
            "author": meta["owner"],
            "sha": sha,
            "lastModified": record.get("date") or meta.get("lastModified"),
            "createdAt": meta.get("createdAt"),
            "private": bool(meta.get("private")),
            "gated": meta.get("gated", False),
            "disabled": False,
            "downloads": int(meta.get("downloads", 0)),
            "likes": int(meta.get("likes", 0)),
            "trendingScore": meta.get("trendingScore", meta.get("likes", 0)),
            "library_name": facts.library_name,
            "tags": list(facts.tags),
            "pipeline_tag": facts.pipeline_tag,
            "siblings": siblings,
            "spaces": [],
            "usedStorage": facts.used_storage,
        }
        if facts.card_data is not None:
            info["cardData"] = facts.card_data
        if facts.config is not None:
            info["config"] = facts.config
        if facts.safetensors is not None:
            info["safetensors"] = facts.safetensors
        if info["library_name"] is None:
            del info["library_name"]
        if info["pipeline_tag"] is None:
            del info["pipeline_tag"]
        return info

    # ------------------------------------------------------------------ tree
    def h_tree(self, repo: str, rev: str, path: str | None = None) -> None:
        caller = self.caller()
        self.repo_meta(repo, caller)
        sha = self.resolve_sha(repo, rev)
        store = self.hub.store
        files = store.files(repo, sha)
        prefix = (path or "").strip("/")
        recursive = _truthy(self.query.get("recursive", [""])[0])
        expand = _truthy(self.query.get("expand", [""])[0])
        entries = _tree_entries(files, prefix, recursive)
        if entries is None:
            raise HubError(404, "EntryNotFound", f"Entry not found: {prefix}", {"X-Repo-Commit": sha})
        offset = _int_param(self.query, "cursor", 0)
        page = entries[offset : offset + self.hub.page_size]
        last_commits = _last_commits(store, repo, sha) if expand else {}
        out = [self.tree_json(item, files, last_commits, expand) for item in page]
        headers = {}
        if offset + len(page) < len(entries):
            params = [(k, v) for k, values in self.query.items() if k != "cursor" for v in values]
            params.append(("cursor", str(offset + len(page))))
            headers["Link"] = f'<{self.base_url()}{self.raw_path}?{urlencode(params)}>; rel="next"'
        self.send_json(out, headers=headers)

    def tree_json(self, item: tuple[str, str], files: dict[str, FileEntry], last_commits: dict[str, dict],
                  expand: bool) -> dict[str, Any]:
        kind, path = item
        if kind == "directory":
            children = sorted(e.oid + p for p, e in files.items() if p.startswith(path + "/"))
            out: dict[str, Any] = {"type": "directory", "path": path,
                                   "oid": hashlib.sha1("".join(children).encode()).hexdigest()}
        else:
            entry = files[path]
            out = {"type": "file", "path": path, "oid": entry.oid, "size": entry.size}
            if entry.lfs:
                out["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
        if expand:
            commit = last_commits.get(path)
            if commit is None and kind == "directory":
                commit = max((c for p, c in last_commits.items() if p.startswith(path + "/")),
                             key=lambda c: c["date"], default=None)
            if commit is not None:
                out["lastCommit"] = commit
        return out

    def h_paths_info(self, repo: str, rev: str) -> None:
        caller = self.caller()
        self.repo_meta(repo, caller)
        sha = self.resolve_sha(repo, rev)
        body = self.read_body()
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            data = json.loads(body or b"{}")
            paths, expand = data.get("paths", []), bool(data.get("expand"))
        else:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), _truthy(form.get("expand", [""])[0])
        files = self.hub.store.files(repo, sha)
        last = _last_commits(self.hub.store, repo, sha) if expand else {}
        out = []
        for p in paths if isinstance(paths, list) else [paths]:
            p = str(p).strip("/")
            if p in files:
                out.append(self.tree_json(("file", p), files, last, expand))
            elif any(f.startswith(p + "/") for f in files):
                out.append(self.tree_json(("directory", p), files, last, expand))
        self.send_json(out)

    def h_refs(self, repo: str) -> None:
        self.repo_meta(repo, self.caller())
        refs = self.hub.store.refs(repo)
        self.send_json({
            "branches": [{"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha} for name, sha in refs.items()],
            "converts": [], "tags": [],
        })

    def h_commits(self, repo: str, rev: str) -> None:
        self.repo_meta(repo, self.caller())
        sha = self.resolve_sha(repo, rev)
        out = [
            {"id": c["sha"], "title": c["title"], "message": c["message"], "date": c["date"],
             "authors": [{"user": c["author"]}]}
            for c in self.hub.store.history(repo, sha)
        ]
        self.send_json(out)

    # --------------------------------------------------------------- resolve
    def h_resolve(self, repo: str, rev: str, path: str) -> None:
        caller = self.caller()
        meta = self.repo_meta(repo, caller)
        sha = self.resolve_sha(repo, rev)
        store = self.hub.store
        try:
            entry = store.entry(repo, sha, path)
        except EntryNotFound:
            raise HubError(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": sha}) from None
        gated = meta.get("gated")
        if gated and path not in ("README.md", ".gitattributes") and not (
            caller.owns(meta["owner"]) or caller.user in meta.get("granted", [])
        ):
            if caller.user is None:
                message = (f"Access to model {repo} is restricted. You must have access to it and be authenticated "
                           "to access it. Please log in.")
                raise HubError(401, "GatedRepo", message, {"X-Repo-Commit": sha})
            message = (f"Access to model {repo} is restricted and you are not in the authorized list. "
                       f"Visit {self.base_url()}/{repo} to ask for access.")
            raise HubError(403, "GatedRepo", message, {"X-Repo-Commit": sha})
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{entry.etag}"',
            "Content-Disposition": f'inline; filename="{entry.path.rsplit("/", 1)[-1]}"',
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        if entry.lfs and entry.size >= self.hub.redirect_threshold:
            location = self.hub.cdn_link(repo, rev, entry, hostname=urlsplit(self.base_url()).hostname)
            headers.update({"Location": location, "ETag": f'"{entry.oid}"'})
            self.send(302, f"Found. Redirecting to {location}".encode(), headers, "text/plain; charset=utf-8")
            return
        self.serve_blob(store.blob_path(entry.sha256), entry.size, headers, unquote(self.raw_path))

    # ----------------------------------------------------------------- writes
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
        size = _int_param(self.query, "size", -1)
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
            raise _Dropped()
        if length >= 0:
            stream, count = self.rfile, length
        else:
            body = self.read_body()  # chunked
            import io

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
        if _truthy(self.query.get("create_pr", [""])[0]):
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

    # ------------------------------------------------------------------ admin
    def h_faults_list(self) -> None:
        self.send_json([asdict(f) for f in self.hub.faults.active()])

    def h_faults_add(self) -> None:
        body = self.json_body()
        try:
            fault = Fault(
                kind=str(body["kind"]), remaining=int(body.get("n", body.get("remaining", 1))),
                method=body.get("method"), path_prefix=body.get("path_prefix"),
                retry_after=int(body.get("retry_after", 0)), delay=float(body.get("delay", 0)),
                status=int(body.get("status", 500)), message=str(body.get("message", "Injected failure")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise HubError(400, "BadRequest", f"invalid fault: {error}") from None
        if fault.kind not in ("rate_limit", "drop_download", "slow", "fail_commit", "drop_upload", "error"):
            raise HubError(400, "BadRequest", f"unknown fault kind {fault.kind!r}")
        self.hub.faults.add(fault)
        self.send_json(asdict(fault))

    def h_faults_clear(self) -> None:
        self.hub.faults.clear()
        self.send_json({})

    def h_requests_list(self) -> None:
        self.send_json([r._asdict() for r in list(self.hub.requests)])

    def h_requests_clear(self) -> None:
        self.hub.clear_requests()
        self.send_json({})

    def h_grant(self) -> None:
        body = self.json_body()
        try:
            self.hub.store.grant_access(str(body["repo"]), str(body["user"]))
        except (KeyError, RepoNotFound):
            raise _repo_not_found() from None
        self.send_json({})


# ====================================================================== CDN origin
class _CdnHandler(_BaseHandler):
    """The second origin: signed, expiring blob URLs with Range support (no Authorization needed)."""

    def route(self) -> None:
        self.hub.cdn_requests.append(RequestRecord(self.command, unquote(self.raw_path), self.query_string))
        match = re.fullmatch(r"/blobs/([0-9a-f]{64})", self.raw_path)
        if not match or self.command not in ("GET", "HEAD"):
            raise HubError(404, "NotFound", "Not found")
        sha = match.group(1)
        q = {k: v[0] for k, v in self.query.items()}
        repo, rev, path, expires = q.get("repo", ""), q.get("rev", ""), q.get("path", ""), q.get("expires", "0")
        if not hmac.compare_digest(q.get("sig", ""), self.hub._sign(sha, repo, rev, path, expires)):
            raise HubError(403, "AccessDenied", "Invalid signature")
        if int(expires or 0) < time.time():
            raise HubError(403, "AccessDenied", "Request has expired")
        blob = self.hub.store.blob_path(sha)
        if not blob.is_file():
            raise HubError(404, "NotFound", "Blob not found")
        size = blob.stat().st_size
        fault_path = f"/{repo}/resolve/{rev}/{path}"
        self.apply_faults(fault_path)
        headers = {
            "ETag": f'"{sha}"',
            "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"',
            "Cache-Control": "public, max-age=604800, immutable",
        }
        self.serve_blob(blob, size, headers, fault_path)


# ====================================================================== helpers
def _truthy(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def _int_param(q: dict[str, list[str]], name: str, default: Any) -> Any:
    values = q.get(name)
    if not values or values[0] == "":
        return default
    try:
        return max(0, int(values[0]))
    except ValueError:
        raise HubError(400, "BadRequest", f"{name} must be an integer") from None


def _expanded(info: dict[str, Any], expand: list[str]) -> dict[str, Any]:
    """Keep only the requested properties (plus the id), as the Hub does for `expand`."""
    out = {"_id": info["_id"], "id": info["id"]}
    for key in expand:
        if key in info:
            out[key] = info[key]
    return out


def _filter_matches(value: str, facts: Any, meta: dict[str, Any]) -> bool:
    """A `filter` value: a tag, or a `kind:value` form (library:, pipeline_tag:, license:, language:...)."""
    tags = {t.lower() for t in facts.tags}
    value_l = value.lower()
    if value_l in tags:
        return True
    kind, _, rest = value_l.partition(":")
    if not rest:
        return False
    if kind == "library":
        return (facts.library_name or "").lower() == rest or rest in tags
    if kind in ("pipeline_tag", "task"):
        return (facts.pipeline_tag or "").lower() == rest
    if kind == "language":
        return rest in tags
    if kind == "author":
        return meta["owner"].lower() == rest
    return False


def _tree_entries(files: dict[str, FileEntry], prefix: str, recursive: bool) -> list[tuple[str, str]] | None:
    """(kind, path) entries under `prefix`; None when the folder does not exist."""
    base = prefix + "/" if prefix else ""
    if prefix and not any(p.startswith(base) for p in files):
        return None
    dirs: set[str] = set()
    out_files: list[str] = []
    for path in files:
        if not path.startswith(base):
            continue
        rest = path[len(base):]
        parts = rest.split("/")
        if recursive:
            for i in range(1, len(parts)):
                dirs.add(base + "/".join(parts[:i]))
            out_files.append(path)
        elif len(parts) == 1:
            out_files.append(path)
        else:
            dirs.add(base + parts[0])
    entries = [("directory", d) for d in dirs] + [("file", f) for f in out_files]
    entries.sort(key=lambda e: e[1])
    return entries


def _last_commits(store: HubStore, repo: str, sha: str) -> dict[str, dict[str, Any]]:
    """path -> {id, title, date} of the last commit that changed each file (cached per commit)."""
    key = (repo, sha, "last_commits")
    cached = store.derived_cache.get(key)
    if cached is not None:
        return cached
    history = store.history(repo, sha)
    out: dict[str, dict[str, Any]] = {}
    for index, record in enumerate(history):
        parent_files = history[index + 1]["files"] if index + 1 < len(history) else {}
        for path, entry in record["files"].items():
            if path not in out and parent_files.get(path) != entry:
                out[path] = {"id": record["sha"], "title": record["title"], "date": record["date"]}
    store.derived_cache[key] = out
    return out


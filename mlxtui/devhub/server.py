"""The local Hub: a Hub-compatible API origin plus a second "CDN" origin for large files, over a `HubStore`.

Speaks what the real ``huggingface_hub`` client (2.4) sends; see /work/shared/reference/hub-protocol.md and
docs/devhub.md. Standard library only (``http.server``), HTTP/1.1 keep-alive, every request body drained.
The pieces: `plumbing` (HTTP), `api` with `reads`/`writes`/`admin` (routes), `cdn`, `faults`, `requestlog`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode

from mlxtui.devhub.api import ApiHandler
from mlxtui.devhub.auth import Caller
from mlxtui.devhub.cdn import CdnHandler
from mlxtui.devhub.credentials import ADMIN_TOKEN_FILE, SIGNING_SECRET_FILE, new_token, read_or_create_secret, tighten
from mlxtui.devhub.faults import Fault, Faults
from mlxtui.devhub.plumbing import HubError, Server
from mlxtui.devhub.requestlog import RequestLog, RequestRecord
from mlxtui.devhub.store import LFS_SIZE_THRESHOLD, FileEntry, HubStore

__all__ = ["DevHub", "Faults", "Fault", "RequestRecord", "HubError", "Caller", "MAX_BODY", "MAX_COMMIT_BODY",
           "READ_TIMEOUT", "is_loopback"]

#: the largest JSON request body (create, settings, preupload, LFS batch, paths-info...)
MAX_BODY = 8 * 1024 * 1024
#: the largest commit payload: regular files (< 10 MB each) travel inside it, base64-encoded
MAX_COMMIT_BODY = 512 * 1024 * 1024
#: seconds a connection may stay silent in the middle of a request before it is dropped
READ_TIMEOUT = 30.0


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
        max_body: int = MAX_BODY,
        max_commit_body: int = MAX_COMMIT_BODY,
        read_timeout: float = READ_TIMEOUT,
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
        self.log = RequestLog()
        #: every API request, every CDN request, and (repo file URL path, Range header) of ranged file requests
        self.requests, self.cdn_requests, self.range_requests = self.log.api, self.log.cdn, self.log.ranges
        #: JSON bodies (8 MB), a commit's NDJSON (regular files inline, 512 MB), seconds a silent client is waited for
        self.max_body, self.max_commit_body, self.read_timeout = max_body, max_commit_body, read_timeout
        # both persist in the root (0600): a restart keeps signed URLs valid and admin clients working
        self._secret = read_or_create_secret(self.root / SIGNING_SECRET_FILE).encode()
        self.admin_token = read_or_create_secret(self.root / ADMIN_TOKEN_FILE, lambda: new_token("devhub_admin_"))
        tighten(self.store.tokens_path)
        self._api: Server | None = None
        self._cdn: Server | None = None
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
        self.store.blobs.sweep_temp()  # what a killed server or a dropped upload left in objects/tmp
        self._api = Server((self.host, self._port), ApiHandler, self)
        self._cdn = Server((self.host, self._cdn_port), CdnHandler, self)
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
        self.log.clear()

    def count_requests(self, method: str | None = None, path_prefix: str = "") -> int:
        """How many API requests matched (handy for "served from cache" assertions)."""
        return self.log.count(method, path_prefix)

    # ------------------------------------------------------------- signing
    def sign(self, *parts: str) -> str:
        """An HMAC of the parts (JSON-encoded, so no two part lists sign alike) with the root's signing secret."""
        return hmac.new(self._secret, json.dumps(parts).encode(), hashlib.sha256).hexdigest()[:32]

    _sign = sign

    def signature_ok(self, signature: str, *parts: str) -> bool:
        return hmac.compare_digest(signature.encode("utf-8", "replace"), self.sign(*parts).encode())

    def admin_token_ok(self, token: str) -> bool:
        """Whether `token` is this root's admin token (constant-time)."""
        return hmac.compare_digest(token.encode("utf-8", "replace"), self.admin_token.encode())

    @property
    def admin_headers(self) -> dict[str, str]:
        """The Authorization header of the /_devhub/ admin routes (tests and operators)."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    def cdn_link(self, repo_id: str, revision: str, entry: FileEntry, ttl: int = 3600,
                 hostname: str | None = None) -> str:
        """A signed, expiring URL on the CDN origin for one blob (`hostname`: as the client reached the API)."""
        expires = str(int(time.time()) + ttl)
        sig = self.sign(entry.sha256, repo_id, revision, entry.path, expires)
        query = urlencode({"repo": repo_id, "rev": revision, "path": entry.path, "expires": expires, "sig": sig})
        base = f"http://{hostname}:{self.cdn_port}" if hostname else self.cdn_url
        return f"{base}/blobs/{entry.sha256}?{query}"

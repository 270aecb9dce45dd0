"""The second origin, like the Hub's CDN: signed, expiring blob URLs with Range support."""

from __future__ import annotations

import re
import time
from urllib.parse import unquote

from mlxtui.devhub.plumbing import BaseHandler, HubError
from mlxtui.devhub.requestlog import RequestRecord

__all__ = ["CdnHandler"]


class CdnHandler(BaseHandler):
    """The second origin: signed, expiring blob URLs with Range support (no Authorization needed)."""

    def route(self) -> None:
        self.hub.log.add(self.hub.log.cdn, RequestRecord(self.command, unquote(self.raw_path), self.query_string))
        match = re.fullmatch(r"/blobs/([0-9a-f]{64})", self.raw_path)
        if not match or self.command not in ("GET", "HEAD"):
            raise HubError(404, "NotFound", "Not found")
        sha = match.group(1)
        q = {k: v[0] for k, v in self.query.items()}
        repo, rev, path, expires = q.get("repo", ""), q.get("rev", ""), q.get("path", ""), q.get("expires", "0")
        if not self.hub.signature_ok(q.get("sig", ""), sha, repo, rev, path, expires):
            raise HubError(403, "AccessDenied", "Invalid signature")
        if not (expires.isascii() and expires.isdigit()) or int(expires) < time.time():
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

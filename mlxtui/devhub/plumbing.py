"""HTTP plumbing shared by both origins: the threaded server, body reading, answers, errors, ranged file bytes."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from mlxtui.devhub.server import DevHub

__all__ = ["HubError", "repo_not_found", "Server", "Dropped", "BaseHandler", "parse_range", "truthy", "int_param"]


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


def repo_not_found() -> HubError:
    return HubError(404, "RepoNotFound", "Repository not found")



class Server(ThreadingHTTPServer):
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


class Dropped(Exception):
    """The handler deliberately dropped the connection (an injected fault)."""


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per answer
    disable_nagle_algorithm = True
    server: Server
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
            except (Dropped, ConnectionError, TimeoutError):
                raise
            except Exception as error:  # a bug must answer 500, not hang the client
                self.read_body_quietly()
                self.send_error_answer(HubError(500, "InternalError", f"devhub internal error: {error!r}"))
            else:
                self.read_body_quietly()
        except (Dropped, ConnectionError, TimeoutError):
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
            parsed = parse_range(range_header, size)
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
            raise Dropped()


def parse_range(header: str, size: int) -> tuple[int, int] | None:
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


def truthy(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def int_param(q: dict[str, list[str]], name: str, default: Any) -> Any:
    values = q.get(name)
    if not values or values[0] == "":
        return default
    try:
        return max(0, int(values[0]))
    except ValueError:
        raise HubError(400, "BadRequest", f"{name} must be an integer") from None

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

from mlxtui.devhub.objects import EntryNotFound, RepoNotFound, RevisionNotFound, StoreError

if TYPE_CHECKING:
    from mlxtui.devhub.server import DevHub

#: a body over a route's limit is read and thrown away up to this size (so the client sees the 413), else dropped
DRAIN_LIMIT = 1 << 30
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,15}")
_KIND_NAMES = {dict: "object", list: "array"}
_STORE_ERRORS = {
    RepoNotFound: (404, "RepoNotFound"), RevisionNotFound: (404, "RevisionNotFound"),
    EntryNotFound: (404, "EntryNotFound"),
}


def _header_value(value: object) -> str:
    """A header value with no line breaks or other control characters (no header injection from a path)."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in str(value))


__all__ = ["DRAIN_LIMIT", "HubError", "repo_not_found", "Server", "Dropped", "BaseHandler", "parse_range", "truthy", "int_param"]


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
        self.timeout = self.server.hub.read_timeout  # a client that stops sending is dropped, never waited on
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
    def read_body(self, limit: int | None = None) -> bytes:
        """Read (drain) the whole request body, Content-Length or chunked, at most `limit` bytes (hub.max_body).

        A body over the limit is drained unread (up to DRAIN_LIMIT, else the connection is closed) and answered
        413; a malformed length or chunk is answered 400 and closes the connection. Reads time out (read_timeout).
        """
        if self._body is not None:
            return self._body
        if self._body_error is not None:
            raise self._body_error
        try:
            self._body = self._read_body(self.hub.max_body if limit is None else limit)
        except HubError as error:
            self._body_error = error
            raise
        return self._body

    def _bad_body(self, message: str) -> HubError:
        self.close_connection = True  # the stream position is unknown: never parse the next request from it
        return HubError(400, "BadRequest", message)

    def _too_large(self, limit: int) -> HubError:
        return HubError(413, "PayloadTooLarge", f"Request body is larger than the {limit:,} bytes this route accepts")

    def content_length(self) -> int | None:
        """The Content-Length header as a number; 400 when it is not one."""
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        raw = raw.strip()
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
            raise self._bad_body("Content-Length must be a number of bytes")
        return int(raw)

    def _read_body(self, limit: int) -> bytes:
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise self._bad_body(f"Unsupported Transfer-Encoding {encoding[:40]!r}")
            return self._read_chunked(limit)
        length = self.content_length() or 0
        if length > limit:
            if length > DRAIN_LIMIT:
                self.close_connection = True
            else:
                self._read_exact(length, keep=False)
            raise self._too_large(limit)
        return self._read_exact(length, keep=True)

    def _read_exact(self, count: int, *, keep: bool) -> bytes:
        parts = []
        remaining = count
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1024 * 1024))
            if not chunk:
                raise self._bad_body(f"Request body ended after {count - remaining} of {count} bytes")
            if keep:
                parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(size_text):
                raise self._bad_body("Malformed chunked body (chunk size line)")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > DRAIN_LIMIT:
                self.close_connection = True
                raise self._too_large(limit)
            data = self._read_exact(size, keep=total <= limit)
            if total <= limit:
                parts.append(data)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise self._bad_body("Malformed chunked body (no line end after a chunk)")
        for _ in range(64):  # trailers, then the blank line
            line = self.rfile.readline(8192)
            if line in (b"\r\n", b"\n"):
                break
            if not line.endswith(b"\n"):
                raise self._bad_body("Malformed chunked body (trailer)")
        else:
            raise self._bad_body("Malformed chunked body (too many trailers)")
        if total > limit:
            raise self._too_large(limit)
        return b"".join(parts)

    def json_body(self, limit: int | None = None, kind: type = dict) -> Any:
        """The body as JSON of `kind` (an object by default); 400 when it is not, {} / [] when empty."""
        from mlxtui.services.bounded import BadFileError, parse_json

        body = self.read_body(limit)
        if not body.strip():
            return kind()
        try:
            value = parse_json(body, "the request body", max_bytes=len(body))
        except BadFileError as error:
            raise HubError(400, "BadRequest", f"Request body is not valid JSON: {error}") from None
        if not isinstance(value, kind):
            raise HubError(400, "BadRequest", f"Request body must be a JSON {_KIND_NAMES.get(kind, kind.__name__)}, "
                           f"not {type(value).__name__}")
        return value

    # ------------------------------------------------------------ answers
    def send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
             content_type: str = "application/json; charset=utf-8") -> None:
        self.send_response(status)
        merged = {"Content-Type": content_type, "Content-Length": str(len(body)), **(headers or {})}
        for key, value in merged.items():
            self.send_header(key, _header_value(value))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_json(self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.send(status, json.dumps(data).encode(), headers)

    def send_error_answer(self, error: HubError) -> None:
        headers = dict(error.headers)
        if error.code:
            headers["X-Error-Code"] = error.code
        headers["X-Error-Message"] = error.message
        self.send_json(error.body or {"error": error.message}, error.status, headers)

    def _dispatch(self) -> None:
        self._body: bytes | None = None
        self._body_error: HubError | None = None
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
            except StoreError as error:  # a store refusal that a route did not map: still the caller's mistake
                self.read_body_quietly()
                status, code = _STORE_ERRORS.get(type(error), (400, "BadRequest"))
                self.send_error_answer(HubError(status, code, str(error)))
            except Exception as error:  # a bug must answer 500, not hang the client
                self.read_body_quietly()
                self.send_error_answer(HubError(500, "InternalError", f"devhub internal error: {error!r}"))
            else:
                self.read_body_quietly()
        except (Dropped, ConnectionError, TimeoutError):
            # a fault we injected, or the client went away: this connection is done
            self.close_connection = True

    def read_body_quietly(self) -> None:
        """Drain what the route did not read, so the next request on this connection starts clean."""
        if self._body is not None or self._body_error is not None:
            return  # read already, or reading failed (and the connection is closed when its stream is unusable)
        try:
            self._read_body(0)  # limit 0: every byte is thrown away, nothing is kept in memory
        except HubError:
            pass  # 413 after draining; a malformed body has closed the connection
        except (OSError, ValueError):
            self.close_connection = True
        self._body = b""

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = lambda self: self._dispatch()  # noqa: E731
    do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = lambda self: self._dispatch()  # noqa: E731 - 404/405, never 501

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
            self.hub.log.add(self.hub.log.ranges, (fault_path, range_header))
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
            self.send_header(key, _header_value(value))
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


_MISSING: Any = object()


def get_str(data: Mapping[str, Any], key: str, default: Any = _MISSING, *, what: str = "") -> Any:
    """data[key] as a string; 400 when it is another type, or missing without a default."""
    value = data.get(key, default)
    if value is _MISSING:
        raise HubError(400, "BadRequest", f"{what or 'request'}: '{key}' is required")
    if value is not default and not isinstance(value, str):
        raise HubError(400, "BadRequest", f"{what or 'request'}: '{key}' must be a string, not {type(value).__name__}")
    return value


def get_int(data: Mapping[str, Any], key: str, default: Any = _MISSING, *, what: str = "") -> Any:
    """data[key] as a non-negative integer (never a bool); 400 otherwise."""
    value = data.get(key, default)
    if value is _MISSING:
        raise HubError(400, "BadRequest", f"{what or 'request'}: '{key}' is required")
    if value is not default and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise HubError(400, "BadRequest", f"{what or 'request'}: '{key}' must be a non-negative integer")
    return value


def get_list(data: Mapping[str, Any], key: str, *, what: str = "") -> list[Any]:
    """data[key] as a list ([] when absent); 400 when it is something else."""
    value = data.get(key, [])
    if not isinstance(value, list):
        raise HubError(400, "BadRequest", f"{what or 'request'}: '{key}' must be a list")
    return value


__all__ += ["get_str", "get_int", "get_list"]

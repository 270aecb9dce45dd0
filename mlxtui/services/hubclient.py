"""The one way mlxtui talks to huggingface_hub: the client, the token, the error map, the thread bridge.

- `make_api(ctx)`: an `HfApi` for `ctx.endpoint` and `ctx.token` (never the process-wide endpoint).
- `resolve_token(ctx)`: ctx.token, else HF_TOKEN or the standard token file (huggingface_hub's lookup).
- `map_error(...)`: any huggingface_hub or transport exception as the `MlxtuiError` kind a person can act on.
- `in_thread(...)`: run a blocking call on a worker thread and yield the `Notice`s it causes (rate-limit
  waits), then its `Result`; closing the iterator abandons the thread's result at once.

huggingface_hub is imported inside the functions, never at module import, so the app starts fast.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlxtui.services.errors import (
    AuthError,
    GatedError,
    InvalidInputError,
    MlxtuiError,
    NotFoundError,
    OfflineError,
    RateLimitedError,
)
from mlxtui.services.events import Notice

if TYPE_CHECKING:
    from mlxtui.services import Context

__all__ = [
    "MAX_RETRIES",
    "HF_HUB_MAJOR",
    "Result",
    "make_api",
    "resolve_token",
    "map_error",
    "error_chain",
    "http_status",
    "is_offline",
    "in_thread",
    "in_daemon_thread",
    "with_retries",
    "quiet_tqdm",
]

#: the huggingface_hub major version this module is written for (pyproject pins it); private hooks check it
HF_HUB_MAJOR = 2
#: how often a 429 is retried before giving up
MAX_RETRIES = 5


def resolve_token(ctx: Context) -> str | None:
    """ctx.token, else HF_TOKEN or the standard token file (huggingface_hub's own lookup)."""
    if ctx.token:
        return ctx.token
    from huggingface_hub import get_token

    return get_token()


def make_api(ctx: Context) -> Any:
    """An HfApi bound to ctx's endpoint and token (False: no token at all, never a stray saved one)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=ctx.endpoint, token=resolve_token(ctx) or False)


def get_json_once(ctx: Context, path: str, params: dict[str, Any], *, timeout: float = 5.0,
                  max_bytes: int = 4_000_000) -> Any:
    """One GET of a Hub API path, bounded and never retried; raises on any failure.

    For type-ahead and hints: huggingface_hub retries a dead connection for about 23 s, which outlasts the
    question (and held quitting the app offline until it gave up)."""
    from huggingface_hub.utils import build_hf_headers, get_session

    from mlxtui.services.bounded import BadFileError, parse_json

    url = ctx.endpoint.rstrip("/") + path
    headers = build_hf_headers(token=resolve_token(ctx) or False)
    body = bytearray()
    with get_session().stream("GET", url, params=params, headers=headers, timeout=timeout) as response:
        if response.status_code >= 400:
            raise OSError(f"{url} answered HTTP {response.status_code}")
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise BadFileError(f"The Hub's answer to {path} is larger than {max_bytes:,} bytes.")
    return parse_json(bytes(body), f"the Hub's answer to {path}", max_bytes=max_bytes)


__all__.append("get_json_once")


def installed_major() -> int | None:
    """The installed huggingface_hub's major version."""
    try:
        from huggingface_hub import __version__
    except ImportError:
        return None
    try:
        return int(__version__.split(".")[0])
    except ValueError:
        return None


# --- errors ----------------------------------------------------------------------------------------


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """The error, then its causes and contexts, each once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def http_status(error: BaseException) -> int | None:
    """The HTTP status behind an error, looking through its causes."""
    for item in error_chain(error):
        code = getattr(getattr(item, "response", None), "status_code", None)
        if isinstance(code, int):
            return code
    return None


def retry_after(error: BaseException) -> float:
    response = getattr(error, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else 1.0
    except ValueError:
        return 1.0


_OFFLINE_NAMES = {"ConnectError", "ConnectTimeout", "ReadTimeout", "TimeoutException", "NetworkError",
                  "OfflineModeIsEnabled", "ConnectionError", "TransportError", "RemoteProtocolError",
                  "ReadError", "WriteError", "_Unreachable"}


def is_offline(error: BaseException) -> bool:
    """Connection refused, DNS failure, timeout or HF_HUB_OFFLINE, however huggingface_hub wrapped it."""
    for item in error_chain(error):
        if {cls.__name__ for cls in type(item).__mro__} & _OFFLINE_NAMES:
            return True
        if isinstance(item, (ConnectionError, TimeoutError)):
            return True
    return False


def map_error(error: BaseException, repo_id: str, endpoint: str, *, what: str = "", writing: bool = False,
              login_state: Callable[[], str] | None = None) -> MlxtuiError:
    """A huggingface_hub exception as an MlxtuiError kind whose message says what to do.

    `what` names what was asked for ("revision 'v2'", "file"); `writing` words 403s and dropped connections
    for uploads; `login_state` adds "you are logged in as …" to a not-found (it makes one request).
    """
    for item in error_chain(error):
        if isinstance(item, MlxtuiError):
            return item
    from huggingface_hub import errors as hf

    subject = repo_id or "the search"
    page = f"{endpoint}/{repo_id}"
    status = http_status(error)
    if isinstance(error, hf.GatedRepoError):
        return GatedError(
            f"{repo_id} is gated: its files need access approval.",
            hint=f"Visit {page}, accept the conditions, then log in (`hf auth login`) or set HF_TOKEN "
            "to a token of that account.",
        )
    if isinstance(error, hf.RevisionNotFoundError):
        return NotFoundError(f"{repo_id} has no {what or 'such revision'}.",
                             hint="Use a branch, tag or commit that exists (default: main).")
    if isinstance(error, hf.LocalEntryNotFoundError) and is_offline(error):
        # huggingface_hub's "offline and not in the cache" is an EntryNotFoundError too: it is not a missing file
        return OfflineError(f"Can't reach {endpoint} for {subject}, and it is not in the cache on this machine.",
                            hint="Check the network, or use a model that is already downloaded.")
    if isinstance(error, (hf.RemoteEntryNotFoundError, hf.EntryNotFoundError)):
        return NotFoundError(f"{repo_id} has no {what or 'such file'}.")
    if isinstance(error, hf.RepositoryNotFoundError):
        hint = "Check the spelling; it may also be private"
        hint += f", and {login_state()}." if login_state else "."
        return NotFoundError(f"{repo_id} was not found on {endpoint}.", hint=hint)
    if isinstance(error, hf.HFValidationError):
        return InvalidInputError(f"{repo_id!r} is not a valid repo id ({str(error).splitlines()[0]}).")
    if isinstance(error, hf.LocalTokenNotFoundError):
        return AuthError("No Hugging Face token found.", hint="Set HF_TOKEN or run `hf auth login`.")
    if status == 429:
        return RateLimitedError(f"{endpoint} kept rate-limiting requests for {subject}.",
                                hint="Wait a minute and try again.")
    if status == 401:
        return AuthError(f"{endpoint} refused the token for {subject} (401).",
                         hint="Log in again (`hf auth login`) or set HF_TOKEN.")
    if status == 403 and writing:
        namespace = repo_id.split("/")[0]
        return AuthError(
            f"You can't write to {repo_id}: the token is read-only or has no write access to {namespace!r} (403).",
            hint="Use a token with write access, or pick a namespace you own.",
        )
    if is_offline(error):
        if writing:
            return OfflineError(f"The connection to {endpoint} dropped.",
                                hint="Run the same upload again: files the server already has are not sent again.")
        return OfflineError(f"Can't reach {endpoint}.",
                            hint="Check the network; files already cached on this machine can still be used.")
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return MlxtuiError(f"The Hub answered with an error for {subject}: {detail}")


# --- rate-limit notices ------------------------------------------------------------------------------
# huggingface_hub retries 429s and connection errors itself and only logs each wait; this filter turns those
# log records into Notices for the thread that asked (and keeps them off the terminal). The wording is
# huggingface_hub 2.x's; with another major version the filter stays out of the way (no notices, no harm).

_listeners: dict[int, Callable[[Notice], None]] = {}
_WAIT = re.compile(r"(?:Rate limited\. Waiting|Retrying in) ([\d.]+)s")
#: connection failures that backing off will not fix
_UNREACHABLE = ("Connection refused", "All connection attempts failed", "Name or service not known",
                "nodename nor servname", "Temporary failure in name resolution", "Network is unreachable",
                "No route to host")


class _Unreachable(ConnectionError):
    """Raised out of huggingface_hub's retry loop when the Hub cannot be reached at all."""


class _RetryNoticeFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        listener = _listeners.get(record.thread or 0)
        if listener is None:
            return True
        message = record.getMessage()
        if "thrown while requesting" in message and any(s in message for s in _UNREACHABLE):
            # Nothing is listening (or the name does not resolve): retrying for ~25 s only delays "offline".
            raise _Unreachable(message)
        match = _WAIT.search(message)
        if match:
            seconds = float(match.group(1))
            text = (f"rate limited, retrying in {seconds:g} s" if "Rate limited" in message
                    else f"the Hub did not answer, retrying in {seconds:g} s")
            listener(Notice(text, "warning"))
        return False  # never printed: a terminal UI would be garbled by it


_filter_lock = threading.Lock()
_filter_installed = False


def _install_filter() -> None:
    global _filter_installed
    with _filter_lock:
        if not _filter_installed and installed_major() == HF_HUB_MAJOR:
            logging.getLogger("huggingface_hub.utils._http").addFilter(_RetryNoticeFilter())
        _filter_installed = True


# --- the thread bridge -------------------------------------------------------------------------------


@dataclass
class Result:
    """The value a blocking call returned (after any Notices)."""

    value: Any


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncIterator[Notice | Result]:
    """Run a blocking call in a thread; yield the Notices it causes, then `Result(value)` (or raise).

    Closing the iterator early (a cancelled worker) returns at once; the thread finishes on its own and its
    result is dropped.
    """
    async for event in _bridge(fn, args, kwargs, daemon=False):
        yield event


async def in_daemon_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncIterator[Notice | Result]:
    """`in_thread` on a daemon thread, which the interpreter does not wait for at exit.

    For work that may be abandoned when the user quits (a download: huggingface_hub resumes the partial
    file next time), so quitting never waits for the network.
    """
    async for event in _bridge(fn, args, kwargs, daemon=True):
        yield event


def _daemon_future(runner: Callable[[], Any]) -> asyncio.Future[Any]:
    """Run `runner` on a new daemon thread; its outcome lands in the returned future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def target() -> None:
        value, error = None, None
        try:
            value = runner()
        except BaseException as caught:  # handed to the awaiting side
            error = caught
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:
            pass  # the loop has closed: nobody is listening

    threading.Thread(target=target, name="mlxtui-daemon", daemon=True).start()
    return future


async def reporting(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """`in_thread` for a call that reports as it goes: runs `fn(emit, *args, **kwargs)` and yields every event it
    passes to `emit` (and the Notices it causes) in order, then `Result(value)` (or raises)."""
    async for event in _bridge(fn, args, kwargs, daemon=False, emit=True):
        yield event


__all__.append("reporting")


async def _bridge(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
                  daemon: bool, emit: bool = False) -> AsyncIterator[Any]:
    _install_filter()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def post(notice: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, notice)
        except RuntimeError:
            pass  # the loop has closed: nobody is listening

    def runner() -> Any:
        ident = threading.get_ident()
        _listeners[ident] = post
        try:
            return fn(post, *args, **kwargs) if emit else fn(*args, **kwargs)
        finally:
            _listeners.pop(ident, None)

    task = _daemon_future(runner) if daemon else asyncio.ensure_future(asyncio.to_thread(runner))
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                yield getter.result()
                continue
            getter.cancel()
            break
        while not queue.empty():
            yield queue.get_nowait()
        yield Result(task.result())
    finally:
        if not task.done():
            task.cancel()


async def with_retries(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncIterator[Notice | Result]:
    """`in_thread` plus a 429 retry loop (honouring Retry-After) for calls huggingface_hub does not retry."""
    for attempt in range(MAX_RETRIES + 1):
        try:
            async for event in in_thread(fn, *args, **kwargs):
                yield event
            return
        except Exception as error:
            if http_status(error) != 429 or attempt == MAX_RETRIES:
                raise
            wait = retry_after(error)
            yield Notice(f"rate limited, retrying in {wait:g} s", "warning")
            await asyncio.sleep(wait)


async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`in_thread` for callers that do not show notices: just the value."""
    async for event in in_thread(fn, *args, **kwargs):
        if isinstance(event, Result):
            return event.value
    return None


__all__.append("run")


def quiet_tqdm() -> type:
    """A progress-bar class that never draws: a bar would garble the TUI."""
    from tqdm.auto import tqdm

    class QuietTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return QuietTqdm

"""The read side of the Hub through huggingface_hub: search, model info, small files, existing MLX conversions.

Every blocking huggingface_hub call runs in a thread (`asyncio.to_thread`); methods are async iterators that
yield `Notice` events while they wait (e.g. "rate limited, retrying in 3 s") and then their result.
huggingface_hub is imported inside the functions, never at module import, so the app starts fast.

Rate limits: `list_models` and `hf_hub_download` retry 429s themselves honouring Retry-After and log each
wait; a logging filter turns those log records into Notice events for the caller's thread (and keeps them off
the terminal). `model_info` does not retry, so `_with_retries` does it here, honouring Retry-After too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlxtui.services import Context
from mlxtui.services.errors import (
    GatedError,
    InvalidInputError,
    MlxtuiError,
    NotFoundError,
    OfflineError,
    RateLimitedError,
)
from mlxtui.services.events import Notice, SearchHit, SearchPage

__all__ = ["HubService", "SearchCursor", "SearchQuery", "SORTS", "validate_repo_id", "MAX_RETRIES"]

#: user-facing sort names -> list_models sort values
SORTS = {"downloads": "downloads", "likes": "likes", "trending": "trending_score", "updated": "last_modified"}
#: how often a 429 is retried before giving up
MAX_RETRIES = 5
#: small files read for Inspect (never weights)
SMALL_FILES = ("config.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json",
               "model.safetensors.index.json", "README.md")
_EXPAND = ["downloads", "likes", "lastModified", "gated", "private", "tags", "library_name", "pipeline_tag",
           "safetensors"]
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def validate_repo_id(repo_id: str) -> str:
    """Check a repo id locally, before any request; returns it stripped or raises InvalidInputError."""
    repo_id = (repo_id or "").strip().strip("/")
    if not repo_id:
        raise InvalidInputError("Give a repo id such as h2oai/h2o-danube2-1.8b-chat.")
    if not _REPO_ID.match(repo_id) or ".." in repo_id or "--" in repo_id or repo_id.endswith((".", "-")):
        raise InvalidInputError(
            f"{repo_id!r} is not a valid repo id: use owner/name with letters, digits, '-', '_' and '.' "
            "(or a local folder path starting with / or ./)."
        )
    return repo_id


@dataclass(frozen=True)
class SearchQuery:
    """What to search for; empty strings mean "no filter"."""

    text: str = ""
    author: str = ""
    filters: tuple[str, ...] = ()
    library: str = ""
    pipeline_tag: str = ""
    sort: str = "downloads"


# --- 429 notices ---------------------------------------------------------------------------------

_listeners: dict[int, Callable[[Notice], None]] = {}
_WAIT = re.compile(r"(?:Rate limited\. Waiting|Retrying in) ([\d.]+)s")


#: connection failures that backing off will not fix
_UNREACHABLE = ("Connection refused", "All connection attempts failed", "Name or service not known",
                "nodename nor servname", "Temporary failure in name resolution", "Network is unreachable",
                "No route to host")


class _Unreachable(ConnectionError):
    """Raised out of huggingface_hub's retry loop when the Hub cannot be reached at all."""


class _RetryNoticeFilter(logging.Filter):
    """Turns huggingface_hub's retry log lines into Notices for threads that asked for them."""

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
            text = f"rate limited, retrying in {seconds:g} s" if "Rate limited" in record.getMessage() else (
                f"the Hub did not answer, retrying in {seconds:g} s")
            listener(Notice(text, "warning"))
        return False  # never printed: a terminal UI would be garbled by it


_filter_installed = False


def _install_filter() -> None:
    global _filter_installed
    if not _filter_installed:
        logging.getLogger("huggingface_hub.utils._http").addFilter(_RetryNoticeFilter())
        _filter_installed = True


@dataclass
class _Result:
    value: Any


async def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncIterator[Notice | _Result]:
    """Run a blocking call in a thread; yield the Notices it causes, then `_Result(value)` (or raise)."""
    _install_filter()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Notice] = asyncio.Queue()

    def runner() -> Any:
        ident = threading.get_ident()
        _listeners[ident] = lambda notice: loop.call_soon_threadsafe(queue.put_nowait, notice)
        try:
            return fn(*args, **kwargs)
        finally:
            _listeners.pop(ident, None)

    task = asyncio.ensure_future(asyncio.to_thread(runner))
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
        yield _Result(task.result())
    finally:
        if not task.done():
            task.cancel()  # the thread finishes on its own; its result is dropped


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(error: BaseException) -> float:
    response = getattr(error, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


def _is_offline(error: BaseException) -> bool:
    """Connection refused, DNS failure, timeout or HF_HUB_OFFLINE, however huggingface_hub wrapped it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names = {cls.__name__ for cls in type(current).__mro__}
        if names & {"ConnectError", "ConnectTimeout", "ReadTimeout", "TimeoutException", "NetworkError",
                    "OfflineModeIsEnabled", "ConnectionError", "TransportError", "RemoteProtocolError"}:
            return True
        current = current.__cause__ or current.__context__
    return False


class HubService:
    """Search, model info and small-file reads against `ctx.endpoint`, as `ctx.token` (or the saved login)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- plumbing ---------------------------------------------------------------------------------

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.ctx.endpoint, token=self.ctx.token)

    def _token(self) -> str | None:
        if self.ctx.token:
            return self.ctx.token
        from huggingface_hub import get_token

        return get_token()

    def _login_state(self) -> str:
        """'you are logged in as alice' / 'you are not logged in' (one whoami request when there is a token)."""
        token = self._token()
        if not token:
            return "you are not logged in (run `hf auth login` or set HF_TOKEN)"
        try:
            name = self._api().whoami(token=token).get("name")
        except Exception:  # noqa: BLE001 - a failed whoami only makes the message vaguer
            return "you are logged in with a token the Hub did not accept"
        return f"you are logged in as {name}"

    def map_error(self, error: BaseException, repo_id: str, what: str = "") -> MlxtuiError:
        """A huggingface_hub exception as an MlxtuiError kind whose message says what to do."""
        from huggingface_hub import errors as hf

        if isinstance(error, MlxtuiError):
            return error
        page = f"{self.ctx.endpoint}/{repo_id}"
        if isinstance(error, hf.GatedRepoError):
            return GatedError(
                f"{repo_id} is gated: its files need access approval.",
                hint=f"Visit {page}, accept the conditions, then log in (`hf auth login`) or set HF_TOKEN "
                "to a token of that account.",
            )
        if isinstance(error, hf.RevisionNotFoundError):
            return NotFoundError(f"{repo_id} has no {what or 'such revision'}.",
                                 hint="Use a branch, tag or commit that exists (default: main).")
        if isinstance(error, (hf.RemoteEntryNotFoundError, hf.EntryNotFoundError)):
            return NotFoundError(f"{repo_id} has no {what or 'such file'}.")
        if isinstance(error, hf.RepositoryNotFoundError):
            return NotFoundError(
                f"{repo_id} was not found on {self.ctx.endpoint}.",
                hint=f"Check the spelling; it may also be private, and {self._login_state()}.",
            )
        if isinstance(error, hf.HFValidationError):
            return InvalidInputError(f"{repo_id!r} is not a valid repo id ({error}).")
        if _status(error) == 429:
            return RateLimitedError(f"The Hub kept rate-limiting requests for {repo_id or 'this search'}.",
                                    hint="Wait a minute and try again.")
        if _is_offline(error):
            return OfflineError(f"Can't reach {self.ctx.endpoint}.",
                                hint="Check the network; files already cached on this machine can still be inspected.")
        if _status(error) == 401:
            return NotFoundError(f"{self.ctx.endpoint} refused the token for {repo_id}.",
                                 hint="Log in again (`hf auth login`) or set HF_TOKEN.")
        return MlxtuiError(f"The Hub answered with an error for {repo_id or 'the search'}: {error}")

    async def _with_retries(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncIterator[Notice | _Result]:
        """`_in_thread` plus our own 429 retry loop for calls huggingface_hub does not retry (model_info)."""
        for attempt in range(MAX_RETRIES + 1):
            try:
                async for event in _in_thread(fn, *args, **kwargs):
                    yield event
                return
            except Exception as error:
                if _status(error) != 429 or attempt == MAX_RETRIES:
                    raise
                wait = _retry_after(error)
                yield Notice(f"rate limited, retrying in {wait:g} s", "warning")
                await asyncio.sleep(wait)

    # -- search -----------------------------------------------------------------------------------

    def search(self, query: SearchQuery, page_size: int = 50) -> SearchCursor:
        """A cursor over the results; no request is made until its first page is asked for."""
        if query.sort not in SORTS:
            raise InvalidInputError(f"Unknown sort {query.sort!r}; use one of {', '.join(SORTS)}.")
        return SearchCursor(self, query, page_size)

    def _list_models(self, query: SearchQuery) -> Iterator[Any]:
        filters = [f for f in query.filters if f]
        if query.library:
            filters.append(query.library)
        return iter(self._api().list_models(
            search=query.text or None,
            author=query.author or None,
            filter=filters or None,
            pipeline_tag=query.pipeline_tag or None,
            sort=SORTS[query.sort],
            expand=_EXPAND,
        ))

    # -- model files ------------------------------------------------------------------------------

    async def model_info(self, repo_id: str, revision: str | None = None) -> AsyncIterator[Notice | Any]:
        """Yield Notices, then the ModelInfo (with file sizes)."""
        repo_id = validate_repo_id(repo_id)
        api = self._api()
        try:
            async for event in self._with_retries(api.model_info, repo_id, revision=revision, files_metadata=True):
                yield event.value if isinstance(event, _Result) else event
        except Exception as error:
            raise self.map_error(error, repo_id, f"revision {revision!r}" if revision else "") from error

    def _download_small(self, repo_id: str, filename: str, revision: str | None, local_only: bool = False) -> str | None:
        """Path of a small file in the HF cache (downloaded when needed); None when the repo lacks it."""
        from huggingface_hub import hf_hub_download
        from huggingface_hub import errors as hf

        try:
            return hf_hub_download(repo_id, filename, revision=revision, endpoint=self.ctx.endpoint,
                                   token=self.ctx.token, local_files_only=local_only, tqdm_class=_quiet_tqdm())
        except (hf.RemoteEntryNotFoundError, hf.EntryNotFoundError):
            return None
        except hf.LocalEntryNotFoundError:
            if local_only:
                return None
            raise

    def _cached_files(self, repo_id: str, revision: str | None) -> dict[str, str]:
        """Small files of `repo_id` already in the HF cache (for offline inspection)."""
        from huggingface_hub import try_to_load_from_cache

        found: dict[str, str] = {}
        for name in SMALL_FILES:
            path = try_to_load_from_cache(repo_id, name, revision=revision)
            if isinstance(path, str):
                found[name] = path
        return found

    async def fetch_model_files(self, repo_id: str, revision: str | None = None, *, conversions: bool = True
                                ) -> AsyncIterator[Any]:
        """Yield Notices, then one `ModelFiles` with config.json and the other small files (no weights).

        Falls back to the HF cache when the Hub cannot be reached; raises OfflineError if nothing is cached.
        """
        from mlxtui.services.inspect import ModelFiles, _front_matter

        repo_id = validate_repo_id(repo_id)
        files = ModelFiles(source=repo_id, revision=revision)
        info = None
        try:
            async for event in self.model_info(repo_id, revision):
                if isinstance(event, Notice):
                    yield event
                else:
                    info = event
        except OfflineError:
            cached = await asyncio.to_thread(self._cached_files, repo_id, revision)
            if "config.json" not in cached:
                raise OfflineError(
                    f"Can't reach {self.ctx.endpoint}, and config.json of {repo_id} is not cached on this machine.",
                    hint="Inspect it once while online, or inspect a local folder.",
                ) from None
            files.from_cache = True
            paths: dict[str, str | None] = dict(cached)
        else:
            assert info is not None
            files.sha = info.sha
            files.gated = info.gated or False
            files.private = bool(info.private)
            files.tags = list(info.tags or [])
            files.pipeline_tag = info.pipeline_tag
            files.library_name = info.library_name
            files.downloads, files.likes = info.downloads, info.likes
            files.last_modified = info.last_modified.isoformat() if info.last_modified else None
            files.files = {s.rfilename: s.size for s in info.siblings or []}
            if info.safetensors is not None:
                files.safetensors_total = info.safetensors.total
                files.safetensors_dtypes = dict(info.safetensors.parameters or {})
            if info.card_data is not None:
                files.card_data = info.card_data.to_dict()
                lic = files.card_data.get("license")
                files.license = lic if isinstance(lic, str) else None
            wanted = [n for n in SMALL_FILES if n in files.files]
            rev = revision  # by name, so the cache records refs/<revision> for offline use later
            paths = {}
            try:
                for name in wanted:
                    async for event in _in_thread(self._download_small, repo_id, name, rev):
                        if isinstance(event, Notice):
                            yield event
                        else:
                            paths[name] = event.value
            except Exception as error:
                mapped = self.map_error(error, repo_id, "file")
                config = getattr(info, "config", None)
                if not isinstance(mapped, GatedError) or not isinstance(config, dict):
                    raise mapped from error
                # Gated: the files need access, but model_info still carries config.json's content.
                yield Notice(str(mapped), "warning")
                files.gated_message = str(mapped)
                files.config_text = json.dumps(config, indent=2)
                paths = {}
        config_text = files.config_text
        _read_into(files, paths, _front_matter)
        files.config_text = files.config_text or config_text
        if conversions and not files.from_cache:
            try:
                async for event in self.existing_conversions(repo_id):
                    if isinstance(event, Notice):
                        yield event
                    else:
                        files.conversions = event
            except MlxtuiError as error:
                yield Notice(f"Existing MLX conversions could not be listed: {error}", "warning")
        yield files

    # -- existing conversions ---------------------------------------------------------------------

    def _conversion_candidates(self, repo_id: str, limit: int) -> list[Any]:
        """Repos tagged base_model:<repo_id>, plus mlx-community repos whose name contains the model's name."""
        api = self._api()
        name = repo_id.split("/")[-1]
        seen: dict[str, Any] = {}
        expand = ["tags", "library_name", "downloads", "lastModified"]
        # The Hub tags derivatives both ways: base_model:<id> and base_model:quantized:<id>.
        for tag in (f"base_model:{repo_id}", f"base_model:quantized:{repo_id}"):
            for candidate in api.list_models(filter=tag, expand=expand, sort="downloads", limit=limit):
                seen.setdefault(candidate.id, candidate)
        for candidate in api.list_models(author="mlx-community", search=name, expand=expand, sort="downloads",
                                         limit=limit):
            seen.setdefault(candidate.id, candidate)
        mlx = [c for c in seen.values()
               if c.id != repo_id and (c.library_name == "mlx" or "mlx" in (c.tags or []) or c.id.startswith("mlx-community/"))]
        return mlx[:limit]

    def _describe_conversion(self, candidate: Any) -> dict[str, Any]:
        """Quantization from the conversion's config.json, mlx-lm version from its card or provenance file."""
        import json

        out: dict[str, Any] = {"repo_id": candidate.id, "quantization": None, "bits": None, "group_size": None,
                               "mode": None, "mlx_lm_version": None, "downloads": candidate.downloads}
        path = self._download_small(candidate.id, "config.json", None)
        if path:
            try:
                config = json.loads(open(path, encoding="utf-8").read())
            except (OSError, ValueError):
                config = {}
            q = config.get("quantization") if isinstance(config, dict) else None
            if isinstance(q, dict):
                out.update(bits=q.get("bits"), group_size=q.get("group_size"), mode=q.get("mode", "affine"))
                mode = q.get("mode", "affine")
                out["quantization"] = f"{q.get('bits')}bit" if mode == "affine" else str(mode)
                if any(isinstance(v, dict) and v.get("bits") != q.get("bits") for v in q.values()):
                    out["quantization"] = f"mixed ({q.get('bits')}bit base)"
            else:
                dtype = config.get("torch_dtype") if isinstance(config, dict) else None
                out["quantization"] = str(dtype or "unquantized")
        for name in ("mlxtui-provenance.json",):
            try:
                prov = self._download_small(candidate.id, name, None)
            except Exception:  # noqa: BLE001
                prov = None
            if prov:
                try:
                    out["mlx_lm_version"] = json.loads(open(prov, encoding="utf-8").read())["versions"]["mlx_lm"]
                except (OSError, ValueError, KeyError, TypeError):
                    pass
        if out["mlx_lm_version"] is None:
            readme = self._download_small(candidate.id, "README.md", None)
            if readme:
                text = open(readme, encoding="utf-8", errors="replace").read()
                match = re.search(r"mlx-lm(?:\s+version)?\s*\**v?(\d+\.\d+(?:\.\d+)?)", text)
                if match:
                    out["mlx_lm_version"] = match.group(1)
        return out

    async def existing_conversions(self, repo_id: str, limit: int = 8) -> AsyncIterator[Notice | list[dict[str, Any]]]:
        """Yield Notices, then [{repo_id, quantization, bits, group_size, mode, mlx_lm_version, downloads}]."""
        repo_id = validate_repo_id(repo_id)
        try:
            candidates: list[Any] = []
            async for event in _in_thread(self._conversion_candidates, repo_id, limit):
                if isinstance(event, Notice):
                    yield event
                else:
                    candidates = event.value
            described = await asyncio.gather(
                *(asyncio.to_thread(self._describe_conversion, c) for c in candidates), return_exceptions=True)
        except Exception as error:
            raise self.map_error(error, repo_id) from error
        yield [d for d in described if isinstance(d, dict)]


def _quiet_tqdm() -> type:
    """A progress-bar class that never draws: small files need no bar, and a bar would garble the TUI."""
    from tqdm.auto import tqdm

    class QuietTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return QuietTqdm


def _read_into(files: Any, paths: dict[str, str | None], front_matter: Callable[[str], dict[str, Any]]) -> None:
    """Fill ModelFiles from downloaded small files (missing ones stay None)."""
    import json

    def text(name: str) -> str | None:
        path = paths.get(name)
        if not path:
            return None
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None

    def obj(name: str) -> dict[str, Any] | None:
        raw = text(name)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    files.config_text = text("config.json")
    files.tokenizer_config = obj("tokenizer_config.json")
    files.chat_template_file = text("chat_template.jinja")
    files.generation_config = obj("generation_config.json")
    files.index = obj("model.safetensors.index.json")
    readme = text("README.md")
    if readme is not None and not files.card_data:
        files.card_data = front_matter(readme)
        lic = files.card_data.get("license")
        files.license = files.license or (lic if isinstance(lic, str) else None)
    if files.from_cache:
        files.files = {name: None for name in paths}


@dataclass
class SearchCursor:
    """Pages of one search, fetched as they are asked for (the Hub's Link pagination, never all at once)."""

    hub: HubService
    query: SearchQuery
    page_size: int = 50
    done: bool = False
    fetched: int = 0
    _iterator: Iterator[Any] | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def _take(self, n: int) -> list[Any]:
        if self._iterator is None:
            self._iterator = self.hub._list_models(self.query)
        out = []
        for item in self._iterator:
            out.append(item)
            if len(out) >= n:
                break
        else:
            self.done = True
        return out

    async def next_page(self, n: int | None = None) -> AsyncIterator[Notice | SearchPage]:
        """Yield Notices, then a SearchPage of up to `n` (default page_size) more hits."""
        async with self._lock:
            if self.done:
                yield SearchPage(hits=(), done=True, offset=self.fetched)
                return
            items: list[Any] = []
            try:
                async for event in _in_thread(self._take, n or self.page_size):
                    if isinstance(event, Notice):
                        yield event
                    else:
                        items = event.value
            except Exception as error:
                self.done = True
                raise self.hub.map_error(error, self.query.author or "") from error
            offset = self.fetched
            self.fetched += len(items)
            yield SearchPage(hits=tuple(_hit(i) for i in items), done=self.done, offset=offset)


def _hit(info: Any) -> SearchHit:
    tags = list(info.tags or [])
    safetensors = getattr(info, "safetensors", None)
    return SearchHit(
        repo_id=info.id,
        downloads=info.downloads,
        likes=info.likes,
        last_modified=info.last_modified.isoformat() if getattr(info, "last_modified", None) else None,
        parameters=getattr(safetensors, "total", None) if safetensors is not None else None,
        mlx=(info.library_name == "mlx" or "mlx" in tags),
        gated=bool(info.gated),
        private=bool(info.private),
        pipeline_tag=info.pipeline_tag,
        library_name=info.library_name,
    )

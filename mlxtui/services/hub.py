"""The read side of the Hub through huggingface_hub: search, model info, small files, existing MLX conversions.

Every blocking huggingface_hub call runs in a thread (`asyncio.to_thread`); methods are async iterators that
yield `Notice` events while they wait (e.g. "rate limited, retrying in 3 s") and then their result.
huggingface_hub is imported inside the functions, never at module import, so the app starts fast.

Rate limits, the client, the error map and the thread bridge are `mlxtui.services.hubclient`'s.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxtui.services import Context
from mlxtui.services.errors import GatedError, InvalidInputError, MlxtuiError, NotFoundError, OfflineError
from mlxtui.services.events import Notice, SearchHit, SearchPage
from mlxtui.services.hubclient import (
    get_json_once,
    MAX_RETRIES,
    Result,
    in_thread,
    make_api,
    map_error,
    quiet_tqdm,
    resolve_token,
    with_retries,
)
from mlxtui.services.bounded import BadFileError, read_json_object
from mlxtui.services.modelfolder import PROVENANCE_FILE, quant_label, read_text, validate_repo_id

__all__ = [
    "HubService", "SearchCursor", "SearchQuery", "SORTS", "validate_repo_id", "MAX_RETRIES", "close_repo_ids",
    "with_close_matches", "repo_ids_starting",
]

#: user-facing sort names -> list_models sort values
SORTS = {"downloads": "downloads", "likes": "likes", "trending": "trending_score", "updated": "last_modified"}
#: small files read for Inspect (never weights)
SMALL_FILES = ("config.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json",
               "model.safetensors.index.json", "README.md")
_EXPAND = ["downloads", "likes", "lastModified", "gated", "private", "tags", "library_name", "pipeline_tag",
           "safetensors"]
#: model_info without the card (for a card huggingface_hub cannot parse); file sizes are then unknown
_EXPAND_WITHOUT_CARD = ["siblings", "config", "sha", "gated", "private", "tags", "library_name", "pipeline_tag",
                        "safetensors", "downloads", "likes", "lastModified"]


@dataclass(frozen=True)
class SearchQuery:
    """What to search for; empty strings mean "no filter"."""

    text: str = ""
    author: str = ""
    filters: tuple[str, ...] = ()
    library: str = ""
    pipeline_tag: str = ""
    sort: str = "downloads"


def _ids(ctx: Context, **query: Any) -> list[str]:
    """Repo ids of one search, asked once (best effort: a failed search is no ids, never an error of its own,
    and never huggingface_hub's 23 s of retries: completion and "did you mean" are courtesies)."""
    params = {key: value for key, value in query.items() if value is not None}
    try:
        models = get_json_once(ctx, "/api/models", params)
    except Exception:  # noqa: BLE001 - suggestions are a courtesy on top of an error already being reported
        return []
    if not isinstance(models, list):
        return []
    return [m["id"] for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)]


def close_repo_ids(ctx: Context, repo_id: str, limit: int = 3) -> list[str]:
    """Hub repos whose id is close to a `repo_id` that does not exist (a typo): at most three searches, by the
    name, by its longest word and by the owner, then the closest ids by spelling."""
    import difflib

    owner, _, name = repo_id.strip().rpartition("/")
    words = sorted((w for w in re.split(r"[-_.]", name) if len(w) >= 3), key=len, reverse=True)
    found: list[str] = []
    for query in dict.fromkeys([name, *words[:1]]):
        found += _ids(ctx, search=query, limit=50)
    if owner:
        found += _ids(ctx, author=owner, limit=100)
    by_lower = {f.lower(): f for f in dict.fromkeys(found) if f.lower() != repo_id.lower()}
    return [by_lower[m] for m in difflib.get_close_matches(repo_id.lower(), list(by_lower), n=limit, cutoff=0.6)]


def with_close_matches(ctx: Context, error: MlxtuiError, repo_id: str) -> MlxtuiError:
    """A "not found" error with close Hub matches added ("Did you mean …?"), or the error as it was."""
    matches = close_repo_ids(ctx, repo_id)
    if not matches:
        return error
    return NotFoundError(f"{error.message} Did you mean {' or '.join(matches)}?", hint=error.hint)


def repo_ids_starting(ctx: Context, prefix: str, limit: int = 20) -> list[str]:
    """Hub repo ids that begin with `prefix` (case-insensitive), most downloaded first: completion as you type."""
    owner, slash, name = prefix.partition("/")
    query: dict[str, Any] = {"author": owner, "search": name or None} if slash and owner else {"search": prefix}
    ids = _ids(ctx, sort="downloads", limit=limit * 3, **query)
    return [i for i in ids if i.lower().startswith(prefix.lower())][:limit]


class HubService:
    """Search, model info and small-file reads against `ctx.endpoint`, as `ctx.token` (or the saved login)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- plumbing ---------------------------------------------------------------------------------

    def _api(self) -> Any:
        return make_api(self.ctx)

    def _login_state(self) -> str:
        """'you are logged in as alice' / 'you are not logged in' (one whoami request when there is a token)."""
        token = resolve_token(self.ctx)
        if not token:
            return "you are not logged in (run `hf auth login` or set HF_TOKEN)"
        try:
            name = self._api().whoami(token=token).get("name")
        except Exception:  # noqa: BLE001 - a failed whoami only makes the message vaguer
            return "you are logged in with a token the Hub did not accept"
        return f"you are logged in as {name}"

    def map_error(self, error: BaseException, repo_id: str, what: str = "") -> MlxtuiError:
        """A huggingface_hub exception as an MlxtuiError (hubclient.map_error, with the login state)."""
        return map_error(error, repo_id, self.ctx.endpoint, what=what, login_state=self._login_state)

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

        def info(repo: str, revision: str | None = None) -> Any:
            try:
                return api.model_info(repo, revision=revision, files_metadata=True)
            except (TypeError, ValueError, AttributeError):
                # The card's metadata has a field of the wrong type (`tags: 7`), which huggingface_hub's
                # ModelCardData refuses: ask again without the card; its README is read (bounded) later.
                return api.model_info(repo, revision=revision, expand=_EXPAND_WITHOUT_CARD)

        try:
            async for event in with_retries(info, repo_id, revision=revision):
                yield event.value if isinstance(event, Result) else event
        except Exception as error:
            from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

            mapped = self.map_error(error, repo_id, f"revision {revision!r}" if revision else "")
            if isinstance(error, RepositoryNotFoundError) and not isinstance(error, GatedRepoError):
                mapped = await asyncio.to_thread(with_close_matches, self.ctx, mapped, repo_id)  # a typo?
            raise mapped from error

    def _download_small(self, repo_id: str, filename: str, revision: str | None, local_only: bool = False) -> str | None:
        """Path of a small file in the HF cache (downloaded when needed); None when the repo lacks it."""
        from huggingface_hub import hf_hub_download
        from huggingface_hub import errors as hf

        try:
            return hf_hub_download(repo_id, filename, revision=revision, endpoint=self.ctx.endpoint,
                                   token=self.ctx.token, local_files_only=local_only, tqdm_class=quiet_tqdm())
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
        from mlxtui.services.inspect_files import ModelFiles, fill_from_paths, safe_file_names

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
            listed = {s.rfilename: s.size for s in info.siblings or []}
            usable, _ = safe_file_names(listed)
            files.files = listed  # unsafe names stay listed so the report can name them; only usable ones are read
            if info.safetensors is not None:
                files.safetensors_total = info.safetensors.total
                files.safetensors_dtypes = dict(info.safetensors.parameters or {})
            if info.card_data is not None:
                files.card_data = info.card_data.to_dict()
                lic = files.card_data.get("license")
                files.license = lic if isinstance(lic, str) else None
            wanted = [n for n in SMALL_FILES if n in usable]
            rev = revision  # by name, so the cache records refs/<revision> for offline use later
            paths = {}
            try:
                for name in wanted:
                    async for event in in_thread(self._download_small, repo_id, name, rev):
                        if isinstance(event, Notice):
                            yield event
                        else:
                            paths[name] = event.value
            except Exception as error:
                mapped = self.map_error(error, repo_id, "file")
                config = getattr(info, "config", None)
                if not isinstance(mapped, GatedError):
                    raise mapped from error
                if not isinstance(config, dict):
                    # Gated without config.json in model_info: report what model_info told, then exit non-zero.
                    files.config_error = str(mapped)
                    config = None
                # Gated: the files need access, but model_info still carries config.json's content.
                yield Notice(str(mapped), "warning")
                files.gated_message = str(mapped)
                files.config_text = json.dumps(config, indent=2) if config is not None else None
                paths = {}
        config_text = files.config_text
        fill_from_paths(files, paths)
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
        out: dict[str, Any] = {"repo_id": candidate.id, "quantization": None, "bits": None, "group_size": None,
                               "mode": None, "mlx_lm_version": None, "downloads": candidate.downloads}
        path = self._download_small(candidate.id, "config.json", None)
        config = _small_json(path, "config.json") if path else None
        if config is not None:
            q = config.get("quantization")
            if isinstance(q, dict):
                out.update(bits=q.get("bits"), group_size=q.get("group_size"), mode=q.get("mode", "affine"))
            # the one label every pane and folder name uses (mixed_3_6, 4bit-g32, mxfp4, bf16 ...)
            out["quantization"] = quant_label(config)
        try:
            prov = self._download_small(candidate.id, PROVENANCE_FILE, None)
        except Exception:  # noqa: BLE001 - the provenance file is optional extra detail
            prov = None
        record = _small_json(prov, PROVENANCE_FILE) if prov else None
        versions = (record or {}).get("versions")
        if isinstance(versions, dict) and isinstance(versions.get("mlx_lm"), str):
            out["mlx_lm_version"] = versions["mlx_lm"]
        if out["mlx_lm_version"] is None:
            readme = self._download_small(candidate.id, "README.md", None)
            text = _small_text(readme) if readme else None
            if text:
                match = re.search(r"mlx-lm(?:\s+version)?\s*\**v?(\d+\.\d+(?:\.\d+)?)", text)
                if match:
                    out["mlx_lm_version"] = match.group(1)
        return out

    async def existing_conversions(self, repo_id: str, limit: int = 8) -> AsyncIterator[Notice | list[dict[str, Any]]]:
        """Yield Notices, then [{repo_id, quantization, bits, group_size, mode, mlx_lm_version, downloads}]."""
        repo_id = validate_repo_id(repo_id)
        try:
            candidates: list[Any] = []
            async for event in in_thread(self._conversion_candidates, repo_id, limit):
                if isinstance(event, Notice):
                    yield event
                else:
                    candidates = event.value
            described = await asyncio.gather(
                *(asyncio.to_thread(self._describe_conversion, c) for c in candidates), return_exceptions=True)
        except Exception as error:
            raise self.map_error(error, repo_id) from error
        yield [d for d in described if isinstance(d, dict)]


def _small_json(path: str | None, name: str) -> dict[str, Any] | None:
    """A downloaded JSON object file, bounded; None when unusable (an existing conversion is extra detail)."""
    try:
        return read_json_object(Path(path), name=name) if path else None
    except (OSError, BadFileError):
        return None


def _small_text(path: str | None) -> str | None:
    try:
        return read_text(Path(path)) if path else None
    except (OSError, BadFileError):
        return None


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
                async for event in in_thread(self._take, n or self.page_size):
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

"""Model loading and streamed generation on one dedicated MLX thread.

`ChatService` owns one long-lived thread (as `mlx_lm.server` does): the loaded model, its tokenizer and
its prompt cache live there and are only touched there. The async side starts jobs on that thread and
reads their events from a small channel that coalesces tokens, so the UI never waits on MLX and a slow
UI never slows generation down.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mlxtui.services import Context
from mlxtui.services.errors import (
    ChatError,
    GatedError,
    InvalidInputError,
    MlxtuiError,
    NotFoundError,
    OfflineError,
    UnsupportedModelError,
)
from mlxtui.services.events import ChatStats, LoadProgress, ModelLoaded, Notice, PromptRendered, TokenDelta

__all__ = [
    "ChatService",
    "SamplingSettings",
    "Message",
    "RenderedPrompt",
    "available_memory_bytes",
    "check_model_folder",
    "estimate_load_bytes",
    "sampling_defaults",
    "fold_system",
]

#: mlx-lm's own download patterns (utils.DEFAULT_ALLOW_PATTERNS), copied so this module stays import-light
_ALLOW_PATTERNS = ["*.json", "model*.safetensors", "*.py", "tokenizer.model", "*.tiktoken", "tiktoken.model", "*.txt", "*.jsonl", "*.jinja"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: share of the context at which the pane is told the conversation is getting long
CONTEXT_WARN_FRACTION = 0.8
#: sys.setswitchinterval while a reply is generated (Python's default is 0.005)
GENERATION_SWITCH_INTERVAL = 0.001
_DEFAULT_SWITCH_INTERVAL = sys.getswitchinterval()

Message = dict[str, str]  # {"role": "user" | "assistant" | "system", "content": str}


# --- sampling ------------------------------------------------------------------------------------


@dataclass
class SamplingSettings:
    """What mlx-lm's make_sampler / make_logits_processors get, plus max tokens and seed."""

    temperature: float = 0.0
    top_p: float = 1.0
    min_p: float = 0.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    max_tokens: int = 512
    seed: int | None = None

    def validate(self) -> SamplingSettings:
        """Raise InvalidInputError naming the first setting out of range; return self."""
        problems = []
        if not self.temperature >= 0:
            problems.append(f"temperature must be 0 or more (got {self.temperature})")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1] (got {self.top_p})")
        if not 0 <= self.min_p < 1:
            problems.append(f"min_p must be in [0, 1) (got {self.min_p})")
        if self.top_k < 0:
            problems.append(f"top_k must be 0 (off) or more (got {self.top_k})")
        if not self.repetition_penalty > 0:
            problems.append(f"repetition penalty must be above 0 (got {self.repetition_penalty})")
        if self.max_tokens < 1:
            problems.append(f"max tokens must be at least 1 (got {self.max_tokens})")
        if problems:
            raise InvalidInputError("Sampling settings: " + "; ".join(problems) + ".")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sampling_defaults(folder: Path, max_tokens: int = 512) -> SamplingSettings:
    """Defaults from the model's generation_config.json (greedy when it does not sample)."""
    settings = SamplingSettings(max_tokens=max_tokens)
    try:
        gen = json.loads((Path(folder) / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return settings
    if not isinstance(gen, dict):
        return settings
    if gen.get("do_sample") is False:
        return settings
    if gen.get("do_sample") or "temperature" in gen:
        settings.temperature = float(gen.get("temperature", 1.0))
    for key, attr, kind in [
        ("top_p", "top_p", float),
        ("min_p", "min_p", float),
        ("top_k", "top_k", int),
        ("repetition_penalty", "repetition_penalty", float),
    ]:
        if isinstance(gen.get(key), (int, float)):
            setattr(settings, attr, kind(gen[key]))
    if settings.top_k >= 50 and settings.temperature == 0:
        settings.top_k = 0  # transformers' default top_k=50 means nothing for greedy decoding
    return settings


# --- checks before loading ------------------------------------------------------------------------


def _safetensors_problem(path: Path) -> str | None:
    """Read a safetensors header and check its offsets against the file size (cheap: no weights read)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return "shorter than a safetensors header"
            (n,) = struct.unpack("<Q", head)
            if n > min(size - 8, 100_000_000):
                return "its header length is impossible (not a safetensors file?)"
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        return f"its header could not be read ({error.__class__.__name__})"
    if not isinstance(header, dict):
        return "its header is not a table of tensors"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)), default=0)
    if 8 + n + end != size:
        return f"it holds {size:,} bytes but its header describes {8 + n + end:,} (truncated or damaged)"
    return None


def check_model_folder(folder: Path) -> dict[str, Any]:
    """Check that `folder` is a model mlx-lm can load; return its config. Raises with a clear message."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFoundError(f"There is no folder at {folder}.")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise InvalidInputError(
            f"{folder} is not an MLX model folder: it has no config.json.",
            hint="Pick the folder a conversion wrote (it holds config.json and *.safetensors).",
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"{config_file} is not valid JSON ({error}).") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise InvalidInputError(f"{config_file} has no model_type, so mlx-lm cannot tell which architecture to build.")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        others = [p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".gguf", ".pth")]
        hint = f" It has {', '.join(others[:3])}: convert it to MLX first." if others else ""
        raise InvalidInputError(f"{folder} is not an MLX model folder: it has no *.safetensors weights.{hint}")
    for path in weights:
        problem = _safetensors_problem(path)
        if problem:
            raise InvalidInputError(
                f"{path.name} in {folder} is damaged: {problem}.", hint="Download or convert the model again."
            )
    return config


def _check_supported(config: dict[str, Any]) -> None:
    from mlx_lm.utils import _get_classes

    try:
        _get_classes(config)
    except ValueError:
        raise UnsupportedModelError(
            f"The installed mlx-lm does not support model_type {config.get('model_type')!r}.",
            hint="Upgrade mlx-lm (pip install -U mlx-lm) or pick another model.",
        ) from None


def estimate_load_bytes(folder: Path) -> int:
    """Memory a load needs: the weights as stored plus a tenth for activations and the KV cache."""
    weights = sum(p.stat().st_size for p in Path(folder).glob("*.safetensors"))
    return int(weights * 1.1) + 64 * 2**20


def available_memory_bytes() -> int | None:
    """Memory this machine can give a new model now (MemAvailable on Linux, physical memory elsewhere)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    """Bytes for people: 3.4 GB, 120 MB, 56 kB."""
    if n >= 1e8:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


# --- prompts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedPrompt:
    """A conversation rendered for the model: the exact text, its tokens and how it was made."""

    text: str
    tokens: list[int]
    system_folded: bool = False
    completion_mode: bool = False
    dropped_turns: int = 0


def fold_system(system: str, messages: Sequence[Message]) -> list[Message]:
    """Put the system text in front of the first user turn, for templates that refuse a system role."""
    out = [dict(m) for m in messages if m["role"] != "system"]
    for m in out:
        if m["role"] == "user":
            m["content"] = f"{system}\n\n{m['content']}"
            break
    return out


def _is_system_refusal(error: Exception) -> bool:
    return "system" in str(error).lower() and ("role" in str(error).lower() or "support" in str(error).lower())


def _progress_class(repo_id: str, emit: Callable[[Any], None]) -> type:
    """A tqdm for snapshot_download that draws nothing and reports the bytes received as LoadProgress."""
    from tqdm.auto import tqdm

    last = [0.0]

    class DownloadProgress(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.counts_bytes = kwargs.get("unit") == "B" and str(kwargs.get("desc", "")).startswith("Reconstruct")
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            self.n += n or 0
            now = time.monotonic()
            if self.counts_bytes and self.total and now - last[0] > 0.1:
                last[0] = now
                done = min(1.0, self.n / self.total)
                emit(LoadProgress(f"Downloading {repo_id}: {_gb(self.n)} of {_gb(self.total)}", 0.05 + 0.3 * done))
            return None

    return DownloadProgress


# --- thread to event loop -----------------------------------------------------------------------------

_DONE = object()


class _Channel:
    """Events from the MLX thread to the event loop: one wake-up per batch, never one call per token."""

    BATCH_HZ = 15

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[Any] = deque()
        self._wake = asyncio.Event()
        self._pending = False

    def put(self, item: Any) -> None:
        """Called on the MLX thread."""
        self._items.append(item)
        if not self._pending:
            self._pending = True
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:
                pass  # the loop is gone; nobody is listening

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Each batch merges consecutive text and keeps only the newest stats.

        Text comes at most BATCH_HZ times a second: the event loop wakes once per batch instead of once
        per token, which leaves the GIL and the CPU to the model. Until the first text has gone out there
        is no wait at all, so the prompt notice before prefill never holds back the first token.
        """
        last = 0.0
        while True:
            gap = 1 / self.BATCH_HZ - (time.monotonic() - last)
            if gap > 0:
                await asyncio.sleep(gap)
            await self._wake.wait()
            self._wake.clear()
            self._pending = False
            batch: list[Any] = []
            while self._items:
                item = self._items.popleft()
                if isinstance(item, TokenDelta) and batch and isinstance(batch[-1], TokenDelta):
                    batch[-1] = TokenDelta(batch[-1].text + item.text)
                elif isinstance(item, ChatStats) and batch and isinstance(batch[-1], ChatStats):
                    batch[-1] = item
                else:
                    batch.append(item)
            if any(isinstance(item, TokenDelta) for item in batch):
                last = time.monotonic()
            if batch:
                yield batch
            if batch and batch[-1] is _DONE:
                return


@dataclass
class _Loaded:
    """The loaded model and what the MLX thread keeps between turns (only touched on that thread)."""

    path: Path
    model: Any
    tokenizer: Any
    config: dict[str, Any]
    info: ModelLoaded
    cache: list[Any] | None = None
    cache_tokens: list[int] = field(default_factory=list)


# --- the service --------------------------------------------------------------------------------------


class ChatService:
    """Load one model and chat with it; all MLX work happens on one long-lived thread.

    `available_memory` (bytes) overrides what the machine reports, so the too-large refusal can be tested.
    """

    def __init__(self, ctx: Context | None = None, *, available_memory: int | None = None) -> None:
        self.ctx = ctx or Context()
        self.available_memory = available_memory
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlxtui-mlx")
        #: one stop flag per running job, so stopping a closed reply never leaks into the next one
        self._stops: set[threading.Event] = set()
        self._loaded: _Loaded | None = None

    # -- state the UI may read ---------------------------------------------------------------------

    @property
    def info(self) -> ModelLoaded | None:
        """What is loaded, or None."""
        return self._loaded.info if self._loaded else None

    @property
    def context_length(self) -> int | None:
        return self._loaded.info.context_length if self._loaded else None

    def stop(self) -> None:
        """Stop the running generation after the current token (safe from any thread)."""
        for flag in list(self._stops):
            flag.set()

    def close(self, wait: bool = True) -> None:
        """Stop generating, free the model and end the MLX thread (waits for it by default: exiting while
        MLX still works on that thread aborts the process)."""
        self.stop()
        try:
            self._executor.submit(self._unload)
        except RuntimeError:
            return  # already closed
        self._executor.shutdown(wait=wait)

    # -- running jobs on the MLX thread ----------------------------------------------------------------

    def _run(self, job: Callable[[Callable[[Any], None], threading.Event], None]) -> AsyncIterator[Any]:
        """Start `job(emit, stop)` on the MLX thread now; the iterator yields what it emits and re-raises
        its errors. Starting at the call (not at the first iteration) lets the model begin while the
        caller is still drawing."""
        loop = asyncio.get_running_loop()
        channel = _Channel(loop)
        stop = threading.Event()
        self._stops.add(stop)

        def runner() -> None:
            try:
                job(channel.put, stop)
            except BaseException as error:  # handed to the awaiting side
                channel.put(error)
            finally:
                channel.put(_DONE)

        self._executor.submit(runner)
        return self._drain(channel, stop)

    async def _drain(self, channel: _Channel, stop: threading.Event) -> AsyncIterator[Any]:
        try:
            async for batch in channel.batches():
                for item in batch:
                    if item is _DONE:
                        return
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            # Cancelled or closed early (Escape): the MLX thread stops at the next token.
            stop.set()
            self._stops.discard(stop)

    async def _call(self, fn: Callable[[], Any]) -> Any:
        """Run a plain function on the MLX thread and return its result."""
        return await asyncio.wrap_future(self._executor.submit(fn))

    # -- loading ----------------------------------------------------------------------------------------

    async def load(self, source: str) -> AsyncIterator[LoadProgress | ModelLoaded | Notice]:
        """Load a local MLX folder or a Hub repo id (downloaded through huggingface_hub from ctx.endpoint)."""
        source = source.strip()
        if not source:
            raise InvalidInputError("Give a model: a local MLX folder or a repo id such as mlx-community/Model-4bit.")
        folder = Path(source).expanduser()
        if not folder.exists():
            if not _REPO_ID.match(source):
                raise NotFoundError(f"There is no folder at {source}, and it is not a repo id (owner/name).")
            yield LoadProgress(f"Downloading {source} from {self.ctx.endpoint}", 0.05)
            got: list[Path] = []
            async for event in self._run(lambda emit, stop: got.append(self._download(source, emit))):
                yield event
            folder = got[0]
        yield LoadProgress("Checking the folder", 0.4)
        config = await asyncio.to_thread(check_model_folder, folder)
        need = estimate_load_bytes(folder)
        have = self.available_memory if self.available_memory is not None else available_memory_bytes()
        if have is not None and need > have:
            raise ChatError(
                f"{folder.name} needs about {_gb(need)} of memory to load and about {_gb(have)} is available.",
                hint="Pick a smaller or more quantized conversion (e.g. 4-bit), or close other programs.",
            )
        async for event in self._run(lambda emit, stop: self._load_on_thread(folder, config, source, emit)):
            yield event

    def _download(self, repo_id: str, emit: Callable[[Any], None] | None = None) -> Path:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

        try:
            return Path(
                snapshot_download(
                    repo_id,
                    endpoint=self.ctx.endpoint,
                    token=self.ctx.token,
                    allow_patterns=_ALLOW_PATTERNS,
                    tqdm_class=_progress_class(repo_id, emit) if emit else None,
                )
            )
        except GatedRepoError:
            raise GatedError(f"{repo_id} is gated: accept its terms on the Hub page first.") from None
        except RepositoryNotFoundError:
            raise NotFoundError(f"There is no repo {repo_id} on {self.ctx.endpoint} (or it is private).") from None
        except LocalEntryNotFoundError:
            raise OfflineError(f"Can't reach {self.ctx.endpoint} to download {repo_id}, and it is not in the cache.") from None
        except OSError as error:
            raise OfflineError(f"Downloading {repo_id} from {self.ctx.endpoint} failed: {error}") from None

    def _unload(self) -> None:
        if self._loaded is not None:
            self._loaded = None
            gc.collect()
            import mlx.core as mx

            mx.clear_cache()

    def _load_on_thread(self, folder: Path, config: dict[str, Any], source: str, emit: Callable[[Any], None]) -> None:
        emit(LoadProgress("Importing mlx-lm", 0.45))
        _check_supported(config)
        import mlx.core as mx
        from mlx_lm.utils import load

        self._unload()
        start = time.perf_counter()
        emit(LoadProgress("Reading weights", 0.5))
        try:
            model, tokenizer, config = load(str(folder), lazy=True, return_config=True)
            # Evaluate layer by layer: real progress, and a damaged tensor fails here rather than mid-reply.
            layers = list(getattr(model, "layers", []) or getattr(getattr(model, "model", None), "layers", []))
            for n, layer in enumerate(layers, 1):
                mx.eval(layer.parameters())
                emit(LoadProgress(f"Loading layer {n}/{len(layers)}", 0.5 + 0.45 * n / max(1, len(layers))))
            mx.eval(model.parameters())
        except MlxtuiError:
            raise
        except Exception as error:
            raise ChatError(f"mlx-lm could not load {folder}: {error}") from None
        weights_bytes = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
        text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
        context = config.get("max_position_embeddings") or text_config.get("max_position_embeddings")
        info = ModelLoaded(
            path=str(folder),
            name=source.rstrip("/").split("/")[-1] if not Path(source).exists() else folder.name,
            model_type=str(config.get("model_type")),
            context_length=int(context) if context else None,
            has_chat_template=getattr(tokenizer, "chat_template", None) is not None,
            weights_bytes=weights_bytes,
            load_s=time.perf_counter() - start,
            sampling=sampling_defaults(folder, self.ctx.settings.chat.max_tokens),
        )
        self._loaded = _Loaded(folder, model, tokenizer, config, info)
        if not info.has_chat_template:
            emit(Notice(f"{info.name} has no chat template: plain completion mode (your text is continued).", "warning"))
        emit(info)

    # -- prompts ----------------------------------------------------------------------------------------

    def _require(self) -> _Loaded:
        if self._loaded is None:
            raise ChatError("No model is loaded: load an MLX folder or repo id first.")
        return self._loaded

    def _render_on_thread(self, messages: Sequence[Message], system: str | None) -> RenderedPrompt:
        loaded = self._require()
        tok = loaded.tokenizer
        system = (system or "").strip()
        if getattr(tok, "chat_template", None) is None:
            # Plain completion: the texts follow each other; each user turn starts a new paragraph.
            parts = [system] if system else []
            text = "\n\n".join(parts)
            for m in messages:
                if m["role"] == "user":
                    text += ("\n\n" if text else "") + m["content"]
                elif m["role"] == "assistant":
                    text += m["content"]
            return RenderedPrompt(text, list(tok.encode(text)), completion_mode=True)
        full = ([{"role": "system", "content": system}] if system else []) + [dict(m) for m in messages]
        folded = False
        try:
            text = tok.apply_chat_template(full, add_generation_prompt=True, tokenize=False)
        except Exception as error:  # jinja2.TemplateError from the template's raise_exception
            if not (system and _is_system_refusal(error)):
                raise ChatError(f"The chat template failed: {error}") from None
            folded = True
            text = tok.apply_chat_template(fold_system(system, messages), add_generation_prompt=True, tokenize=False)
        tokens = list(tok.encode(text, add_special_tokens=False))
        return RenderedPrompt(text, tokens, system_folded=folded)

    def _fit_context(
        self, messages: Sequence[Message], system: str | None, max_tokens: int, emit: Callable[[Any], None]
    ) -> tuple[RenderedPrompt, int]:
        """Render, leaving out the oldest turns when prompt + reply would not fit the context."""
        loaded = self._require()
        limit = loaded.info.context_length
        rendered = self._render_on_thread(messages, system)
        if not limit:
            return rendered, max_tokens
        kept = list(messages)
        dropped = 0
        while len(rendered.tokens) + max_tokens > limit and sum(m["role"] == "user" for m in kept) > 1:
            # Drop the oldest user turn and the replies that follow it.
            first_user = next(i for i, m in enumerate(kept) if m["role"] == "user")
            nxt = next(i for i, m in enumerate(kept) if m["role"] == "user" and i > first_user)
            dropped += sum(m["role"] == "user" for m in kept[first_user:nxt])
            kept = kept[:first_user] + kept[nxt:]
            rendered = self._render_on_thread(kept, system)
        if dropped:
            emit(
                Notice(
                    f"The conversation no longer fits the model's {limit:,}-token context: the {dropped} oldest "
                    f"turn{'s' if dropped > 1 else ''} {'were' if dropped > 1 else 'was'} left out of the prompt "
                    "(still shown here and saved).",
                    "warning",
                )
            )
            rendered = replace(rendered, dropped_turns=dropped)
        room = limit - len(rendered.tokens)
        if room < 1:
            raise ChatError(
                f"The prompt is {len(rendered.tokens):,} tokens but the model's context is {limit:,} tokens.",
                hint="Shorten the message or start a new conversation.",
            )
        if room < max_tokens:
            emit(Notice(f"Only {room:,} tokens of context are left: the reply is capped at {room:,} tokens.", "warning"))
            max_tokens = room
        elif not dropped and len(rendered.tokens) + max_tokens > CONTEXT_WARN_FRACTION * limit:
            emit(
                Notice(
                    f"The conversation uses {len(rendered.tokens):,} of {limit:,} tokens of context; "
                    "the oldest turns will be left out when it is full.",
                    "warning",
                )
            )
        return rendered, max_tokens

    async def render_prompt(self, messages: Sequence[Message], system: str | None = None) -> RenderedPrompt:
        """The exact prompt the next reply would get (with the system fallback applied)."""
        return await self._call(lambda: self._render_on_thread(messages, system))

    # -- generation -------------------------------------------------------------------------------------

    def reply(
        self,
        messages: Sequence[Message],
        system: str | None = None,
        sampling: SamplingSettings | None = None,
    ) -> AsyncIterator[PromptRendered | TokenDelta | ChatStats | Notice]:
        """Stream the reply to `messages` (the last one is the user's new turn).

        Generation starts on this call (bad input raises here), so the model reads the prompt while the
        caller draws the user's message. Iterate the result: PromptRendered once, then TokenDelta and
        ChatStats (coalesced when the reader is slower than the model), and a final ChatStats with
        finish_reason. Closing the iterator (or `stop()`) stops generation.
        """
        if not messages or messages[-1]["role"] != "user":
            raise InvalidInputError("A reply needs a user message last.")
        if not messages[-1]["content"].strip():
            raise InvalidInputError("The message is empty: type something to send.")
        settings = (sampling or (self.info.sampling if self.info else SamplingSettings())).validate()  # type: ignore[union-attr]
        self._require()
        # While generating, other threads (the UI) hand the GIL back within 1 ms instead of 5: the MLX
        # thread needs it briefly between every two evaluations (and for the template) and should not
        # queue behind a redraw. Set here, before the thread starts, so that its start does not wait either.
        sys.setswitchinterval(min(_DEFAULT_SWITCH_INTERVAL, GENERATION_SWITCH_INTERVAL))

        def job(emit: Callable[[Any], None], stop: threading.Event) -> None:
            try:
                self._generate_on_thread(list(messages), system, settings, emit, stop)
            finally:
                sys.setswitchinterval(_DEFAULT_SWITCH_INTERVAL)

        return self._run(job)

    def _generate_on_thread(
        self,
        messages: list[Message],
        system: str | None,
        settings: SamplingSettings,
        emit: Callable[[Any], None],
        stop: threading.Event,
    ) -> None:
        import mlx.core as mx
        from mlx_lm.generate import stream_generate
        from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache
        from mlx_lm.sample_utils import make_logits_processors, make_sampler

        loaded = self._require()
        rendered, max_tokens = self._fit_context(messages, system, settings.max_tokens, emit)
        tokens = rendered.tokens
        if not tokens:
            raise InvalidInputError("The prompt rendered to no tokens.")

        # Reuse the cache for the longest shared prefix; at least one token must be processed anew.
        cached = 0
        if loaded.cache is not None and can_trim_prompt_cache(loaded.cache):
            while cached < min(len(loaded.cache_tokens), len(tokens)) and loaded.cache_tokens[cached] == tokens[cached]:
                cached += 1
            cached = min(cached, len(tokens) - 1)
            trim_prompt_cache(loaded.cache, len(loaded.cache_tokens) - cached)
        else:
            loaded.cache = make_prompt_cache(loaded.model)
        loaded.cache_tokens = tokens[:cached]
        emit(PromptRendered(rendered.text, len(tokens) - cached, cached, rendered.system_folded, rendered.completion_mode))

        sampler = make_sampler(settings.temperature, settings.top_p, settings.min_p, top_k=settings.top_k)
        processors = make_logits_processors(
            repetition_penalty=settings.repetition_penalty if settings.repetition_penalty != 1.0 else None
        )
        if settings.seed is not None:
            mx.random.seed(settings.seed)
        mx.reset_peak_memory()

        generated: list[int] = []
        start = time.perf_counter()
        ttft = 0.0
        stats = ChatStats(prompt_tokens=len(tokens) - cached, cached_tokens=cached)
        finish: str | None = None
        try:
            for response in stream_generate(
                loaded.model,
                loaded.tokenizer,
                mx.array(tokens[cached:]),
                max_tokens=max_tokens,
                sampler=sampler,
                logits_processors=processors,
                prompt_cache=loaded.cache,
            ):
                if not generated:
                    ttft = time.perf_counter() - start
                generated.append(response.token)
                if response.text:
                    emit(TokenDelta(response.text))
                finish = response.finish_reason
                stats = ChatStats(
                    prompt_tokens=response.prompt_tokens,
                    cached_tokens=cached,
                    prompt_tps=response.prompt_tps,
                    generation_tokens=response.generation_tokens,
                    generation_tps=response.generation_tps,
                    ttft_s=ttft,
                    peak_memory_gb=response.peak_memory,
                    elapsed_s=time.perf_counter() - start,
                )
                if stop.is_set() and finish is None:
                    finish = "cancelled"
                    break
                emit(stats)
        finally:
            # The cache now holds the prompt and every token fed back; keep our token list in step with it.
            held = tokens + generated
            offset = getattr(loaded.cache[0], "offset", None) if loaded.cache else None
            if isinstance(offset, int) and offset <= len(held):
                loaded.cache_tokens = held[:offset]
            else:
                loaded.cache, loaded.cache_tokens = None, []
        emit(replace(stats, finish_reason=finish or "stop", elapsed_s=time.perf_counter() - start))

"""Model loading and streamed generation on one dedicated MLX thread.

`ChatService` owns one long-lived thread (as `mlx_lm.server` does): the loaded model, its tokenizer and
its prompt cache live there and are only touched there. The async side starts jobs on that thread and
reads their events from a small channel that coalesces tokens (`chat_channel`), so the UI never waits on
MLX and a slow UI never slows generation down. `close()` stops and joins that thread: a process that
exits while MLX still runs on it aborts ("terminate called without an active exception").
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlxtui.format import printable
from mlxtui.services import Context, gen_mode
from mlxtui.services.chat_channel import DONE, HANDOVER_WAIT_S, Channel
from mlxtui.services.chat_folder import (
    available_memory_bytes,
    check_memory,
    check_model_folder,
    check_supported,
    download_model,
    estimate_load_bytes,
    model_name,
)
from mlxtui.services.chat_sampling import SamplingSettings, rate_or_none, sampling_defaults
from mlxtui.services.errors import CancelledByUser, ChatError, InvalidInputError, MlxtuiError, NotFoundError
from mlxtui.services.events import ChatStats, LoadProgress, ModelLoaded, Notice, PromptRendered, TokenDelta
from mlxtui.services.modelfolder import RANDOM_WEIGHTS_NOTE, is_repo_id, text_config

__all__ = [
    "ChatService",
    "SamplingSettings",
    "Message",
    "RenderedPrompt",
    "available_memory_bytes",
    "check_model_folder",
    "estimate_load_bytes",
    "sampling_defaults",
    "rate_or_none",
    "fold_system",
]

#: share of the context at which the pane is told the conversation is getting long
CONTEXT_WARN_FRACTION = 0.8
#: the longest error text from mlx-lm or transformers shown to a person (the rest goes to the log)
_MAX_ERROR_CHARS = 300

Message = dict[str, str]  # {"role": "user" | "assistant" | "system", "content": str}


def _one_line(error: BaseException) -> str:
    """An exception from mlx-lm / transformers as one short, terminal-safe line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    text = printable(text, newlines=False)
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


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
    `logits_processors` are added to every reply's own (mlx-lm's `(tokens, logits) -> logits` callables, run
    on the MLX thread): tests and benchmarks use them to steer or pace a real model's output.
    """

    def __init__(
        self,
        ctx: Context | None = None,
        *,
        available_memory: int | None = None,
        logits_processors: Sequence[Callable[[Any, Any], Any]] = (),
    ) -> None:
        self.ctx = ctx or Context()
        self.available_memory = available_memory
        self.logits_processors = list(logits_processors)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlxtui-mlx")
        #: one stop flag per running job, so stopping a closed reply never leaks into the next one
        self._stops: set[threading.Event] = set()
        self._loaded: _Loaded | None = None
        self._closed = False

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
        """Stop generating or loading, free the model and end the MLX thread (waits for it by default:
        exiting while MLX still works on that thread aborts the process). Safe to call twice."""
        self._closed = True  # jobs still queued end at once instead of running
        self.stop()
        try:
            self._executor.submit(self._end_thread)
        except RuntimeError:
            pass  # already closed; still wait below if asked
        self._executor.shutdown(wait=wait)

    def _end_thread(self) -> None:
        """The MLX thread's last job: free the model, then destroy the MLX streams this thread made.

        mlx-lm generates on a thread-local stream; if its thread ends with that stream alive, the process
        aborts at exit about half the time ("terminate called without an active exception", exit 134).
        """
        self._unload()
        if "mlx.core" in sys.modules:
            import mlx.core as mx

            mx.synchronize()
            mx.clear_streams()

    # -- running jobs on the MLX thread ----------------------------------------------------------------

    def _run(
        self, job: Callable[[Callable[[Any], None], threading.Event], None], *, generating: bool = False
    ) -> AsyncIterator[Any]:
        """Start `job(emit, stop)` on the MLX thread now; the iterator yields what it emits and re-raises
        its errors. Starting at the call (not at the first iteration) lets the model begin while the
        caller is still drawing. A `generating` job runs in `gen_mode` (begun before the thread starts,
        so that its start does not wait for the GIL either)."""
        loop = asyncio.get_running_loop()
        channel = Channel(loop)
        stop = threading.Event()
        self._stops.add(stop)
        started = threading.Event()

        def runner() -> None:
            started.set()
            try:
                if self._closed:
                    raise ChatError("The chat service has been closed.")
                job(channel.put, stop)
            except BaseException as error:  # handed to the awaiting side
                channel.put(error)
            finally:
                if generating:
                    gen_mode.end()
                channel.put(DONE)

        if generating:
            gen_mode.begin()
        try:
            self._executor.submit(runner)
        except RuntimeError:
            self._stops.discard(stop)
            if generating:
                gen_mode.end()
            raise ChatError("The chat service has been closed.") from None
        if generating:
            # Hand the core over: left to the OS, the thread just woken was queued behind this busy event
            # loop on the same core (Linux's wake affinity) for about 2 ms of the time to first token. A
            # thread still busy with another job is waited for HANDOVER_WAIT_S at most.
            started.wait(HANDOVER_WAIT_S)
        return self._drain(channel, stop)

    async def _drain(self, channel: Channel, stop: threading.Event) -> AsyncIterator[Any]:
        try:
            async for batch in channel.batches():
                for item in batch:
                    if item is DONE:
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
        """Load a local MLX folder or a Hub repo id (downloaded through huggingface_hub from ctx.endpoint).

        Closing the iterator (Esc) stops a download at its next chunk and a load at its next layer; the
        model loaded before stays loaded until the new one is read.
        """
        source = source.strip()
        if not source:
            raise InvalidInputError("Give a model: a local MLX folder or a repo id such as mlx-community/Model-4bit.")
        folder = Path(source).expanduser()
        if not folder.exists():
            if not is_repo_id(source):
                raise NotFoundError(
                    f"There is no folder at {printable(source, newlines=False)}, and it is not a repo id (owner/name)."
                )
            yield LoadProgress(f"Downloading {source} from {self.ctx.endpoint}", 0.05)
            async with aclosing(download_model(self.ctx, source)) as downloading:  # closed at once on Esc
                async for event in downloading:
                    if isinstance(event, Path):
                        folder = event
                    else:
                        yield event
        yield LoadProgress("Checking the folder", 0.4)
        config = await asyncio.to_thread(check_model_folder, folder)
        check_memory(folder, self.available_memory)
        name = model_name(source, folder)
        async for event in self._run(lambda emit, stop: self._load_on_thread(folder, config, name, emit, stop)):
            yield event

    def _unload(self) -> None:
        if self._loaded is not None:
            self._loaded = None
            gc.collect()
            import mlx.core as mx

            mx.clear_cache()

    def _load_on_thread(
        self, folder: Path, config: dict[str, Any], name: str, emit: Callable[[Any], None], stop: threading.Event
    ) -> None:
        emit(LoadProgress("Importing mlx-lm", 0.45))
        check_supported(config)
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
                if stop.is_set():
                    raise CancelledByUser(f"Loading {name} was cancelled.")
                mx.eval(layer.parameters())
                emit(LoadProgress(f"Loading layer {n}/{len(layers)}", 0.5 + 0.45 * n / max(1, len(layers))))
            mx.eval(model.parameters())
        except MlxtuiError:
            raise
        except Exception as error:  # a broken tokenizer.json, one that needs remote code, a damaged tensor
            raise ChatError(f"mlx-lm could not load {name}: {_one_line(error)}") from None
        weights_bytes = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
        context = config.get("max_position_embeddings") or text_config(config).get("max_position_embeddings")
        info = ModelLoaded(
            path=str(folder),
            name=name,
            model_type=printable(config.get("model_type"), newlines=False),
            context_length=context if isinstance(context, int) and not isinstance(context, bool) and context > 0 else None,
            has_chat_template=getattr(tokenizer, "chat_template", None) is not None,
            weights_bytes=weights_bytes,
            load_s=time.perf_counter() - start,
            sampling=sampling_defaults(folder, self.ctx.settings.chat.max_tokens),
        )
        self._loaded = _Loaded(folder, model, tokenizer, config, info)
        if not info.has_chat_template:
            emit(Notice(f"{info.name} has no chat template: plain completion mode (your text is continued).", "warning"))
        if _random_weights(folder):  # a demo model: said once it loaded, before its first reply
            emit(Notice(RANDOM_WEIGHTS_NOTE, "warning"))
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
        self._require()
        settings = (sampling or self.info.sampling or SamplingSettings()).validate()  # type: ignore[union-attr]
        # While generating, the UI hands the GIL back within 0.2 ms and no full collection walks the whole
        # process (gen_mode.py).
        return self._run(
            lambda emit, stop: self._generate_on_thread(list(messages), system, settings, emit, stop), generating=True
        )

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
        ) + self.logits_processors
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


def _random_weights(folder: Path) -> bool:
    """The folder's card tags it as a demo model with random weights (modelfolder.RANDOM_WEIGHTS_TAG)."""
    from mlxtui.services.card_frontmatter import card_data
    from mlxtui.services.modelfolder import CARD_FILE, has_random_weights, read_text

    try:
        return has_random_weights(card_data(read_text(folder / CARD_FILE)).get("tags"))
    except (OSError, MlxtuiError):
        return False

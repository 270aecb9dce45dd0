"""Chat with a model served elsewhere through an OpenAI-compatible endpoint (e.g. `mlx_lm.server`).

Replies stream over SSE with httpx; the token rates are measured here, on the client, since such
servers send no timing fields.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from mlxtui.services.chat import Message, SamplingSettings, fold_system
from mlxtui.services.errors import ChatError, InvalidInputError, OfflineError
from mlxtui.services.events import ChatStats, Notice, PromptRendered, TokenDelta

__all__ = ["OpenAIChatService", "is_endpoint_url"]


def is_endpoint_url(text: str) -> bool:
    """True for http(s) URLs, which the chat pane treats as OpenAI-compatible endpoints."""
    return text.strip().lower().startswith(("http://", "https://"))


def _chat_url(base_url: str) -> str:
    base = base_url.strip().rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


class OpenAIChatService:
    """Stream chat completions from `base_url`; `model` is sent when given (mlx_lm.server serves its default)."""

    def __init__(
        self, base_url: str, *, model: str | None = None, api_key: str | None = None, connect_timeout: float = 5.0
    ) -> None:
        self.base_url = base_url.strip().rstrip("/")
        self.url = _chat_url(base_url)
        self.model = model
        self.api_key = api_key
        self.connect_timeout = connect_timeout
        self._stopped = False

    def stop(self) -> None:
        """Stop the running reply at the next chunk."""
        self._stopped = True

    def _body(self, messages: list[Message], sampling: SamplingSettings) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        # Extensions mlx_lm.server (and llama.cpp, vLLM) understand; sent only when not neutral.
        if sampling.top_k:
            body["top_k"] = sampling.top_k
        if sampling.min_p:
            body["min_p"] = sampling.min_p
        if sampling.repetition_penalty != 1.0:
            body["repetition_penalty"] = sampling.repetition_penalty
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if self.model:
            body["model"] = self.model
        return body

    async def reply(
        self,
        messages: Sequence[Message],
        system: str | None = None,
        sampling: SamplingSettings | None = None,
    ) -> AsyncIterator[PromptRendered | TokenDelta | ChatStats | Notice]:
        """Stream the reply; the same events as ChatService.reply (PromptRendered shows the JSON messages sent)."""
        import httpx

        if not messages or messages[-1]["role"] != "user" or not messages[-1]["content"].strip():
            raise InvalidInputError("The message is empty: type something to send.")
        sampling = (sampling or SamplingSettings()).validate()
        self._stopped = False
        system = (system or "").strip()
        sent = ([{"role": "system", "content": system}] if system else []) + [dict(m) for m in messages]
        folded = streaming = False
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        timeout = httpx.Timeout(connect=self.connect_timeout, read=300.0, write=30.0, pool=5.0)
        async with httpx.AsyncClient(timeout=timeout, headers=headers) as client:
            for attempt in (1, 2):
                start = time.perf_counter()
                try:
                    async with client.stream("POST", self.url, json=self._body(sent, sampling)) as response:
                        if response.status_code >= 400:
                            message = _error_message(await response.aread(), response.status_code)
                            if attempt == 1 and system and "system role" in message.lower():
                                # The template refused the system turn: fold it into the first user turn and retry.
                                sent, folded = fold_system(system, messages), True
                                yield Notice("This model's template does not support a system role: the system "
                                             "prompt was put in front of your first message.", "warning")
                                continue
                            raise ChatError(f"{self.base_url} answered {response.status_code}: {message}")
                        streaming = True
                        yield PromptRendered(json.dumps(sent, indent=2, ensure_ascii=False), 0, 0, folded)
                        async for event in self._read(response, start):
                            yield event
                        return
                except httpx.ConnectError as error:
                    raise OfflineError(
                        f"Can't reach the OpenAI-compatible endpoint {self.base_url} ({error}).",
                        hint="Is the server running? For example: mlx_lm.server --model PATH --port 8080.",
                    ) from None
                except httpx.TimeoutException:
                    raise OfflineError(f"{self.base_url} did not answer in time.") from None
                except httpx.HTTPError as error:
                    if streaming:  # e.g. RemoteProtocolError or ReadError: the server went away mid-reply
                        raise ChatError(f"The connection to {self.base_url} broke during the reply ({error}); "
                                        "the server may have stopped. The text so far is kept.") from None
                    raise ChatError(f"The connection to {self.base_url} failed: {error}") from None

    async def _read(self, response: Any, start: float) -> AsyncIterator[TokenDelta | ChatStats]:
        first = last = 0.0
        chunks = 0
        usage: dict[str, Any] = {}
        finish: str | None = None

        def stats(finish_reason: str | None = None) -> ChatStats:
            tokens = int(usage.get("completion_tokens") or chunks)
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            ttft = (first - start) if chunks else 0.0
            span = last - first
            return ChatStats(
                prompt_tokens=prompt_tokens,
                cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
                prompt_tps=prompt_tokens / ttft if prompt_tokens and ttft > 0 else 0.0,
                generation_tokens=tokens,
                generation_tps=(tokens - 1) / span if tokens > 1 and span > 0 else 0.0,
                ttft_s=ttft,
                elapsed_s=time.perf_counter() - start,
                finish_reason=finish_reason,
            )

        done = False
        async for line in response.aiter_lines():
            if self._stopped:
                finish = "cancelled"
                break
            if not line.startswith("data:"):
                continue  # blank separators and ": keepalive" comments
            payload = line[5:].strip()
            if payload == "[DONE]":
                done = True
                break
            try:
                data = json.loads(payload)
            except ValueError:
                continue
            if data.get("usage"):
                usage = data["usage"]
            for choice in data.get("choices") or []:
                text = (choice.get("delta") or {}).get("content") or ""
                if text:
                    now = time.perf_counter()
                    if not chunks:
                        first = now
                    last = now
                    chunks += 1
                    yield TokenDelta(text)
                    yield stats()
                finish = choice.get("finish_reason") or finish
        if finish is None and not done and self._stopped:
            finish = "cancelled"  # stopped by the user just as the stream ended
        elif finish is None and not done:
            # A server that dies mid-reply (a cluster rank killed, mlx_lm.server's generation failing) just
            # closes the stream: without this the cut-off text would pass for a finished reply.
            raise ChatError(f"The reply from {self.base_url} ended before the server finished it (no finish "
                            "reason, no [DONE]); the server may have stopped. The text so far is kept.")
        yield stats(finish or "stop")


def _error_message(raw: bytes, status: int) -> str:
    """The server's own words: {"error": "..."} or {"error": {"message": "..."}}, else the body's start."""
    try:
        data = json.loads(raw)
        error = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)
    except ValueError:
        return raw.decode("utf-8", "replace")[:200] or f"HTTP {status}"

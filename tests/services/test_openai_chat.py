"""OpenAIChatService against a real mlx_lm.server on 127.0.0.1 serving a tiny converted model, and against a
scripted server for the ways a stream can end badly."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager

import pytest

from mlxtui.services.chat import ChatService, SamplingSettings
from mlxtui.services.errors import ChatError, InvalidInputError, OfflineError
from mlxtui.services.events import ChatStats, Notice, PromptRendered, TokenDelta
from mlxtui.services.openai_chat import OpenAIChatService, is_endpoint_url


async def collect(service, messages, system=None, **sampling):
    events = [e async for e in service.reply(messages, system, SamplingSettings(**{"max_tokens": 16, **sampling}))]
    return "".join(e.text for e in events if isinstance(e, TokenDelta)), events


async def test_streams_the_reply_with_client_side_rates(mlx_server, chat_models):
    messages = [{"role": "user", "content": "Tell me about the river."}]
    text, events = await collect(OpenAIChatService(mlx_server), messages)
    stats = [e for e in events if isinstance(e, ChatStats)]
    final = stats[-1]
    assert final.finish_reason in ("length", "stop")
    assert final.generation_tokens == (16 if final.finish_reason == "length" else final.generation_tokens)
    assert final.ttft_s > 0 and final.generation_tps > 0 and final.prompt_tokens > 0
    assert sum(isinstance(e, TokenDelta) for e in events) > 1  # streamed, not one block

    # The same greedy reply as the in-process service gives on the same model.
    local = ChatService()
    [e async for e in local.load(str(chat_models["danube"]))]
    expected, _ = await collect(local, messages)
    local.close()
    assert text == expected


async def test_system_role_refusal_is_folded_and_retried(mlx_server):
    text, events = await collect(OpenAIChatService(mlx_server + "/v1"), [{"role": "user", "content": "Hi"}], system="Be brief.")
    assert any(isinstance(e, Notice) and "system role" in e.text for e in events)
    rendered = next(e for e in events if isinstance(e, PromptRendered))
    assert rendered.system_folded and "Be brief.\\n\\nHi" in rendered.text
    assert text


async def test_stop_ends_the_stream(mlx_server):
    service = OpenAIChatService(mlx_server)
    events = []
    async with aclosing(service.reply([{"role": "user", "content": "Go on"}], None, SamplingSettings(max_tokens=2000))) as stream:
        async for event in stream:
            events.append(event)
            if isinstance(event, TokenDelta):
                service.stop()
    final = events[-1]
    assert isinstance(final, ChatStats) and final.finish_reason == "cancelled" and final.generation_tokens < 50


async def test_unreachable_endpoint_is_a_clear_offline_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens here
    with pytest.raises(OfflineError, match=f"Can't reach the OpenAI-compatible endpoint http://127.0.0.1:{port}.*server running"):
        await collect(OpenAIChatService(f"http://127.0.0.1:{port}"), [{"role": "user", "content": "hi"}])


async def test_http_errors_carry_the_servers_message(mlx_server):
    with pytest.raises(ChatError, match="answered 404"):
        await collect(OpenAIChatService(mlx_server + "/v1/chat/completions/nope"), [{"role": "user", "content": "hi"}])


async def test_empty_prompt_is_refused():
    with pytest.raises(InvalidInputError, match="empty"):
        await collect(OpenAIChatService("http://127.0.0.1:9"), [{"role": "user", "content": " "}])


def test_endpoint_urls_are_recognised():
    assert is_endpoint_url("http://127.0.0.1:8080") and is_endpoint_url("HTTPS://x/v1")
    assert not is_endpoint_url("/models/x") and not is_endpoint_url("mlx-community/x")


# --- streams that end badly, from a scripted server ---------------------------------------------------------


def sse(text: str = "", finish: str | None = None) -> bytes:
    """One SSE event as mlx_lm.server sends it."""
    chunk = {"choices": [{"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


@asynccontextmanager
async def scripted_server(head: bytes, body: bytes) -> AsyncIterator[str]:
    """A one-shot HTTP server on 127.0.0.1: reads the request, writes `head` and `body`, then closes the
    connection, whatever the headers promised. Yields its base URL."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in headers.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        writer.write(head + b"\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


#: a streamed reply whose end is the connection closing (as mlx_lm.server does: no length, no chunking)
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n"


async def events_until_error(url: str) -> tuple[list[object], BaseException | None]:
    events: list[object] = []
    try:
        async for event in OpenAIChatService(url).reply([{"role": "user", "content": "hi"}], None, SamplingSettings()):
            events.append(event)
    except ChatError as error:
        return events, error
    return events, None


async def test_a_stream_that_stops_without_finish_reason_or_done_is_an_error_after_its_text():
    async with scripted_server(SSE_HEAD, sse("The sea ") + sse("is wide")) as url:
        events, error = await events_until_error(url)
    assert isinstance(error, ChatError)
    assert str(error).startswith(f"The reply from {url} ended before the server finished it (no finish reason, no [DONE])")
    assert [e.text for e in events if isinstance(e, TokenDelta)] == ["The sea ", "is wide"]
    assert not any(isinstance(e, ChatStats) and e.finish_reason for e in events)  # never reported as finished


async def test_a_finish_reason_without_done_is_a_finished_reply():
    async with scripted_server(SSE_HEAD, sse("The sea") + sse(finish="length")) as url:
        events, error = await events_until_error(url)
    assert error is None
    assert [e.text for e in events if isinstance(e, TokenDelta)] == ["The sea"]
    assert isinstance(events[-1], ChatStats) and events[-1].finish_reason == "length"


async def test_done_without_finish_reason_is_a_finished_reply():
    async with scripted_server(SSE_HEAD, sse("The sea") + b"data: [DONE]\n\n") as url:
        events, error = await events_until_error(url)
    assert error is None and isinstance(events[-1], ChatStats) and events[-1].finish_reason == "stop"


async def test_a_connection_dropped_mid_chunk_is_an_error_after_the_text_so_far():
    first = sse("The sea ")
    # Chunked encoding: one whole chunk, then a chunk that promises 100 bytes and the connection closes.
    body = b"%x\r\n%s\r\n" % (len(first), first) + b"64\r\ndata: {\"choi"
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
    async with scripted_server(head, body) as url:
        events, error = await events_until_error(url)
    assert isinstance(error, ChatError)
    assert str(error).startswith(f"The connection to {url} broke during the reply")
    assert [e.text for e in events if isinstance(e, TokenDelta)] == ["The sea "]

"""OpenAIChatService against a real mlx_lm.server on 127.0.0.1 serving a tiny converted model."""

from __future__ import annotations

import socket
from contextlib import aclosing

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

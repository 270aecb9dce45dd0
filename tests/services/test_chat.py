"""ChatService against tiny generated models really converted by mlx_lm.convert (no mocks of mlx-lm)."""

from __future__ import annotations

import json
import re
import shutil
import threading
from contextlib import aclosing
from pathlib import Path

import pytest

from mlxtui.services import Context
from mlxtui.services.chat import ChatService, SamplingSettings, sampling_defaults
from mlxtui.services.errors import ChatError, InvalidInputError, NotFoundError, UnsupportedModelError
from mlxtui.services.events import ChatStats, LoadProgress, ModelLoaded, Notice, PromptRendered, TokenDelta


# --- real models steered by logits processors (ChatService(logits_processors=...)) --------------------


class Gate:
    """Lets `free` tokens through, then holds the model (on its own thread) until the test calls `open()`.

    A reply that must still be running when a test looks is made so by this, on any machine speed.
    """

    def __init__(self, free: int = 8) -> None:
        self.free, self.count = free, 0
        self.opened, self.holding = threading.Event(), threading.Event()

    def __call__(self, tokens, logits):
        self.count += 1
        if self.count > self.free and not self.opened.is_set():
            self.holding.set()
            self.opened.wait(60)  # never forever: a failed test must still end
        return logits

    def open(self) -> None:
        self.opened.set()


class Scripted:
    """Makes a model with a byte-fallback tokenizer (danube's) write exactly the given replies, in order,
    one byte token each, then end-of-sequence; after the last script it writes freely. `hold` (a Gate)
    holds reply `hold_reply` after its gate's free tokens."""

    def __init__(self, folder: Path, replies: list[str], *, gate: Gate | None = None, gate_reply: int = 0) -> None:
        vocab = json.loads((Path(folder) / "tokenizer.json").read_text())["model"]["vocab"]
        config = json.loads((Path(folder) / "config.json").read_text())
        eos = config["eos_token_id"]
        self.scripts = [[vocab[f"<0x{b:02X}>"] for b in text.encode()] + [eos] for text in replies]
        self.replies, self.index, self.pos, self.last_len = replies, -1, 0, None
        self.gate, self.gate_reply = gate, gate_reply

    def __call__(self, tokens, logits):
        import mlx.core as mx

        prev = self.last_len
        if prev is None or tokens.size != prev.size + 1 or not mx.array_equal(tokens[:-1], prev).item():
            self.index, self.pos = self.index + 1, 0  # a new reply: its prompt, not one more token
        self.last_len = tokens
        if self.gate is not None and self.index == self.gate_reply:
            self.gate(tokens, logits)
        if self.index >= len(self.scripts):
            return logits
        script = self.scripts[self.index]
        target = script[min(self.pos, len(script) - 1)]
        self.pos += 1
        return mx.where(mx.arange(logits.shape[-1]) == target, 0.0, -float("inf"))[None]


EVERY_CONTROL = "".join(map(chr, [*range(32), 127]))


async def loaded(path: Path, **kwargs) -> tuple[ChatService, list]:
    service = ChatService(**kwargs)
    events = [e async for e in service.load(str(path))]
    return service, events


async def turn(service: ChatService, messages, system=None, **sampling) -> tuple[str, list]:
    settings = SamplingSettings(**{"max_tokens": 24, **sampling})
    events = [e async for e in service.reply(messages, system, settings)]
    return "".join(e.text for e in events if isinstance(e, TokenDelta)), events


def final_stats(events) -> ChatStats:
    stats = [e for e in events if isinstance(e, ChatStats)]
    assert stats[-1].finish_reason is not None
    return stats[-1]


async def test_load_reports_progress_and_what_was_loaded(chat_models):
    service, events = await loaded(chat_models["llama"])
    progress = [e.fraction for e in events if isinstance(e, LoadProgress)]
    assert progress == sorted(progress) and len(progress) >= 3  # layer by layer
    info = events[-1]
    assert isinstance(info, ModelLoaded)
    assert info.model_type == "llama" and info.has_chat_template and info.context_length == 8192
    # The Llama-3 demo model's generation_config.json samples at 0.6 / top_p 0.9.
    assert (info.sampling.temperature, info.sampling.top_p) == (0.6, 0.9)
    service.close()


def test_sampling_defaults_greedy_without_generation_config(tmp_path):
    assert sampling_defaults(tmp_path, 77) == SamplingSettings(max_tokens=77)


async def test_reply_streams_the_same_text_as_mlx_lm(chat_models):
    from mlx_lm import load, stream_generate

    service, _ = await loaded(chat_models["llama"])
    messages = [{"role": "user", "content": "Tell me about the river."}]
    text, events = await turn(service, messages, temperature=0.0)
    rendered = next(e for e in events if isinstance(e, PromptRendered))
    stats = final_stats(events)
    assert stats.generation_tokens > 0 and stats.generation_tps > 0 and stats.ttft_s > 0 and stats.peak_memory_gb > 0
    assert sum(isinstance(e, TokenDelta) for e in events) >= 1

    model, tokenizer = load(str(chat_models["llama"]))
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt == rendered.text
    expected = "".join(r.text for r in stream_generate(model, tokenizer, tokenizer.encode(prompt, add_special_tokens=False), max_tokens=24))
    assert text == expected
    service.close()


async def test_system_prompt_folded_when_the_template_refuses_it(chat_models):
    service, _ = await loaded(chat_models["danube"])
    text, events = await turn(service, [{"role": "user", "content": "Hi there"}], system="Answer in French.")
    rendered = next(e for e in events if isinstance(e, PromptRendered))
    assert rendered.system_folded
    assert rendered.text == "<|prompt|>Answer in French.\n\nHi there</s><|answer|>"
    assert final_stats(events).finish_reason in ("stop", "length")
    service.close()


async def test_system_prompt_kept_when_the_template_supports_it(chat_models):
    service, _ = await loaded(chat_models["llama"])
    rendered = await service.render_prompt([{"role": "user", "content": "Hi"}], "Be brief.")
    assert not rendered.system_folded
    assert "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" in rendered.text
    service.close()


async def test_later_turns_reuse_the_prompt_cache(chat_models):
    service, _ = await loaded(chat_models["danube"])
    messages = [{"role": "user", "content": "Tell me a long story about a green river and the old mill. " * 6}]
    history_lengths = []
    for n in range(3):
        reply, events = await turn(service, messages, max_tokens=8)
        rendered = next(e for e in events if isinstance(e, PromptRendered))
        full = rendered.prompt_tokens + rendered.cached_tokens
        if n:
            # Everything up to the previous turn's prompt is reused; only the last reply and the new question are processed.
            assert rendered.cached_tokens >= history_lengths[-1]
            assert final_stats(events).prompt_tokens == rendered.prompt_tokens
            assert rendered.prompt_tokens < full / 3
        history_lengths.append(full)
        messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": f"And then what happened, part {n}?"}]
    service.close()


async def test_stop_ends_generation_at_once_and_keeps_the_partial_reply(chat_models):
    service, _ = await loaded(chat_models["plain"])
    messages = [{"role": "user", "content": "Once upon a time"}]
    received = ""
    events = []
    async with aclosing(service.reply(messages, None, SamplingSettings(max_tokens=3000))) as stream:
        async for event in stream:
            events.append(event)
            if isinstance(event, TokenDelta):
                received += event.text
                if len(received) > 20:
                    service.stop()
    stats = final_stats(events)
    assert stats.finish_reason == "cancelled"
    assert stats.generation_tokens < 100
    assert received
    # The service is ready for the next turn right away.
    text, events = await turn(service, messages + [{"role": "assistant", "content": received}, {"role": "user", "content": "more"}])
    assert final_stats(events).finish_reason in ("stop", "length")
    service.close()


async def test_closing_the_stream_early_stops_the_thread(chat_models):
    service, _ = await loaded(chat_models["plain"])
    async with aclosing(service.reply([{"role": "user", "content": "The sea"}], None, SamplingSettings(max_tokens=5000))) as stream:
        async for event in stream:
            if isinstance(event, TokenDelta):
                break
    # Were the thread still generating 5000 tokens, this would queue behind it for seconds.
    import time

    start = time.perf_counter()
    _, events = await turn(service, [{"role": "user", "content": "The sky"}], max_tokens=4)
    assert final_stats(events).generation_tokens <= 4
    assert time.perf_counter() - start < 2.5
    service.close()


async def test_seed_makes_sampling_repeatable(chat_models):
    service, _ = await loaded(chat_models["llama"])
    messages = [{"role": "user", "content": "Say something."}]
    first, _ = await turn(service, messages, temperature=1.0, top_p=0.95, top_k=40, min_p=0.05, repetition_penalty=1.1, seed=7)
    second, _ = await turn(service, messages, temperature=1.0, top_p=0.95, top_k=40, min_p=0.05, repetition_penalty=1.1, seed=7)
    assert first == second
    service.close()


async def test_no_chat_template_means_plain_completion(chat_models):
    service, events = await loaded(chat_models["plain"])
    assert any(isinstance(e, Notice) and "completion" in e.text for e in events)
    _, events = await turn(service, [{"role": "user", "content": "The river"}], system="Notes:")
    rendered = next(e for e in events if isinstance(e, PromptRendered))
    assert rendered.completion_mode and rendered.text == "Notes:\n\nThe river"
    service.close()


async def test_full_context_drops_the_oldest_turns_with_a_notice(chat_models):
    service, events = await loaded(chat_models["short"])
    assert events[-1].context_length == 192
    long = "the green river runs past the old mill " * 4
    messages = []
    notices = []
    for n in range(6):
        messages.append({"role": "user", "content": f"{n}: {long}"})
        reply, events = await turn(service, messages, max_tokens=16)
        notices += [e.text for e in events if isinstance(e, Notice)]
        messages.append({"role": "assistant", "content": reply})
    assert any("of 192 tokens of context" in t for t in notices)  # announced before it is full
    assert any("oldest turn" in t and "left out" in t for t in notices)
    rendered = await service.render_prompt(messages[-1:])
    assert rendered.tokens
    service.close()


async def test_a_prompt_longer_than_the_context_is_refused(chat_models):
    service, _ = await loaded(chat_models["short"])
    with pytest.raises(ChatError, match="context is 192 tokens"):
        await turn(service, [{"role": "user", "content": "river mill " * 300}])
    service.close()


# --- bad input ----------------------------------------------------------------------------------------


async def test_empty_prompt_is_refused(chat_models):
    service, _ = await loaded(chat_models["danube"])
    with pytest.raises(InvalidInputError, match="empty"):
        await turn(service, [{"role": "user", "content": "   "}])
    service.close()


async def test_folder_that_is_not_an_mlx_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInputError, match="not an MLX model folder: it has no config.json"):
        await loaded(tmp_path)


async def test_folder_with_pytorch_weights_only(tmp_path, chat_models):
    shutil.copy(chat_models["danube"] / "config.json", tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"\0" * 64)
    with pytest.raises(InvalidInputError, match="no \\*.safetensors weights.*pytorch_model.bin: convert it"):
        await loaded(tmp_path)


async def test_missing_path_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="no folder"):
        await loaded(tmp_path / "nowhere")


async def test_corrupt_safetensors(tmp_path, chat_models):
    folder = tmp_path / "damaged"
    shutil.copytree(chat_models["danube"], folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(InvalidInputError, match="model.safetensors .* is damaged.*truncated"):
        await loaded(folder)


async def test_unsupported_model_type(unsupported_model):
    with pytest.raises(UnsupportedModelError, match="model_type 'fancynet'"):
        await loaded(unsupported_model)


async def test_model_too_large_for_memory_is_refused_with_the_estimate(chat_models):
    with pytest.raises(ChatError, match=r"needs about [\d.]+ MB of memory to load and about 1.0 MB is available"):
        await loaded(chat_models["danube"], available_memory=1_000_000)


async def test_reply_before_loading(chat_models):
    with pytest.raises(ChatError, match="No model is loaded"):
        await turn(ChatService(), [{"role": "user", "content": "hi"}])


async def test_bad_sampling_settings(chat_models):
    service, _ = await loaded(chat_models["danube"])
    with pytest.raises(InvalidInputError, match="top_p"):
        await turn(service, [{"role": "user", "content": "hi"}], top_p=0.0)
    service.close()


# --- repo ids through the demo Hub ------------------------------------------------------------------


async def test_load_a_repo_id_from_the_hub_and_chat(ctx):
    service = ChatService(ctx)
    events = [e async for e in service.load("mlx-community/h2o-danube2-tiny-chat-4bit")]
    assert isinstance(events[0], LoadProgress) and "Downloading" in events[0].stage
    assert any(isinstance(e, LoadProgress) and re.search(r"[\d.]+ [kM]B of [\d.]+ [kM]B", e.stage) for e in events)  # bytes
    info = events[-1]
    assert isinstance(info, ModelLoaded) and info.name == "mlx-community/h2o-danube2-tiny-chat-4bit" and info.model_type == "mistral"
    text, events = await turn(service, [{"role": "user", "content": "Hi"}], system="Be brief.", max_tokens=4)
    assert next(e for e in events if isinstance(e, PromptRendered)).system_folded
    service.close()


async def test_unknown_and_gated_repos(ctx):
    from mlxtui.services.errors import GatedError

    with pytest.raises(NotFoundError, match="mlx-community/nope was not found"):
        await loaded("mlx-community/nope", ctx=ctx)
    with pytest.raises(GatedError, match="gated"):
        await loaded("meta-llama/Llama-3.2-tiny-Instruct", ctx=ctx)


async def test_unreachable_hub_for_a_repo_id():
    from mlxtui.services import Context
    from mlxtui.services.errors import OfflineError

    with pytest.raises(OfflineError, match="Can't reach|failed"):
        await loaded("someone/model", ctx=Context(endpoint="http://127.0.0.1:9"))


# --- output that is not plain text ---------------------------------------------------------------------


async def test_a_model_can_emit_every_control_byte_and_the_reply_keeps_it_exactly(chat_models):
    script = Scripted(chat_models["danube"], [f"a{EVERY_CONTROL}b"])
    service, _ = await loaded(chat_models["danube"], logits_processors=[script])
    text, events = await turn(service, [{"role": "user", "content": "Hi"}], max_tokens=64)
    assert text == f"a{EVERY_CONTROL}b" and final_stats(events).finish_reason == "stop"
    service.close()


async def test_a_gated_reply_waits_for_the_test_and_stops_when_told(chat_models):
    gate = Gate(free=5)
    service, _ = await loaded(chat_models["plain"], logits_processors=[gate])
    received = []
    async with aclosing(service.reply([{"role": "user", "content": "Once"}], None, SamplingSettings(max_tokens=3000))) as stream:
        async for event in stream:
            received.append(event)
            if gate.holding.is_set() and not gate.opened.is_set():
                service.stop()
                gate.open()
    stats = final_stats(received)
    assert stats.finish_reason == "cancelled" and stats.generation_tokens <= 8
    service.close()


async def test_reply_hands_the_mlx_thread_its_job_before_returning_and_never_waits_long(chat_models):
    """reply() returns once the MLX thread has taken the job: left to the OS, the just-woken thread was
    queued behind the busy event loop on the same core for about 2 ms of the time to first token. A thread
    still busy with another job is waited for HANDOVER_WAIT_S at most."""
    import time

    from mlxtui.services.chat import HANDOVER_WAIT_S

    service, _ = await loaded(chat_models["plain"])
    messages = [{"role": "user", "content": "Once"}]
    for _ in range(5):
        stream = service.reply(messages, None, SamplingSettings(max_tokens=2))
        assert service._executor._work_queue.empty(), "the job was still queued when reply() returned"
        async with aclosing(stream):
            assert "".join([e.text async for e in stream if isinstance(e, TokenDelta)])

    release = threading.Event()
    busy = service._run(lambda emit, stop: release.wait(30))  # the thread is busy with something else
    start = time.perf_counter()
    stream = service.reply(messages, None, SamplingSettings(max_tokens=2))
    waited = time.perf_counter() - start
    release.set()
    assert HANDOVER_WAIT_S < 0.05 and waited < 1.0  # bounded: not until the other job is done
    async with aclosing(busy):
        assert [e async for e in busy] == []
    async with aclosing(stream):
        assert final_stats([e async for e in stream]).generation_tokens == 2
    service.close()


@pytest.mark.parametrize("bad", [
    {"temperature": -1.0}, {"top_p": 2.0}, {"top_p": 0.0}, {"seed": -1}, {"seed": 2**64}, {"max_tokens": 0},
    {"temperature": float("nan")}, {"top_k": -3}, {"min_p": 1.0}, {"repetition_penalty": float("inf")},
])
def test_sampling_values_out_of_range_are_named(bad):
    with pytest.raises(InvalidInputError, match="Sampling settings: .*" + next(iter(bad)).split("_")[0]):
        SamplingSettings(**bad).validate()


def test_generation_config_with_odd_values_gives_neutral_defaults(tmp_path):
    (tmp_path / "generation_config.json").write_text('{"do_sample": true, "temperature": -3, "top_p": "x", "top_k": 1e400}')
    assert sampling_defaults(tmp_path, 9).validate().max_tokens == 9


async def test_a_broken_tokenizer_is_one_line(tmp_path, chat_models):
    folder = tmp_path / "broken-tok"
    shutil.copytree(chat_models["danube"], folder)
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {')
    with pytest.raises(ChatError, match="mlx-lm could not load broken-tok: ") as caught:
        await loaded(folder)
    assert "\n" not in str(caught.value)


async def test_a_model_in_the_hf_cache_is_named_by_its_repo_id(tmp_path, chat_models):
    snapshot = tmp_path / "hub" / "models--someone--tiny-chat" / "snapshots" / ("a286fa01" * 5)
    shutil.copytree(chat_models["danube"], snapshot)
    service, events = await loaded(snapshot)
    assert events[-1].name == "someone/tiny-chat"
    service.close()


async def test_esc_during_a_download_stops_it(fresh_hub, ctx):
    fresh_hub.faults.slow(10.0, 1, path_prefix="/api/models/mlx-community/h2o-danube2-tiny-chat-4bit")
    service = ChatService(Context(endpoint=fresh_hub.url, token=ctx.token))
    events = service.load("mlx-community/h2o-danube2-tiny-chat-4bit")
    assert "Downloading" in (await anext(events)).stage
    import time

    start = time.perf_counter()
    await events.aclose()  # what a cancelled worker does
    service.close()
    assert time.perf_counter() - start < 5  # not the 10 s the Hub takes to answer

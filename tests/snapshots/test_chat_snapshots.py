"""Snapshots of the Chat pane at 80x24 and 120x36: empty, a reopened conversation, and a reply fed as
events (fixed figures; no model, timings, ports or temp paths reach the screen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from mlxtui.services import Context
from mlxtui.services.conversations import Conversation, ConversationStore
from mlxtui.services.events import ChatStats, PromptRendered, TokenDelta
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.chat import ChatPane

SIZES = [(80, 24), (120, 36)]
REPLY = (
    "Here is a short plan:\n\n"
    "1. Convert the model to **4-bit**.\n"
    "2. Chat with it and watch the *tokens per second*.\n\n"
    "```bash\nmlxtui chat ~/models/h2o-danube2-tiny-chat-4bit --prompt Hi\n```\n\n"
    "That is all."
)
STATS = ChatStats(
    prompt_tokens=24, cached_tokens=0, prompt_tps=812.5, generation_tokens=41, generation_tps=96.4,
    ttft_s=0.031, peak_memory_gb=0.042, elapsed_s=0.46, finish_reason="stop",
)


class FixedReplies:
    """Stands in for ChatService: the events a real reply yields, with fixed text and figures."""

    async def reply(self, messages, system=None, sampling=None):
        yield PromptRendered("<|prompt|>Be brief.\n\nHow do I start?</s><|answer|>", 24, 0, system_folded=True)
        for word in REPLY.split(" "):
            yield TokenDelta(word + " ")
        yield STATS

    def stop(self) -> None:
        pass


async def settle(pilot) -> None:
    app = pilot.app
    for _ in range(200):  # panes other than the first mount right after the first frame
        if app.query(ChatPane):
            break
        await pilot.pause(0.01)
    app.action_show_pane("chat")
    await pilot.pause()


async def finish(pilot) -> None:
    app = pilot.app
    await app.workers.wait_for_complete()
    await pilot.pause()
    for widget in app.query(Input):
        widget.cursor_blink = False
        widget.cursor_position = len(widget.value)
    for area in app.query(TextArea):
        area.cursor_blink = False
    app.clear_notifications()
    await pilot.pause()


def make_app(tmp_path: Path) -> MlxtuiApp:
    return MlxtuiApp(Context(endpoint="http://127.0.0.1:9"), probe=False, settings_path=tmp_path / "config.toml")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_chat_empty(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await finish(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_chat_streamed_reply_with_system_fold(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        pane = pilot.app.query_one(ChatPane)
        pane.service = FixedReplies()  # type: ignore[assignment]
        pane.context_length = 4096
        pane._status("h2o-danube2-tiny-chat-4bit · mistral · ctx 4,096 · chat template")
        pane.query_one("#chat-model", Input).value = "mlx-community/h2o-danube2-tiny-chat-4bit"
        pane.query_one("#chat-system", TextArea).text = "Be brief."
        assert pane.send("How do I start?")
        await finish(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_chat_reopened_conversation(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    conv = Conversation(
        id="20250101-120000-abcdef",
        model="/models/h2o-danube2-tiny-chat-4bit",
        system="Answer in one line.",
        messages=[
            {"role": "user", "content": "What is MLX?"},
            {"role": "assistant", "content": "An array framework for Apple silicon.", "stats": {**STATS.__dict__, "generation_tps": 80.0}},
            {"role": "user", "content": "And mlx-lm?"},
            {"role": "assistant", "content": REPLY, "stats": dict(STATS.__dict__)},
        ],
        sampling={"temperature": 0.7, "top_p": 0.9, "min_p": 0.0, "top_k": 40, "repetition_penalty": 1.1, "max_tokens": 256, "seed": 7},
        created_at="2025-01-01T12:00:00+00:00",
    )

    async def run_before(pilot) -> None:
        ConversationStore().save(conv)
        await settle(pilot)
        pilot.app.query_one(ChatPane).open_conversation(conv.id)
        await finish(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=run_before)

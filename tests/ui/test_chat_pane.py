"""The chat pane through the pilot, with the real ChatService on tiny converted models."""

from __future__ import annotations

import asyncio
import json

from textual.widgets import Input, Markdown, Sparkline, Static

from mlxtui import paths
from mlxtui.services import Context
from mlxtui.services.conversations import Conversation, ConversationStore
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.chat import FOLD_NOTICE, ChatPane, PromptScreen, Reply


def make_app() -> MlxtuiApp:
    return MlxtuiApp(Context(), probe=False)


def notices(app) -> list[str]:
    return [n.message for n in app._notifications]


def footer_descriptions(app) -> list[str]:
    from textual.widgets._footer import FooterKey

    return [key.description for key in app.query(FooterKey)]


def log_texts(pane: ChatPane, cls: str) -> list[str]:
    return [str(w.render()) for w in pane.query(f"#chat-log > .{cls}")]


async def show_chat(pilot) -> ChatPane:
    """Switch to Chat once it has mounted (panes after the first mount right after the first frame)."""
    while not pilot.app.query(ChatPane):
        await pilot.pause(0.01)
    pilot.app.action_show_pane("chat")
    await pilot.pause()
    return pilot.app.query_one(ChatPane)


async def load(pilot, pane: ChatPane, path) -> None:
    pane.open_model(str(path))
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def loaded_chat(pilot, path, max_tokens: int) -> ChatPane:
    """Chat shown, the model at `path` loaded, replies capped at `max_tokens`."""
    pane = await show_chat(pilot)
    await load(pilot, pane, path)
    pane.query_one("#chat-set-max_tokens", Input).value = str(max_tokens)
    return pane


async def test_load_send_and_stream_a_reply(chat_models):
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await show_chat(pilot)
        await load(pilot, pane, chat_models["llama"])
        assert "Llama-3-tiny-Instruct-f32 · llama · ctx 8,192 · chat template" in str(pane.query_one("#chat-status", Static).render())
        # Defaults from generation_config.json fill the panel.
        assert pane.query_one("#chat-set-temperature", Input).value == "0.6"
        assert app.focused is pane.query_one("#chat-prompt", Input)
        pane.query_one("#chat-set-max_tokens", Input).value = "12"
        await pilot.press(*"Hello", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert log_texts(pane, "user") == ["Hello"]
        reply = pane.query_one("#chat-log > .reply", Reply)
        message = pane.conversation.messages[-1]
        assert message["role"] == "assistant" and message["stats"]["generation_tokens"] <= 12
        assert reply.text == message["content"]
        # Saved under the data dir after the turn; the readout and its sparkline show the turn.
        saved = json.loads((paths.chats_dir() / f"{pane.conversation.id}.json").read_text())
        assert saved["messages"][-1]["content"] == message["content"]
        assert len(pane.query_one(Sparkline).data) == 1
        figures = pane.query_one("#rate-figures").text
        assert "tok/s" in figures
        # The readout says the reply is over and why: at most 12 tokens were asked for.
        ending = "max tokens reached" if message["stats"]["finish_reason"] == "length" else "✓ done"
        assert ending in figures


async def test_ui_stays_responsive_while_generating_and_escape_stops(chat_models):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["plain"], 100000)
        pane.context_length = None
        assert pane.send("Once upon a time")
        while not (replies := pane.query("#chat-log > .reply")) or not replies.first(Reply).text:
            await pilot.pause(0.01)
        # Typing, scrolling and switching panes all work while the model writes.
        await pilot.press(*"abc")
        assert pane.query_one("#chat-prompt", Input).value == "abc"
        await pilot.press("pageup")
        app.action_show_pane("search")
        await pilot.pause()
        app.action_show_pane("chat")
        await pilot.pause()
        assert app.focused is pane.query_one("#chat-prompt", Input)  # back where you were typing
        assert pane.generating
        assert "done" not in pane.query_one("#rate-figures").text  # no ending while it streams
        # "Reading your message…" was only for the prompt; once text streams, the box says what Esc does,
        # and so does the footer.
        assert pane.query_one("#chat-prompt", Input).placeholder == "Message — Enter sends, Esc stops"
        await pilot.pause(0.1)
        assert "Stop" in footer_descriptions(app)
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not pane.generating
        assert "Stop" not in footer_descriptions(app)
        message = pane.conversation.messages[-1]
        assert message["stats"]["finish_reason"] == "cancelled"
        assert 0 < message["stats"]["generation_tokens"] < 4000
        reply = pane.query_one("#chat-log > .reply", Reply)
        assert reply.text == message["content"] != ""
        assert "stopped" in pane.query_one("#rate-figures").text


async def test_system_fold_is_announced_once_and_the_prompt_can_be_shown(chat_models):
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await show_chat(pilot)
        await load(pilot, pane, chat_models["danube"])
        pane.query_one("#chat-system", Input).value = "Answer in French."
        pane.query_one("#chat-set-max_tokens", Input).value = "6"
        for text in ("Bonjour", "Encore"):
            assert pane.send(text)
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert log_texts(pane, "notice").count(FOLD_NOTICE) == 1
        await pilot.press("ctrl+r")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PromptScreen)
        assert screen.text.startswith("<|prompt|>Answer in French.\n\nBonjour</s><|answer|>")
        assert screen.text.endswith("<|prompt|>Encore</s><|answer|>")
        assert "reused from the cache" in screen.title_text and "system folded" in screen.title_text
        await pilot.press("escape")
        assert not isinstance(app.screen, PromptScreen)


async def test_no_template_model_says_completion_mode(chat_models):
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await show_chat(pilot)
        await load(pilot, pane, chat_models["plain"])
        assert any("plain completion mode" in t for t in log_texts(pane, "notice"))
        assert "completion mode" in str(pane.query_one("#chat-status", Static).render())


async def test_bad_folder_empty_message_and_bad_settings_are_explained(tmp_path, chat_models):
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await show_chat(pilot)
        await load(pilot, pane, tmp_path)
        assert any("not an MLX model folder" in n for n in notices(app))
        assert "load failed" in str(pane.query_one("#chat-status", Static).render())
        assert not pane.send("hi")  # nothing loaded
        await load(pilot, pane, chat_models["danube"])
        assert not pane.send("   ")
        await pilot.pause()
        assert any("message is empty" in n for n in notices(app))
        pane.query_one("#chat-set-top_p", Input).value = "0"
        assert not pane.send("hi")
        await pilot.pause()
        assert any("top_p must be in (0, 1]" in n for n in notices(app))
        assert log_texts(pane, "user") == []


async def test_reopen_and_export_a_saved_conversation(chat_models):
    conv = Conversation(
        model=str(chat_models["danube"]),
        system="Be brief.",
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello **there**", "stats": {"generation_tokens": 3, "generation_tps": 50.0, "ttft_s": 0.01}},
        ],
        sampling={"temperature": 0.3, "max_tokens": 20},
    )
    ConversationStore().save(conv)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await show_chat(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert pane.conversation.id == conv.id
        assert log_texts(pane, "user") == ["Hi"]
        assert pane.query_one("#chat-log > .reply", Reply).text == "Hello **there**"
        assert pane.query_one("#chat-system", Input).value == "Be brief."
        assert pane.query_one("#chat-set-temperature", Input).value == "0.3"
        assert pane.query_one("#chat-model", Input).value == str(chat_models["danube"])
        await pilot.press("ctrl+s")
        exported = paths.chats_dir() / f"{conv.id}.md"
        assert "## Assistant\n\nHello **there**" in exported.read_text()
        # Continue the reopened conversation with its model.
        await load(pilot, pane, chat_models["danube"])
        pane.query_one("#chat-set-max_tokens", Input).value = "4"
        assert pane.send("More")
        await app.workers.wait_for_complete()
        assert [m["role"] for m in pane.conversation.messages] == ["user", "assistant", "user", "assistant"]


async def test_chat_through_an_openai_compatible_endpoint(mlx_server):
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await show_chat(pilot)
        await load(pilot, pane, mlx_server)
        assert f"endpoint {mlx_server}" in str(pane.query_one("#chat-status", Static).render())
        pane.query_one("#chat-set-max_tokens", Input).value = "8"
        assert pane.send("Hello")
        await app.workers.wait_for_complete()
        await pilot.pause()
        message = pane.conversation.messages[-1]
        assert message["content"] and message["stats"]["generation_tokens"] > 0 and message["stats"]["ttft_s"] > 0
        assert pane.query_one("#chat-log > .reply", Reply).text == message["content"]


async def test_a_long_reply_keeps_a_constant_number_of_widgets():
    from textual.app import App
    from textual.containers import VerticalScroll

    from mlxtui.ui.panes.chat import FrozenMarkdown

    class Host(App):
        def compose(self):
            yield VerticalScroll(id="log")

    paragraph = "The river runs past the old mill, and the wheel turns. " * 6
    text = "".join(f"{paragraph}\n\n- a point\n- another\n\n```python\nx = {n}\n```\n\n" for n in range(60))
    app = Host()
    async with app.run_test(size=(100, 30)) as pilot:
        saved = Reply.FLUSH_HZ, Reply.CPU_BUDGET
        Reply.FLUSH_HZ, Reply.CPU_BUDGET = 1e9, float("inf")  # flush on every write
        try:
            reply = Reply()
            await app.query_one("#log").mount(reply)
            for n in range(0, len(text), 7):
                await reply.write(text[n : n + 7])
                assert len(reply.children) <= 2  # the frozen lines and one live Markdown, however long
        finally:
            Reply.FLUSH_HZ, Reply.CPU_BUDGET = saved
        await reply.stop()
        await pilot.pause()
        assert reply.text == text
        frozen = reply.query_one(FrozenMarkdown)
        assert len(frozen.pieces) > 10 and "".join(frozen.pieces) == text
        assert list(reply.children) == [frozen]


async def test_new_conversation_during_a_reply_keeps_the_partial_reply_with_the_old_one(chat_models):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["plain"], 100000)
        assert pane.send("Once upon a time")
        old = pane.conversation
        while not (replies := pane.query("#chat-log > .reply")) or not replies.first(Reply).text:
            await pilot.pause(0.01)
        await pilot.press("ctrl+n")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert pane.conversation is not old and pane.conversation.messages == []
        assert [m["role"] for m in old.messages] == ["user", "assistant"]
        assert old.messages[-1]["stats"]["finish_reason"] == "cancelled"
        saved = json.loads((paths.chats_dir() / f"{old.id}.json").read_text())
        assert saved["messages"][-1]["content"] == old.messages[-1]["content"] != ""
        assert not pane.query("#chat-log > .reply")


async def test_new_conversation_before_the_first_token_leaves_the_new_log_empty(chat_models):
    # The turn is drawn with the first token; a ctrl+n before that must not draw it into the new chat.
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["plain"], 50)
        assert pane.send("Once upon a time")
        old = pane.conversation
        assert not pane.query("#chat-log > .user")  # not drawn yet: the model is reading the prompt
        assert pane.query_one("#chat-prompt", Input).placeholder.startswith("Reading your message")
        await pilot.press("ctrl+n")
        await app.workers.wait_for_complete()
        await pilot.pause(0.4)  # past the draw delay
        assert pane.conversation is not old and pane.conversation.messages == []
        assert not pane.query("#chat-log > .user") and not pane.query("#chat-log > .reply")
        assert old.messages[0] == {"role": "user", "content": "Once upon a time"}
        assert not pane.generating


async def test_new_conversation_right_at_the_first_token_always_ends_the_turn(chat_models):
    # ctrl+n while the first text is being drawn (the reply half-mounted, a flush in flight): the old
    # turn must still end ("generating" off, saved) and the new log stay empty. Repeated: it is a race.
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["plain"], 40)
        for attempt in range(4):
            assert pane.send("Once upon a time"), attempt
            old = pane.conversation
            while pane.first_text_s is None:
                await asyncio.sleep(0)
            pane.action_new_conversation()
            await app.workers.wait_for_complete()
            await pilot.pause(0.3)
            assert not pane.generating, attempt
            assert not pane.query("#chat-log > .user") and not pane.query("#chat-log > .reply"), attempt
            assert [m["role"] for m in old.messages] == ["user", "assistant"], (attempt, old.messages)

"""The chat pane through the pilot, with the real ChatService on tiny converted models."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

from textual.widgets import Input, Sparkline, Static, TextArea

from mlxtui import paths
from mlxtui.format import printable
from mlxtui.services import Context
from mlxtui.services.chat import ChatService
from mlxtui.services.chat_sampling import rate_or_none
from mlxtui.services.conversations import Conversation, ConversationStore
from mlxtui.ui.app import MlxtuiApp
from mlxtui.ui.panes.chat import FOLD_NOTICE, ChatPane, PromptScreen, Reply
from mlxtui.ui.widgets.chat_reply import ReplyMarkdown
from mlxtui.ui.widgets.rate import RateReadout
from tests.services.test_chat import EVERY_CONTROL, Gate, Scripted


def make_app() -> MlxtuiApp:
    return MlxtuiApp(Context(), probe=False)


def notices(app) -> list[str]:
    return [n.message for n in app._notifications]


def footer_descriptions(app) -> list[str]:
    from mlxtui.ui.widgets.keybar import KeyBar

    keybar = app.query_one(KeyBar)
    keybar.render()  # the keys as they would be drawn now
    return [key.description for key in keybar.keys]


def log_texts(pane: ChatPane, cls: str) -> list[str]:
    return [str(w.render()) for w in drawn(pane, cls)]


def drawn(pane: ChatPane, cls: str) -> list:
    """The log's `.cls` widgets on screen (the turn kept ahead is there too, hidden)."""
    return [w for w in pane.query(f"#chat-log > .{cls}") if w.display]


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


async def loaded_chat(pilot, path, max_tokens: int, processors=()) -> ChatPane:
    """Chat shown, the model at `path` loaded (steered by `processors`), replies capped at `max_tokens`."""
    pane = await show_chat(pilot)
    if processors:
        pane.local = ChatService(pilot.app.ctx, logits_processors=list(processors))
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
        # The sparkline holds the turn's rate only when 12 tokens took long enough for it to mean something.
        stats = message["stats"]
        honest = rate_or_none(stats["generation_tokens"], stats["generation_tps"])
        assert pane.query_one(Sparkline).data == ([honest] if honest else [])
        figures = pane.query_one("#rate-figures").text
        assert "tok/s" in figures and (f"{honest:8.1f}" in figures if honest else "—" in figures)
        # The readout says the reply is over and why: at most 12 tokens were asked for.
        ending = "max tokens reached" if message["stats"]["finish_reason"] == "length" else "✓ done"
        assert ending in figures


async def test_ui_stays_responsive_while_generating_and_escape_stops(chat_models):
    gate = Gate(free=12)  # the reply is held after 12 tokens until the test has looked: any machine speed
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["plain"], 3000, [gate])
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
        # The box's cursor rests while the reply streams (a blink is a screen update the model pays for).
        assert pane.query_one("#chat-prompt", Input).cursor_blink is False
        await pilot.pause(0.1)
        assert "Stop" in footer_descriptions(app)
        await pilot.press("escape")
        gate.open()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not pane.generating
        assert "Stop" not in footer_descriptions(app)
        message = pane.conversation.messages[-1]
        assert message["stats"]["finish_reason"] == "cancelled"
        assert 0 < message["stats"]["generation_tokens"] <= 14
        reply = pane.query_one("#chat-log > .reply", Reply)
        assert reply.text == message["content"] != ""
        assert "stopped" in pane.query_one("#rate-figures").text
        assert pane.query_one("#chat-prompt", Input).cursor_blink is True  # blinks again once the reply is saved


async def test_system_fold_is_announced_once_and_the_prompt_can_be_shown(chat_models):
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        pane = await show_chat(pilot)
        await load(pilot, pane, chat_models["danube"])
        pane.query_one("#chat-system", TextArea).text = "Answer in French."
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
        assert pane.query_one("#chat-system", TextArea).text == "Be brief."
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
            body = reply.query_one(ReplyMarkdown)
            for n in range(0, len(text), 7):
                await reply.write(text[n : n + 7])
                # one widget of lines however long, and a live part (drawn again at each flush) that stays
                # short: finished at a paragraph break once over Reply.SOFT
                assert list(reply.children) == [body]
                assert len(body.live) < Reply.SOFT + len(paragraph) + 40
                assert body.text + body.live == text[: n + 7]
        finally:
            Reply.FLUSH_HZ, Reply.CPU_BUDGET = saved
        await reply.stop()
        await pilot.pause()
        assert reply.text == text
        frozen = reply.query_one(ReplyMarkdown)
        assert len(frozen.pieces) > 10 and "".join(frozen.pieces) == text
        assert list(reply.children) == [frozen]


async def test_what_the_event_loop_did_before_a_replys_first_text_does_not_hold_back_its_second() -> None:
    """A reply is mounted ahead of its turn; the CPU the event loop spent before its first text (a model
    loading) is not what drawing it costs. Counted, the second flush came a whole second after the first."""
    from textual.app import App
    from textual.containers import VerticalScroll

    class Host(App):
        def compose(self):
            yield VerticalScroll(id="log")

    app = Host()
    async with app.run_test(size=(60, 12)) as pilot:
        reply = Reply()
        await app.query_one("#log").mount(reply)
        busy = time.thread_time()
        while time.thread_time() - busy < 0.3:  # the event loop at work (a model loading) before the first token
            pass
        await reply.write("Once")
        assert reply.first_shown is not None
        await asyncio.sleep(1.5 / Reply.FLUSH_HZ)
        assert reply.flush_due()  # the next text is drawn at the usual rate, not a second later
        await reply.write(" upon a time")
        await reply.stop()
        await pilot.pause()
        assert reply.shown.strip() == "Once upon a time"


async def test_new_conversation_during_a_reply_keeps_the_partial_reply_with_the_old_one(chat_models):
    gate = Gate(free=6)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["plain"], 3000, [gate])
        assert pane.send("Once upon a time")
        old = pane.conversation
        while not (replies := pane.query("#chat-log > .reply")) or not replies.first(Reply).text:
            await pilot.pause(0.01)
        await pilot.press("ctrl+n")
        gate.open()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert pane.conversation is not old and pane.conversation.messages == []
        assert [m["role"] for m in old.messages] == ["user", "assistant"]
        assert old.messages[-1]["stats"]["finish_reason"] == "cancelled"
        saved = json.loads((paths.chats_dir() / f"{old.id}.json").read_text())
        assert saved["messages"][-1]["content"] == old.messages[-1]["content"] != ""
        assert not drawn(pane, "reply")


async def test_new_conversation_before_the_first_token_leaves_the_new_log_empty(chat_models):
    # The turn is drawn with the first token; a ctrl+n before that must not draw it into the new chat.
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["plain"], 50)
        box = pane.query_one("#chat-prompt", Input)
        box.value = "Once upon a time"
        assert pane.send(box.value)
        old = pane.conversation
        # Nothing drawn yet, the box included: the model is reading the prompt.
        assert not drawn(pane, "user") and box.value == "Once upon a time"
        await pilot.press("ctrl+n")
        await app.workers.wait_for_complete()
        await pilot.pause(0.4)  # past the draw delay
        assert pane.conversation is not old and pane.conversation.messages == []
        assert not drawn(pane, "user") and not drawn(pane, "reply")
        assert old.messages[0] == {"role": "user", "content": "Once upon a time"}
        assert not pane.generating
        assert box.value == ""  # the sent message left the box all the same


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
            assert not drawn(pane, "user") and not drawn(pane, "reply"), attempt
            assert [m["role"] for m in old.messages] == ["user", "assistant"], (attempt, old.messages)


# --- issue 13: every reply kept, shown completely and safely --------------------------------------------


def saved(conv: Conversation) -> list[tuple[str, str]]:
    data = json.loads((paths.chats_dir() / f"{conv.id}.json").read_text())
    return [(m["role"], m["content"]) for m in data["messages"]]


def assert_shown_whole(reply: Reply, text: str) -> None:
    """The log holds the reply's text, terminal-safe, and lays it out (no lines left undrawn)."""
    body = reply.query_one(ReplyMarkdown)
    assert reply.text == text
    assert reply.shown == printable(text)
    assert "".join(body.pieces) == printable(text)
    if text.strip():
        lines = body._lines(body.size.width)
        assert body.size.height == len(lines) > 0
        assert reply.size.height >= body.size.height


async def test_every_control_byte_is_shown_visibly_and_kept_exactly(chat_models):
    text = f"before {EVERY_CONTROL} after"
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await loaded_chat(pilot, chat_models["danube"], 200, [Scripted(chat_models["danube"], [text])])
        assert pane.send("Hi")
        await app.workers.wait_for_complete()
        await pilot.pause()
        reply = pane.query_one("#chat-log > .reply", Reply)
        assert_shown_whole(reply, text)
        assert "^[" in reply.shown and "^?" in reply.shown and "\x1b" not in reply.shown
        # Nothing drawn anywhere on the screen holds a control character other than what Textual draws itself.
        drawn = "".join(strip.text for strip in reply.query_one(ReplyMarkdown)._lines(reply.size.width))
        assert not any(ord(c) < 32 or ord(c) == 127 for c in drawn)
        assert saved(pane.conversation)[-1] == ("assistant", text)  # the file keeps it exactly
        await pilot.press("ctrl+s")
        assert text in (paths.chats_dir() / f"{pane.conversation.id}.md").read_bytes().decode()


async def test_a_reply_after_a_stopped_one_renders_completely_through_resize_and_theme(chat_models):
    gate = Gate(free=6)
    second = "The second reply.\n\nIt has *two* paragraphs, a list:\n\n- one\n- two\n\nand an end."
    script = Scripted(chat_models["danube"], ["x " * 400, second], gate=gate, gate_reply=0)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["danube"], 2000, [script])
        assert pane.send("first")
        while not gate.holding.is_set():
            await pilot.pause(0.01)
        await pilot.press("escape")
        gate.open()
        await app.workers.wait_for_complete()
        assert pane.conversation.messages[-1]["stats"]["finish_reason"] == "cancelled"
        assert pane.send("second")
        await app.workers.wait_for_complete()
        await pilot.pause()
        replies = drawn(pane, "reply")
        assert len(replies) == 2
        assert_shown_whole(replies[1], second)
        assert saved(pane.conversation) == [
            ("user", "first"), ("assistant", replies[0].text), ("user", "second"), ("assistant", second)
        ]
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert_shown_whole(replies[1], second)
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await pilot.pause()
        assert_shown_whole(replies[1], second)


async def test_enter_within_a_frame_of_the_end_of_a_reply_keeps_every_turn_in_order(chat_models):
    answers = ["first answer", "second answer"]
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["danube"], 200, [Scripted(chat_models["danube"], answers)])
        assert pane.send("one")
        pane.query_one("#chat-prompt", Input).value = "two"
        while pane._answering:  # the reply's stream is still open
            await asyncio.sleep(0)
        await pilot.press("enter")  # at once: the reply may still be being saved
        await app.workers.wait_for_complete()
        while pane.generating or pane._queued:
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert saved(pane.conversation) == [("user", "one"), ("assistant", answers[0]), ("user", "two"), ("assistant", answers[1])]
        assert answers[0] in pane.last_prompt.text  # the second question was sent with the first answer
        assert pane.query_one("#chat-prompt", Input).value == ""


async def test_the_message_leaves_the_box_with_its_turn_and_what_was_typed_after_it_stays(chat_models):
    """The box is not redrawn at Enter (that took the CPU from the prompt's reading): the message stays in
    it until its turn is drawn. Text typed meanwhile is kept, and is not part of the message sent."""
    gate = Gate(free=0)  # the model is held before its first token until the test has typed
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["plain"], 8, [gate])
        box = pane.query_one("#chat-prompt", Input)
        box.focus()
        await pilot.press(*"one", "enter")
        while not gate.holding.is_set():
            await pilot.pause(0.01)
        # Nothing is drawn while the model reads the prompt, the cursor's blink included (Input blinks every 0.5 s).
        seen = set()
        for _ in range(12):
            seen.add(box._cursor_visible)
            await pilot.pause(0.1)
        assert len(seen) == 1
        await pilot.press(*"two")
        gate.open()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert box.value == "two"
        assert [m["content"] for m in pane.conversation.messages if m["role"] == "user"] == ["one"]
        assert log_texts(pane, "user") == ["one"]
        assert box.placeholder == "Message — Enter sends, Esc stops"
        seen = set()  # and once the reply is saved it blinks again
        for _ in range(20):
            seen.add(box._cursor_visible)
            await pilot.pause(0.1)
        assert seen == {True, False}


async def test_switching_model_mid_reply_saves_the_old_chat_and_starts_a_new_one(chat_models):
    gate = Gate(free=4)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["plain"], 3000, [gate])
        assert pane.send("Once upon a time")
        old = pane.conversation
        while not gate.holding.is_set():
            await pilot.pause(0.01)
        pane.open_model(str(chat_models["llama"]))
        gate.open()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert pane.conversation is not old and pane.conversation.messages == []
        assert pane.conversation.model_name == "Llama-3-tiny-Instruct-f32"
        assert [role for role, _ in saved(old)] == ["user", "assistant"]
        assert old.messages[-1]["stats"]["finish_reason"] == "cancelled"
        assert old.model_name == "h2o-danube2-tiny-base-f32"
        assert any("Now chatting with Llama-3-tiny-Instruct-f32" in t for t in log_texts(pane, "notice"))
        assert old.id in [c.id for c in ConversationStore().list()]


async def test_quit_during_a_reply_is_quick_and_keeps_the_turn(chat_models):
    gate = Gate(free=4)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["plain"], 3000, [gate])
        assert pane.send("Once upon a time")
        conv = pane.conversation
        while not gate.holding.is_set():
            await pilot.pause(0.01)
        start = time.perf_counter()
        app.exit()
        gate.open()
    assert time.perf_counter() - start < 5  # measured under 1 s (docs/chat.md); generous for a loaded CI
    assert [role for role, _ in saved(conv)][:1] == ["user"]


async def test_typing_while_a_model_downloads_stays_in_the_box_and_is_sent_when_ready(hub, ctx, request):
    repo = "mlx-community/h2o-danube2-tiny-chat-4bit"
    hub.faults.slow(3.0, 10, path_prefix=f"/api/models/{repo}")  # other panes may ask about the model too
    request.addfinalizer(hub.faults.clear)  # the shared Hub is slow for this test only
    app = MlxtuiApp(ctx, probe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await show_chat(pilot)
        pane.query_one("#chat-set-max_tokens", Input).value = "4"
        pane.open_model(repo)
        await pilot.pause()
        assert pane.loading and app.focused is pane.query_one("#chat-prompt", Input)
        await pilot.press(*"Hello", "enter")
        assert pane.query_one("#chat-prompt", Input).value == "Hello"  # kept while it waits
        assert pane.query_one("#chat-model", Input).value == repo  # never typed into another field
        while pane.loading or pane.generating or pane._queued:
            await pilot.pause(0.05)
        assert [m["role"] for m in pane.conversation.messages] == ["user", "assistant"]
        assert pane.conversation.messages[0]["content"] == "Hello"
        assert pane.conversation.model_name == repo  # a repo id, never the snapshot's hash
        assert repo in str(pane.query_one("#chat-status", Static).render())


async def test_escape_cancels_a_download_and_the_typed_text_is_kept(hub, ctx, request):
    repo = "mlx-community/h2o-danube2-tiny-chat-4bit"
    hub.faults.slow(8.0, 10, path_prefix=f"/api/models/{repo}")  # other panes may ask about the model too
    request.addfinalizer(hub.faults.clear)  # the shared Hub is slow for this test only
    app = MlxtuiApp(ctx, probe=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await show_chat(pilot)
        pane.open_model(repo)
        await pilot.pause()
        await pilot.press(*"Hi", "enter")
        start = time.perf_counter()
        await pilot.press("escape")
        while pane.loading:  # the chat pane's own load, not other panes' workers
            await pilot.pause(0.02)
        assert time.perf_counter() - start < 4  # not the 8 s the Hub takes to answer
        assert not pane.loading and pane.service is None
        assert "load cancelled" in str(pane.query_one("#chat-status", Static).render())
        assert pane.query_one("#chat-prompt", Input).value == "Hi"


async def test_system_prompt_is_a_labelled_multiline_field_with_its_own_key(chat_models):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await show_chat(pilot)
        await pilot.press("ctrl+y")
        area = pane.query_one("#chat-system", TextArea)
        assert app.focused is area
        await pilot.press(*"Be brief.", "enter", *"Answer in French.")
        assert area.text == "Be brief.\nAnswer in French."
        await pilot.pause()
        assert area.size.width >= 70 and area.size.height >= 2  # the whole text readable at 80x24
        assert "System prompt (ctrl+y)" in str(pane.query_one("#chat-system-label").render())
        assert pane.query_one("#rate-figures").region.height > 0  # the figures stay in view


async def test_rates_too_short_to_mean_something_show_a_dash_and_stay_out_of_the_sparkline(chat_models):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["danube"], 1)
        assert pane.send("Hi")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "—" in pane.query_one("#rate-figures").text
        assert pane.query_one(RateReadout).history == [] and pane.query_one(Sparkline).data == []


async def test_reached_by_its_digit_chat_offers_the_model_in_work_and_loads_it_on_enter(chat_models) -> None:
    """Issue 14: Chat reached with 4 and no model loaded has the model in work waiting in the model field
    (not loaded: that costs memory); ctrl+l then Enter loads it. The field shows ~ for the home folder."""
    import os
    import shutil

    from mlxtui.services.workflow import short_path

    models = Context().settings.models_dir()
    models.mkdir(parents=True)
    folder = models / "danube-4bit"
    shutil.copytree(chat_models["danube"], folder)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        while not app.query(ChatPane):
            await pilot.pause(0.01)
        app.set_work(app.work.with_folder(str(folder), "h2oai/h2o-danube2-tiny-chat"))
        await pilot.press("escape", "4")
        pane = app.query_one(ChatPane)
        field = pane.query_one("#chat-model", Input)
        while not field.value:
            await pilot.pause(0.05)
        assert field.value == short_path(folder) and os.path.expanduser(field.value) == str(folder)
        assert pane.service is None and not field.has_focus  # offered, not loaded; a digit cannot replace it
        await pilot.press("ctrl+l", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert pane.service is not None and pane.model_name == "danube-4bit"


async def wait_kept_ahead(pilot, pane: ChatPane):
    """The hidden turn the log mounts ahead once nothing is being answered."""
    for _ in range(2000):
        if (turn := pane.log_view.kept_ahead) is not None:
            return turn
        await pilot.pause(0.01)
    raise AssertionError("no turn was mounted ahead")


async def test_the_next_turn_is_mounted_ahead_hidden_and_shown_by_the_reply(chat_models):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await loaded_chat(pilot, chat_models["llama"], 6)
        log = pane.log_view
        ahead = await wait_kept_ahead(pilot, pane)
        # Hidden and not part of the conversation: no .user or .reply, nothing drawn.
        assert not ahead.reply.display and not ahead.message.display
        assert not drawn(pane, "user") and not drawn(pane, "reply")
        assert pane.send("Hello")
        await app.workers.wait_for_complete()
        await pilot.pause()
        # The reply streamed into the turn mounted ahead, which is now shown with the message.
        assert pane.query_one("#chat-log > .reply", Reply) is ahead.reply and ahead.reply.display
        assert log_texts(pane, "user") == ["Hello"] and ahead.message.display
        assert ahead.reply.text == pane.conversation.messages[-1]["content"]
        # A new one is mounted ahead, after the conversation.
        following = await wait_kept_ahead(pilot, pane)
        assert following is not ahead and list(log.children)[-2:] == [following.message, following.reply]
        first_id = pane.conversation.id
        # ctrl+n clears the log, then mounts one ahead again; a reopened chat's messages go before it.
        pane.action_new_conversation()
        await pilot.pause()
        fresh = await wait_kept_ahead(pilot, pane)
        assert list(log.children) == [fresh.message, fresh.reply]
        pane.open_conversation(first_id)
        await pilot.pause()
        reopened = await wait_kept_ahead(pilot, pane)
        assert log_texts(pane, "user") == ["Hello"]
        assert list(log.children)[-2:] == [reopened.message, reopened.reply]
        assert pane.send("Again")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert log_texts(pane, "user") == ["Hello", "Again"]
        replies = drawn(pane, "reply")
        assert [r.text for r in replies] == [m["content"] for m in pane.conversation.messages if m["role"] == "assistant"]


class HeldReply:
    """A reply of 120 paragraphs that waits after the 60th until released (no model, no timing)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.held = asyncio.Event()

    async def reply(self, messages, system=None, sampling=None):
        from mlxtui.services.events import ChatStats, PromptRendered, TokenDelta

        yield PromptRendered("(prompt)", 1, 0)
        for n in range(120):
            if n == 60:
                self.held.set()
                await self.release.wait()
            yield TokenDelta(f"Paragraph {n}.\n\n")
        yield ChatStats(generation_tokens=120, finish_reason="stop")

    def stop(self) -> None:
        self.release.set()


async def test_the_log_follows_a_long_reply_until_the_reader_scrolls_up() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await show_chat(pilot)
        log = pane.log_view
        held = HeldReply()
        pane.service = held  # type: ignore[assignment]
        assert pane.send("Write a lot")
        await held.held.wait()
        held.release.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y  # followed to the last paragraph
        # The reader scrolls up during the next reply: it is not pulled back down as the text grows.
        held = HeldReply()
        pane.service = held  # type: ignore[assignment]
        assert pane.send("And more")
        await held.held.wait()
        await pilot.pause()
        log.focus()  # the reader moves to the log (Escape in the box would stop the reply)
        await pilot.press("home")
        await pilot.pause()
        assert log.scroll_y == 0
        held.release.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert log.scroll_y == 0 < log.max_scroll_y
        await pilot.press("end")  # back at the bottom: following again
        await pilot.pause()
        held = HeldReply()
        pane.service = held  # type: ignore[assignment]
        held.release.set()
        assert pane.send("Once more")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert log.scroll_y == log.max_scroll_y


async def test_a_turn_kept_ahead_never_lands_above_a_turn_sent_while_it_was_mounted() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await show_chat(pilot)
        log = pane.log_view
        await wait_kept_ahead(pilot, pane)
        log.clear()  # its own preparing comes after the next refresh, and finds this one under way
        preparing = asyncio.ensure_future(log.prepare())
        await asyncio.sleep(0)  # its mount is on its way
        turn = log.take("Hi")  # nothing kept ahead yet: a new turn, mounted after the one being prepared
        assert not turn.premounted
        await log.draw(turn)
        await preparing
        await pilot.pause()
        assert log.kept_ahead is None  # dropped: shown later, it would have appeared above "Hi"
        assert list(log.children) == [turn.message, turn.reply]
        await log.prepare()
        assert list(log.children)[-2:] == [log.kept_ahead.message, log.kept_ahead.reply]


async def test_the_figures_never_wrap_so_how_the_reply_ended_stays_in_view() -> None:
    """At 80x24 the side panel is 23 columns: "ctx 192/1,024 · 1 cached" wrapped and pushed "stopped by you"
    out of the readout's seven lines."""
    from textual.app import App
    from textual.geometry import Region

    from mlxtui.services.events import ChatStats
    from mlxtui.ui.widgets.rate import RateFigures, format_stats

    class Narrow(App):
        CSS = "RateFigures { width: 23; }"

        def compose(self):
            yield RateFigures(id="rate-figures")

    app = Narrow()
    async with app.run_test(size=(40, 10)) as pilot:
        figures = app.query_one(RateFigures)
        stats = ChatStats(prompt_tokens=6, cached_tokens=1, generation_tokens=187, generation_tps=215.2,
                          ttft_s=0.025, finish_reason="cancelled")
        figures.show(format_stats(stats, (192, 1024)))
        await pilot.pause()
        lines = [strip.text.rstrip() for strip in figures.render_lines(Region(0, 0, 23, 7))]
        assert lines[-1] == "stopped by you"
        assert lines[-2].startswith("ctx 192/1,024 ·") and len(lines[-2]) <= 23
        # Every ending is shown whole in those 23 columns, never cut to an ellipsis.
        for reason, ending in (("stop", "✓ done"), ("length", "✓ max tokens reached"), ("cancelled", "stopped by you")):
            figures.show(format_stats(replace(stats, finish_reason=reason), (192, 1024)))
            await pilot.pause()
            assert [s.text.rstrip() for s in figures.render_lines(Region(0, 0, 23, 7))][-1] == ending


async def test_the_figures_ride_along_with_the_replys_screen_updates(monkeypatch) -> None:
    """While a reply streams, the readout draws when the reply's text is drawn anyway (one screen update
    for both), at most REFRESH_HZ times a second; its own timer draws only when no such update came for STALE_S."""
    from textual.app import App

    from mlxtui.services.events import ChatStats
    from mlxtui.ui.widgets import rate as rate_module
    from mlxtui.ui.widgets.rate import REFRESH_HZ, STALE_S, RateReadout

    clock = [1000.0]
    monkeypatch.setattr(rate_module, "monotonic", lambda: clock[0])

    class Readout(App):
        def compose(self):
            yield RateReadout(id="chat-rate")

    app = Readout()
    async with app.run_test(size=(40, 14)) as pilot:
        readout = app.query_one(RateReadout)
        figures = readout.query_one("#rate-figures")

        def stream(tokens: int) -> None:
            readout.stats = ChatStats(prompt_tokens=6, generation_tokens=tokens, generation_tps=50.0)

        stream(1)
        readout.draw_along()
        assert "tokens        1" in figures.text
        clock[0] += 0.5 / REFRESH_HZ  # too soon after the last draw: not drawn along
        stream(2)
        readout.draw_along()
        assert "tokens        1" in figures.text
        clock[0] += 0.5 / REFRESH_HZ
        readout.draw_along()
        assert "tokens        2" in figures.text
        # The timer leaves figures to the reply's updates until they have waited STALE_S.
        stream(3)
        clock[0] += STALE_S * 0.9
        readout._tick()
        assert "tokens        2" in figures.text
        clock[0] += STALE_S * 0.2
        readout._tick()
        assert "tokens        3" in figures.text
        # A reply's update too soon to carry the figures still holds the timer off: the next one will.
        stream(4)
        clock[0] += 0.5 / REFRESH_HZ
        readout.draw_along()
        clock[0] += STALE_S * 0.9  # over STALE_S since the last draw, under it since the reply's update
        readout._tick()
        assert "tokens        3" in figures.text
        # The end of a turn is drawn at once, whenever the last draw was.
        readout.end_turn(ChatStats(prompt_tokens=6, generation_tokens=4, generation_tps=50.0, finish_reason="stop"))
        assert "tokens        4" in figures.text and "done" in figures.text
        await pilot.pause()


class SteppedReply:
    """A reply whose text comes in steps the test releases one at a time, each with its figures (no model)."""

    def __init__(self, steps: list[str]) -> None:
        self.steps = steps
        self.go = asyncio.Event()
        self.handled = asyncio.Event()  # the pane has handled the last step's text and figures

    async def reply(self, messages, system=None, sampling=None):
        from mlxtui.services.events import ChatStats, PromptRendered, TokenDelta

        yield PromptRendered("(prompt)", 1, 0)
        for n, text in enumerate(self.steps, 1):
            await self.go.wait()
            self.go.clear()
            yield TokenDelta(text)
            yield ChatStats(prompt_tokens=1, generation_tokens=n, generation_tps=50.0)
            self.handled.set()  # resumed: the pane is done with both
        yield ChatStats(prompt_tokens=1, generation_tokens=len(self.steps), generation_tps=50.0, finish_reason="stop")

    def stop(self) -> None:
        self.go.set()


async def test_each_flush_of_a_streamed_reply_is_one_screen_update_and_at_most_one_layout(monkeypatch) -> None:
    """Textual asks for a second layout of the whole screen whenever a layout changes a widget's size
    (the chat log's widgets decline it: ui/widgets/laid_out_once.py), and a flush takes the event loop
    several turns, between which the screen was updated (the figures, then the text). And a reply grows
    ReplyMarkdown.STEP lines at a time, so most flushes redraw it without any layout. Each layout and each
    update cost the model's thread part of the event loop's time; a flush is now one update, with the
    figures in it, and a layout only when the reply outgrows its lines."""
    from textual.screen import Screen

    from mlxtui.ui.widgets import rate as rate_module

    layouts, updates = [0], [0]
    refresh_layout, compositor_refresh = Screen._refresh_layout, Screen._compositor_refresh

    def counted_layout(self, size=None, scroll: bool = False):
        if not (scroll and not self._layout_widgets):  # a scroll alone only rearranges what is in view
            layouts[0] += 1
        return refresh_layout(self, size, scroll)

    def counted_update(self, *args, **kwargs):
        updates[0] += 1
        return compositor_refresh(self, *args, **kwargs)

    monkeypatch.setattr(Screen, "_refresh_layout", counted_layout)
    monkeypatch.setattr(Screen, "_compositor_refresh", counted_update)
    clock = [1000.0]
    monkeypatch.setattr(rate_module, "monotonic", lambda: clock[0])  # the figures may be drawn at every flush
    monkeypatch.setattr(Reply, "FLUSH_HZ", 1e9)
    monkeypatch.setattr(Reply, "CPU_BUDGET", float("inf"))  # every write is a flush
    monkeypatch.setattr(Reply, "SOFT", 300)  # pieces are finished along the way too

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await show_chat(pilot)
        figures = pane.query_one("#rate-figures")
        # Every third step starts a paragraph.
        stepped = SteppedReply(
            [("\n\n" if n % 3 == 2 else "") + f"Sentence {n} grows the paragraph. " for n in range(30)]
        )
        pane.service = stepped  # type: ignore[assignment]
        assert pane.send("Write a paragraph")

        async def step() -> tuple[int, int]:
            """Release a step; the layouts and screen updates it caused once the screen has settled."""
            await pilot.pause()
            before = layouts[0], updates[0]
            clock[0] += 1.0
            stepped.handled.clear()
            stepped.go.set()
            await stepped.handled.wait()
            for _ in range(10):  # a second layout would come on the screen's next frame or so
                await pilot.pause(0.02)
            return layouts[0] - before[0], updates[0] - before[1]

        await step()  # the first words and the turn
        body = pane.query_one("#chat-log > .reply", Reply).query_one(ReplyMarkdown)
        without_layout = 0
        for n in range(2, 30):  # the 30th and last step ends the reply
            scrolls = pane.log_view.max_scroll_y > 0
            height = body.size.height
            layouts_done, updates_done = await step()
            if not scrolls and pane.log_view.max_scroll_y > 0:
                continue  # the text outgrew the view: the scrollbar appears, which takes layouts of its own
            # A layout only when the reply outgrew its lines (then it takes STEP more), never two.
            assert layouts_done == (body.size.height != height), f"step {n}"
            assert body.size.height % ReplyMarkdown.STEP == 0 and body.size.height >= len(body._lines(body.size.width))
            without_layout += layouts_done == 0
            # One screen update: the text and the figures. Once the log scrolls, following the end and the
            # scrollbar's thumb come after it (no layout), in one update or two as their turns fall.
            if not scrolls:
                assert updates_done == 1, f"step {n}: {updates_done}"
            # the figures went with the text (those of the step before: they come after it)
            assert f"tokens {n - 1:8d}" in figures.text
            if scrolls:  # the view follows the text it has just drawn, not the text of the flush before
                assert pane.log_view.scroll_y == pane.log_view.max_scroll_y, f"step {n}"
        assert without_layout > 15  # most flushes
        assert body.pieces  # finished pieces were drawn along the way
        assert pane.log_view.max_scroll_y > 0  # it grew past the view
        assert body.text + body.live == printable("".join(stepped.steps[:29]))
        await step()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert body.text == printable("".join(stepped.steps)) and not body.live
        assert body.size.height == len(body._lines(body.size.width))  # the reply ended: no lines to spare


async def test_the_rate_history_draws_each_turn_from_zero() -> None:
    """408 and 426 tok/s are two nearly full bars, not the lowest and the highest (Sparkline's own scaling)."""
    from textual.app import App
    from textual.geometry import Region

    from mlxtui.ui.widgets.rate import RateHistory

    class History(App):
        def compose(self):
            yield RateHistory([], id="rate-history")

    app = History()
    async with app.run_test(size=(8, 3)) as pilot:
        history = app.query_one(RateHistory)
        width = history.size.width

        def bars() -> str:
            return history.render_lines(Region(0, 0, width, 1))[0].text

        assert bars() == "▁" * width  # no turn yet: the baseline
        history.data = [408.0, 426.0]
        await pilot.pause()
        assert bars() == "█" * width
        history.data = [100.0, 400.0]
        await pilot.pause()
        assert bars() == "▃" * (width // 2) + "█" * (width - width // 2)
        history.data = [float(n) for n in range(1, 3 * width + 1)]  # more turns than columns: the most of each
        await pilot.pause()
        assert len(bars()) == width and list(bars()) == sorted(bars()) and bars()[-1] == "█" and bars()[0] < "▄"

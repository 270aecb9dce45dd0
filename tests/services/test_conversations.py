"""Saving, reopening and exporting conversations under the data directory."""

from __future__ import annotations

import json

import pytest

from mlxtui import paths
from mlxtui.services.conversations import Conversation, ConversationStore, to_markdown
from mlxtui.services.errors import InvalidInputError, NotFoundError


def sample() -> Conversation:
    return Conversation(
        model="/models/h2o-danube2-tiny-chat-4bit",
        system="Answer in French.",
        messages=[
            {"role": "user", "content": "Bonjour ?"},
            {"role": "assistant", "content": "Salut **toi**", "stats": {"generation_tokens": 40, "generation_tps": 120.5, "prompt_tokens": 90, "prompt_tps": 900.0, "ttft_s": 0.02, "finish_reason": "cancelled"}},
        ],
        sampling={"temperature": 0.7, "seed": None},
    )


def test_saved_under_the_data_dir_and_reopened():
    store = ConversationStore()
    conv = sample()
    path = store.save(conv)
    assert path.parent == paths.chats_dir() and path.name == f"{conv.id}.json"
    again = store.load(conv.id)
    assert again.messages == conv.messages and again.system == conv.system and again.model == conv.model
    assert [c.id for c in store.list()] == [conv.id]
    assert again.turns() == [{"role": "user", "content": "Bonjour ?"}, {"role": "assistant", "content": "Salut **toi**"}]


def test_save_is_atomic_and_leaves_no_temporary_files():
    store = ConversationStore()
    conv = sample()
    store.save(conv)
    conv.messages.append({"role": "user", "content": "encore"})
    store.save(conv)
    assert sorted(p.name for p in paths.chats_dir().iterdir()) == [f"{conv.id}.json"]
    assert json.loads((paths.chats_dir() / f"{conv.id}.json").read_text())["messages"][-1]["content"] == "encore"


def test_list_skips_broken_files_and_sorts_newest_first():
    store = ConversationStore()
    first, second = sample(), sample()
    first.updated_at = "x"
    store.save(first)
    store.save(second)
    (paths.chats_dir() / "broken.json").write_text("{nope")
    assert {c.id for c in store.list()} == {first.id, second.id}


def test_missing_and_broken_conversations_have_clear_errors():
    store = ConversationStore()
    with pytest.raises(NotFoundError, match="no saved conversation"):
        store.load("20990101-000000-abcdef")
    paths.chats_dir().mkdir(parents=True, exist_ok=True)
    (paths.chats_dir() / "bad.json").write_text('{"messages": [{"role": "wizard"}]}')
    with pytest.raises(InvalidInputError, match="not a conversation"):
        store.load("bad")
    with pytest.raises(InvalidInputError):
        store.load("../etc/passwd")


def test_markdown_export():
    conv = sample()
    text = to_markdown(conv)
    assert text.startswith("# Bonjour ?\n")
    assert "## System\n\nAnswer in French." in text
    assert "## You\n\nBonjour ?" in text and "## Assistant\n\nSalut **toi**" in text
    assert "*40 tokens, 120.5 tok/s, prompt 900.0 tok/s, first token 0.02 s, cancelled*" in text
    path = ConversationStore().export_markdown(conv)
    assert path.read_text() == text and path.suffix == ".md"


def test_export_shows_no_rate_for_a_turn_too_short_to_measure():
    conv = sample()
    conv.messages[-1]["stats"] = {"generation_tokens": 1, "generation_tps": 22943.7, "prompt_tokens": 3, "prompt_tps": 5000.0, "ttft_s": 0.01}
    assert "*1 tokens, —, prompt —, first token 0.01 s*" in to_markdown(conv)


def test_turns_are_kept_in_order_and_an_unanswered_message_can_be_taken_back():
    conv = Conversation()
    conv.add_user("one")
    with pytest.raises(InvalidInputError, match="no reply yet"):
        conv.add_user("two")
    conv.end_reply("first \x1b[2J reply", {"generation_tokens": 3}, model="org/model")
    with pytest.raises(InvalidInputError):
        conv.end_reply("again", None)
    conv.add_user("two")
    assert conv.drop_unanswered() == "two" and conv.drop_unanswered() is None
    assert [m["role"] for m in conv.messages] == ["user", "assistant"]
    assert conv.messages[-1] == {"role": "assistant", "content": "first \x1b[2J reply", "stats": {"generation_tokens": 3}, "model": "org/model"}


async def test_save_async_writes_the_exact_text_off_the_event_loop():
    store = ConversationStore()
    conv = sample()
    conv.messages[-1]["content"] = "".join(map(chr, [*range(32), 127]))  # kept exactly, control bytes and all
    path = await store.save_async(conv)
    assert store.load(conv.id).messages == conv.messages
    assert json.loads(path.read_text())["messages"][-1]["content"] == conv.messages[-1]["content"]


@pytest.mark.parametrize("content", [
    '{"messages": 5}',
    '{"messages": [], "system": 7}',
    '{"messages": [{"role": "user", "content": "x", "stats": []}]}',
    '[1, 2]',
    '{"messages": [], "sampling": "hot"}',
    '{"a": ' * 200 + '1' + '}' * 200,
])
def test_malformed_files_are_one_clear_error_and_skipped_by_the_list(content):
    store = ConversationStore()
    paths.chats_dir().mkdir(parents=True, exist_ok=True)
    (paths.chats_dir() / "odd.json").write_text(content)
    with pytest.raises(InvalidInputError, match="not a conversation mlxtui can read"):
        store.load("odd")
    assert store.list() == []

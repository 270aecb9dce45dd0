"""The card service: building README.md from the source card and provenance, parsing, linting, drafts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlxtui.services import Context
from mlxtui.services.card import (
    CardService,
    build_card,
    lint_card,
    set_metadata,
    split_card,
    template_rejects_system,
)
from mlxtui.services.errors import CardError, InvalidInputError

SOURCE = "h2oai/h2o-danube2-tiny-chat"


def codes(problems) -> set[str]:
    return {p.code for p in problems}


def test_build_carries_source_metadata_and_sets_mlx_fields(mlx_folder: Path, source_folder: Path) -> None:
    text = build_card(mlx_folder, source_card=(source_folder / "README.md").read_text(), existing=None)
    meta = split_card(text).meta
    assert meta["license"] == "apache-2.0"
    assert meta["language"] == ["en"]
    assert meta["datasets"] == ["HuggingFaceH4/ultrachat_200k"]
    assert meta["pipeline_tag"] == "text-generation"
    assert meta["library_name"] == "mlx"
    assert meta["base_model"] == SOURCE
    assert meta["base_model_relation"] == "quantized"
    assert "mlx" in meta["tags"] and "h2o-llmstudio" in meta["tags"]
    # the source's own library_name (transformers) is not carried over
    assert text.count("library_name") == 1


def test_generated_body_has_conversion_details_usage_and_link(mlx_folder: Path, source_folder: Path) -> None:
    text = build_card(mlx_folder, source_card=(source_folder / "README.md").read_text())
    body = split_card(text).body.lstrip()
    assert body.startswith("# h2o-danube2-tiny-chat-4bit")
    assert "tiny chat model in the style of h2o-danube2" in body  # what the model is, from the original
    for fact in ("| Quantization mode | affine |", "| Bits | 4 |", "| Group size | 64 |", "| Bits per weight | 4.500 |",
                 "`float32`", "| mlx-lm |", "| mlx |", "`0123456789ab`"):
        assert fact in body, fact
    assert 'load("h2o-danube2-tiny-chat-4bit")' in body
    assert "apply_chat_template" in body
    assert "System role not supported" in body  # danube's template refuses a system message
    assert f"[{SOURCE}](https://huggingface.co/{SOURCE})" in body


def test_system_note_only_when_the_template_rejects_system(mlx_folder: Path) -> None:
    assert template_rejects_system(mlx_folder)
    from mlxtui.devhub.models import LLAMA3_TEMPLATE

    (mlx_folder / "chat_template.jinja").write_text(LLAMA3_TEMPLATE)
    assert not template_rejects_system(mlx_folder)
    body = split_card(build_card(mlx_folder, existing=None)).body
    assert "System role not supported" not in body
    (mlx_folder / "chat_template.jinja").unlink()
    tok = json.loads((mlx_folder / "tokenizer_config.json").read_text())
    tok.pop("chat_template", None)
    (mlx_folder / "tokenizer_config.json").write_text(json.dumps(tok))
    body = split_card(build_card(mlx_folder, existing=None)).body
    assert "apply_chat_template" not in body and 'prompt = "Once upon a time"' in body


def test_an_edited_body_is_kept_and_only_metadata_merged(mlx_folder: Path, source_folder: Path) -> None:
    existing = "---\nlicense: apache-2.0\ntags:\n- mine\n---\n\n# My words\n\nHand written.\n"
    text = build_card(mlx_folder, source_card=(source_folder / "README.md").read_text(), existing=existing)
    parsed = split_card(text)
    assert parsed.body == "\n# My words\n\nHand written.\n" or parsed.body.strip() == "# My words\n\nHand written."
    assert parsed.meta["tags"] == ["mine", "mlx"]  # the user's tags win over the source's
    assert parsed.meta["library_name"] == "mlx" and parsed.meta["base_model"] == SOURCE


def test_broken_yaml_in_existing_readme_refuses_and_keeps_file(mlx_folder: Path) -> None:
    broken = "---\nlicense: [apache\n---\nbody\n"
    with pytest.raises(CardError, match="invalid YAML"):
        build_card(mlx_folder, existing=broken)


def test_set_metadata_keeps_body_byte_for_byte() -> None:
    text = "---\nlicense: mit\n---\n\n# Title\n\n  indented  \n"
    out = set_metadata(text, "pipeline_tag", "text-generation")
    assert split_card(out).meta == {"license": "mit", "pipeline_tag": "text-generation"}
    assert out.endswith("# Title\n\n  indented  \n")
    assert split_card(set_metadata(out, "license", None)).meta == {"pipeline_tag": "text-generation"}
    with pytest.raises(CardError):
        set_metadata("---\na: [\n---\nx", "license", "mit")
    # a card without front matter gains one
    assert split_card(set_metadata("# T\n", "license", "mit")).meta == {"license": "mit"}


def test_lint_finds_each_problem() -> None:
    assert "invalid-yaml" in codes(lint_card("---\nlicense: [x\n---\nbody"))
    bad = lint_card("---\nlicense: [x\n---\nbody")[0]
    assert bad.line == 2
    assert {"missing-license", "missing-pipeline-tag", "missing-base-model"} <= codes(lint_card("---\ntags: [mlx]\n---\nbody"))
    assert "empty-body" in codes(lint_card("---\nlicense: mit\n---\n\n  \n"))
    good = "---\nlicense: mit\npipeline_tag: text-generation\nbase_model: a/b\n---\nbody"
    assert lint_card(good) == []
    assert codes(lint_card(good, source_license="apache-2.0")) == {"license-differs"}
    assert codes(lint_card(good, base_model_known=False)) == {"unknown-base-model"}
    assert [p.severity for p in lint_card(good.replace("base_model: a/b\n", ""))] == ["warning"]


async def test_open_builds_a_card_for_mlx_lm_empty_body_and_lint_is_clean_offline(mlx_folder: Path) -> None:
    service = CardService(Context(endpoint="http://127.0.0.1:9"))  # nothing listens: offline
    state = await service.open(mlx_folder)
    assert state.generated and state.dirty
    assert state.source == SOURCE
    assert any("could not be read" in note for note in state.notes)
    meta = split_card(state.text).meta
    assert meta["license"] == "apache-2.0"  # kept from the mlx-lm README's front matter
    problems, notes = await service.lint(state.text, state.source)
    assert [p for p in problems if p.severity == "error"] == []
    assert notes  # base_model could not be checked offline, and it says so


async def test_drafts_survive_a_crash_and_are_restored(mlx_folder: Path) -> None:
    service = CardService(Context(endpoint="http://127.0.0.1:9"))
    on_disk = (mlx_folder / "README.md").read_text()
    service.save_draft(mlx_folder, on_disk + "\nunsaved words\n")
    # "crash": a new service (new process) opens the same folder
    state = await CardService(Context(endpoint="http://127.0.0.1:9")).open(mlx_folder)
    assert state.restored_draft is not None
    assert state.text.endswith("unsaved words\n")
    assert (mlx_folder / "README.md").read_text() == on_disk  # the file itself is untouched until saved
    service.save(mlx_folder, state.text)
    assert (mlx_folder / "README.md").read_text() == state.text
    assert service.load_draft(mlx_folder) is None
    assert not [p for p in mlx_folder.iterdir() if p.name.endswith(".tmp")]


async def test_open_keeps_a_readme_with_broken_yaml_as_it_is(mlx_folder: Path) -> None:
    broken = "---\nlicense: [apache\n---\n\n# Mine\n"
    (mlx_folder / "README.md").write_text(broken)
    state = await CardService(Context(endpoint="http://127.0.0.1:9")).open(mlx_folder)
    assert state.text == broken and not state.generated


async def test_open_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        await CardService(Context()).open(tmp_path / "nope")


# --- issue 11: local paths stay private; base_model must be a repo id ---------------------------------


def test_a_local_source_is_named_without_its_path(mlx_folder: Path, source_folder: Path) -> None:
    home_like = str(source_folder.resolve())
    provenance = json.loads((mlx_folder / "mlxtui-provenance.json").read_text())
    provenance["source"] = home_like
    (mlx_folder / "mlxtui-provenance.json").write_text(json.dumps(provenance))
    text = build_card(mlx_folder, existing=None, regenerate_body=True)
    assert home_like not in text and str(source_folder.parent) not in text
    assert f"a local folder named {source_folder.name}" in text
    meta = split_card(text).meta
    assert "base_model" not in meta  # a path is never a base_model


@pytest.mark.parametrize("base", ["../../etc/passwd", "/home/me/models/x", "~/m", "a b/c", "x/y/z"])
def test_lint_flags_a_base_model_that_is_not_a_repo_id(base: str) -> None:
    for value in (base, ["org/fine", base]):
        text = set_metadata(GOOD_CARD, "base_model", value)
        found = [p for p in lint_card(text) if p.code == "base-model-not-repo-id"]
        assert len(found) == 1 and found[0].severity == "error" and found[0].line, lint_card(text)


GOOD_CARD = "---\nlicense: mit\npipeline_tag: text-generation\nbase_model: org/model\n---\n\n# Model\nText.\n"


@pytest.mark.parametrize("front", ["tags: 7", "language: 5", "base_model: [1, 2]", "license: [a]", "- a\n- b",
                                   "a: &a [x]\nb: [*a, *a]\n" + "\n".join(f"c{i}: [*a]" for i in range(200))])
def test_unusable_front_matter_is_one_lint_error_never_a_traceback(front: str) -> None:
    text = f"---\n{front}\n---\n\n# Model\nText.\n"
    problems = lint_card(text)
    assert [p.code for p in problems if p.severity == "error"][:1] == ["invalid-yaml"]
    assert split_card(text).meta is None
    with pytest.raises(CardError):
        set_metadata(text, "license", "mit")  # the form never replaces YAML that is being fixed


def test_list_form_base_model_reads_the_same_everywhere(tmp_path: Path) -> None:
    from mlxtui.services.card_frontmatter import card_data, first_base_model
    from mlxtui.services.inspect import build_report, read_local_folder

    text = "---\nbase_model:\n- org/first\n- org/second\nlicense: mit\n---\n\nbody\n"
    (tmp_path / "README.md").write_text(text)
    assert first_base_model(card_data(text)) == "org/first"
    assert split_card(text).meta["base_model"] == ["org/first", "org/second"]
    assert build_report(read_local_folder(tmp_path)).base_model == ["org/first", "org/second"]


def test_a_merge_keeps_front_matter_comments_and_changes_only_what_it_must(mlx_folder: Path) -> None:
    existing = ("---\n# checked with legal on 2026-11-02\nlicense: apache-2.0  # same as the original\n"
                "pipeline_tag: text-generation\ntags:\n- chat\n# the tags end here\n---\n\n# Mine\n\nWords.\n")
    text = build_card(mlx_folder, existing=existing, source="h2oai/h2o-danube2-tiny-chat")
    assert "# checked with legal on 2026-11-02\n" in text and "license: apache-2.0  # same as the original\n" in text
    assert "# the tags end here\n" in text and text.endswith("# Mine\n\nWords.\n")
    meta = split_card(text).meta
    assert meta["tags"] == ["chat", "mlx"] and meta["library_name"] == "mlx"
    assert meta["base_model"] == "h2oai/h2o-danube2-tiny-chat"
    # nothing left to change: the text comes back byte for byte
    assert build_card(mlx_folder, existing=text, source="h2oai/h2o-danube2-tiny-chat") == text


def test_the_form_keeps_front_matter_comments() -> None:
    text = "---\n# a note\nlicense: mit # why\ntags:\n- mlx\n---\n\nBody\n"
    changed = set_metadata(text, "language", ["en", "fr"])
    assert changed.startswith("---\n# a note\nlicense: mit # why\ntags:\n- mlx\n")
    assert split_card(changed).meta["language"] == ["en", "fr"] and changed.endswith("\n\nBody\n")
    assert "# a note" in set_metadata(text, "license", "apache-2.0")


def test_retarget_changes_only_the_generated_parts() -> None:
    from mlxtui.services.card import retarget_body

    body = ("# tiny-4bit\n\nConversion of [org/src](http://127.0.0.1:43123/org/src). See [docs](http://127.0.0.1:43123/x/y).\n\n"
            "My words mention tiny-4bit.\n\n```python\nmodel, tokenizer = load(\"tiny-4bit\")\n```\n")
    moved, changes = retarget_body(body, "alice/tiny-4bit", "http://127.0.0.1:43123")
    assert moved.startswith("# alice/tiny-4bit\n") and 'load("alice/tiny-4bit")' in moved
    assert "My words mention tiny-4bit." in moved and "[docs](http://127.0.0.1:43123/x/y)" in moved  # the user's link
    assert "`org/src`" in moved and "43123/org/src" not in moved
    assert len(changes) == 3
    assert retarget_body(moved, "alice/tiny-4bit", "http://127.0.0.1:43123") == (moved, [])
    public, _ = retarget_body(body, None, "https://hub.example.org")
    assert "[org/src](https://hub.example.org/org/src)" in public and 'load("tiny-4bit")' in public


@pytest.mark.parametrize(("endpoint", "public"), [
    ("http://127.0.0.1:5000", None), ("http://localhost:8080/", None), ("http://[::1]:9", None),
    ("https://huggingface.co", "https://huggingface.co"), ("https://hf-mirror.com/", "https://hf-mirror.com"),
])
def test_public_hub_url(endpoint: str, public: str | None) -> None:
    from mlxtui.services.card import public_hub_url

    assert public_hub_url(endpoint) == public


async def test_the_service_retargets_editor_text_keeping_front_matter(mlx_folder: Path) -> None:
    service = CardService(Context(endpoint="http://127.0.0.1:1"))
    text, _ = await service.build(mlx_folder)
    text = text.replace("---\n", "---\n# mine\n", 1)
    moved, changes = service.retarget(text, "alice/x-4bit")
    assert moved.startswith("---\n# mine\n") and 'load("alice/x-4bit")' in moved and changes


def test_a_demo_models_card_says_its_weights_are_random(mlx_folder: Path) -> None:
    from mlxtui.services.modelfolder import RANDOM_WEIGHTS_NOTE, RANDOM_WEIGHTS_TAG

    source = f"---\nlicense: apache-2.0\ntags:\n- {RANDOM_WEIGHTS_TAG}\n---\n\n# Demo\n"
    text = build_card(mlx_folder, source_card=source, existing=None)
    assert RANDOM_WEIGHTS_NOTE in text and RANDOM_WEIGHTS_TAG in split_card(text).meta["tags"]
    plain = build_card(mlx_folder, source_card=source.replace(RANDOM_WEIGHTS_TAG, "chat"), existing=None)
    assert RANDOM_WEIGHTS_NOTE not in plain

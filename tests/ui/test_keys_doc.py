"""docs/keys.md is generated from the bindings; this fails when someone changes a key and not the doc."""

from __future__ import annotations

from pathlib import Path

from mlxtui.ui.keys import key_rows, keys_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "keys.md"


def test_keys_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == keys_markdown(), (
        "docs/keys.md is stale: run `.venv/bin/python -m mlxtui.ui.keys > docs/keys.md`"
    )


def test_every_binding_has_an_id_and_a_description() -> None:
    missing = [row for row in key_rows() if row.keys != "ctrl+p" and (not row.binding_id or not row.description)]
    assert missing == []

"""The lab's pure parts: variant names (both group-size spellings), the Pareto front, the pick sentence, the
plot and the card section, on a recorded lab of the trained model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from mlxtui.services.errors import InvalidInputError
from mlxtui.services.lab_report import card_section, card_section_for, pareto_names, pick_sentence, size_kl_plot
from mlxtui.services.lab_variants import AWQ_MODEL_TYPES, parse_variant, parse_variants

RESULT = json.loads((Path(__file__).parent.parent / "fixtures" / "lab_result.json").read_text())


@pytest.mark.parametrize(
    ("given_name", "canonical", "bits", "group"),
    [("4bit", "4bit", 4, 64), ("4bit-g32", "4bit-g32", 4, 32), ("4bit-gs32", "4bit-g32", 4, 32),
     ("8BIT-GS128", "8bit-g128", 8, 128), ("mxfp4", "mxfp4", 4, 32), ("nvfp4", "nvfp4", 4, 16),
     ("mixed_3_6", "mixed_3_6", 3, 64), ("4bit-GPTQ", "4bit-gptq", 4, 64), ("2bit-gs32-awq", "2bit-g32-awq", 2, 32),
     ("4.5bit-dq", "4.5bit-dq", 4, 64)],
)
def test_variant_names_accept_both_group_spellings(given_name: str, canonical: str, bits: int, group: int) -> None:
    variant = parse_variant(given_name)
    assert (variant.name, variant.bits, variant.group_size) == (canonical, bits, group)


def test_duplicate_spellings_collapse_to_one_variant() -> None:
    assert [v.name for v in parse_variants("4bit-g32, 4bit-gs32,8bit")] == ["4bit-g32", "8bit"]


@given(st.text(max_size=20))
def test_any_text_is_a_variant_or_one_clear_sentence(text: str) -> None:
    try:
        parse_variant(text)
    except InvalidInputError as error:
        assert str(error) and "\n" not in str(error)


def test_awq_model_types_are_mlx_lms() -> None:
    from mlx_lm.quant.awq import AWQ_MODEL_CONFIGS

    assert AWQ_MODEL_TYPES == set(AWQ_MODEL_CONFIGS)


def test_pareto_front_keeps_only_undominated_variants() -> None:
    rows = [{"name": "a", "bytes": 1, "kl_mean": 0.5}, {"name": "b", "bytes": 2, "kl_mean": 0.1},
            {"name": "c", "bytes": 3, "kl_mean": 0.2}, {"name": "d", "bytes": 2, "kl_mean": 0.1}]
    assert pareto_names(rows) == {"a", "b", "d"}  # c is bigger and worse than b; ties stay
    assert pareto_names(RESULT["variants"]) == {r["name"] for r in RESULT["variants"]} - {"4bit-g32"}


def test_pick_sentence_says_size_ratio_and_agreement() -> None:
    row = next(r for r in RESULT["variants"] if r["name"] == "4bit-g32")
    assert pick_sentence(row, RESULT["reference"]).startswith("4-bit g32: 5.2× smaller, top-1 agreement 98 %")


def test_plot_puts_the_smallest_worst_variant_top_left() -> None:
    lines, markers = size_kl_plot(RESULT["variants"], width=20, height=5)
    names = dict(markers)
    two = next(m for m, n in markers if n == "2bit")
    eight = next(m for m, n in markers if n == "8bit")
    assert lines[0].split("│")[1].startswith(two) and lines[4].split("│")[1].rstrip().endswith(eight)
    assert len(names) == len(RESULT["variants"])


def test_card_section_names_method_text_and_tokens() -> None:
    text = card_section(RESULT, this="4bit")
    assert text.startswith("## Quantization quality")
    assert "mlxtui lab" in text and "built-in English text" in text and f"{RESULT['tokens_evaluated']} predictions" in text
    assert "| **4bit** (this model) | 5.03 |" in text and text.count("\n| ") == len(RESULT["variants"]) + 1  # header and one row each


def test_card_section_for_a_folder_outside_any_lab_is_none(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    assert card_section_for(tmp_path / "m") is None
    (tmp_path / "lab-results.json").write_text("{not json")
    assert card_section_for(tmp_path / "m") is None
    (tmp_path / "lab-results.json").write_text(json.dumps({"variants": [{"path": str(tmp_path / "m")}]}))
    assert card_section_for(tmp_path / "m") is None  # malformed rows: no section, no crash

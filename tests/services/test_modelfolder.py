"""The model-folder layer under hostile input: a report or one clear error, within a time bound, nothing written.

Property-based (hypothesis): generated config.json, safetensors headers, front matter and provenance files of
every shape are thrown at the model-folder module, Inspect's report, the Library, the card reader and the
`mlxtui inspect` / `mlxtui library` commands. Plus the named cases of issue 12 and the support verdict.
"""

from __future__ import annotations

import json
import math
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlxtui.cli import main
from mlxtui.services import Context
from mlxtui.services.bounded import BadFileError
from mlxtui.services.card_frontmatter import card_data, parse_front_matter
from mlxtui.services.card_lint import lint_card
from mlxtui.services.errors import MlxtuiError
from mlxtui.services.inspect import InspectReport, build_report, read_local_folder
from mlxtui.services.library import LibraryService
from mlxtui.services import modelfolder
from mlxtui.services.sizes import estimate_bytes
from mlxtui.services.support import verdict

#: a generous bound for one report on a loaded 2-core machine (real ones take well under a second)
BOUND_S = 30.0
PROFILE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
         "torch_dtype": "bfloat16"}
CONFIG_KEYS = ["model_type", "architectures", "hidden_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "vocab_size", "intermediate_size", "head_dim", "torch_dtype", "quantization",
               "quantization_config", "text_config", "vision_config", "auto_map", "tie_word_embeddings",
               "sliding_window", "num_local_experts", "dtype"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                    st.sampled_from(["llama", "mistral", "\x1b]0;pwn\x07", "../x", "bfloat16", "float32"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(CONFIG_KEYS) | st.text(max_size=8), inner, max_size=5)),
    max_leaves=20)
configs = st.one_of(
    st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values, max_size=8),
    st.builds(lambda patch: {**LLAMA, **patch}, st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values, max_size=3)),
    json_values,
)


def _config_text(draw_value: Any) -> str:
    return json.dumps(draw_value)


raw_configs = st.one_of(
    configs.map(_config_text),
    st.sampled_from([
        '{"model_type": "llama", "hidden_size": ' + "9" * 5000 + "}",  # past Python's int-digit limit
        "[" * 100_000 + "]" * 100_000,  # deeper than any recursion limit
        '{"a": ' * 3000 + "1" + "}" * 3000,
        '{"model_type": "llama",',
        "\xff\xfe\x00",
        "",
    ]),
    st.text(max_size=200),
)


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def _safetensors(header: Any, *, raw: bytes | None = None, declared: int | None = None) -> bytes:
    body = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", declared if declared is not None else len(body)) + body


def _report_or_error(folder: Path) -> InspectReport | MlxtuiError:
    try:
        return build_report(read_local_folder(folder), memory_bytes=2**34, free_disk_bytes=2**40)
    except MlxtuiError as error:
        return error


# --- mlx-lm's own constants -----------------------------------------------------------------------


def test_allow_patterns_are_mlx_lms() -> None:
    from mlx_lm.utils import DEFAULT_ALLOW_PATTERNS

    assert list(modelfolder.ALLOW_PATTERNS) == list(DEFAULT_ALLOW_PATTERNS)


# --- the support verdict (one for Inspect and Convert) ------------------------------------------------


@pytest.mark.parametrize("weights, needle", [
    (["pytorch_model.bin"], "PyTorch .bin"),
    (["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"], "PyTorch .bin"),
    (["model.gguf"], "GGUF"),
    (["consolidated.safetensors"], "not named model*.safetensors"),
    ([], "no weight files"),
])
def test_a_repo_without_loadable_safetensors_is_not_convertible(weights: list[str], needle: str) -> None:
    found = verdict(LLAMA, ["config.json", "tokenizer.json", *weights])
    assert not found.supported and any(needle in p for p in found.problems)
    assert verdict(LLAMA, ["config.json", "model.safetensors", "pytorch_model.bin"]).supported


def test_inspect_says_a_bin_only_folder_is_not_convertible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    (tmp_path / "pytorch_model.bin").write_bytes(b"\0" * 64)
    assert main(["inspect", str(tmp_path)]) == 7
    captured = capsys.readouterr()
    assert "NOT convertible" in captured.out and "PyTorch .bin" in captured.out
    assert captured.err.count("\n") == 1 and "PyTorch .bin" in captured.err


# --- named cases of issue 12 --------------------------------------------------------------------------


@pytest.mark.parametrize("config_text, needle", [
    ('{"model_type": "llama", "hidden_size": ' + "7" * 5000 + "}", "digits"),
    ("[" * 50_000 + "]" * 50_000, "nests deeper"),
    ('{"model_type": "llama", "n": {"a": ' * 200 + "1" + "}" * 400, "nests deeper"),
])
def test_bigint_and_deep_configs_are_one_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 config_text: str, needle: str) -> None:
    (tmp_path / "config.json").write_text(config_text)
    report = _report_or_error(tmp_path)
    assert isinstance(report, InspectReport) and not report.supported
    assert any(needle in p for p in report.problems), report.problems
    assert main(["inspect", str(tmp_path)]) == 7
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("content", [
    _safetensors([1, 2, 3]),
    _safetensors({"w": {"dtype": "F16", "shape": "12", "data_offsets": [0, 24]}}),
    _safetensors({"w": {"dtype": "F16", "shape": [-1], "data_offsets": [0, 2]}}),
    _safetensors({"w": {"dtype": 5, "shape": [2]}}),
    _safetensors({"__metadata__": [1]}),
    _safetensors(None, raw=b"\xff" * 16),
    _safetensors(None, raw=b"{}", declared=2**63),
    b"abc",
])
def test_bad_safetensors_headers_are_a_note_not_a_traceback(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    (tmp_path / "model.safetensors").write_bytes(content)
    with pytest.raises(BadFileError):
        modelfolder.safetensors_totals(tmp_path)
    report = _report_or_error(tmp_path)
    assert isinstance(report, InspectReport)
    assert any("model.safetensors" in n for n in report.notes), report.notes


def test_card_fields_of_the_wrong_type_leave_the_report_standing(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    (tmp_path / "README.md").write_text("---\ntags: 7\nlanguage: 5\nlicense: mit\n---\n\nhi\n")
    report = _report_or_error(tmp_path)
    assert isinstance(report, InspectReport) and report.tags == [] and report.license is None
    assert any("README.md" in n and "tags must be" in n for n in report.notes)


def test_a_file_list_naming_parent_folders_is_ignored() -> None:
    from mlxtui.services.inspect_files import ModelFiles

    files = ModelFiles(source="org/x", config_text=json.dumps(LLAMA),
                       files={"config.json": 10, "model.safetensors": 100, "../../etc/passwd": 1, "/abs": 1,
                              "a/../../b": 1, "ok/\x1b[2Jname": 1})
    report = build_report(files, memory_bytes=2**34, free_disk_bytes=2**40)
    assert set(report.files) == {"config.json", "model.safetensors"}
    assert any("unsafe paths" in n for n in report.notes) and report.supported


def test_a_runaway_chat_template_is_a_named_problem_within_seconds(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA))
    (tmp_path / "model.safetensors").write_bytes(_safetensors({"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}) + b"\0" * 4)
    loops = "{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}"
    (tmp_path / "chat_template.jinja").write_text(loops)
    started = time.monotonic()
    report = _report_or_error(tmp_path)
    assert time.monotonic() - started < BOUND_S
    assert isinstance(report, InspectReport)
    chat = report.chat_template
    # whichever bound it hits first on this machine (time or memory: the loop also builds text), it is named
    assert chat["renders"] is False
    assert "did not finish rendering" in chat["error"] or "needs more than" in chat["error"], chat["error"]


def test_a_memory_hungry_template_is_a_named_problem() -> None:
    from mlxtui.services.template_check import chat_template_dry_run

    hungry = "{% set s = 'x' * 1000000 %}{% for i in range(100000) %}{{ s }}{% endfor %}"
    result = chat_template_dry_run(hungry)
    assert result["renders"] is False and ("MB to render" in result["error"] or "did not finish" in result["error"])


def test_inspect_escapes_remote_text_for_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps({**LLAMA, "model_type": "llama\x1b[2J"}))
    (tmp_path / "model.safetensors").write_bytes(_safetensors({"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}) + b"\0" * 4)
    (tmp_path / "README.md").write_text("---\nlicense: \"mit\\e]0;owned\\a\\e[2J\"\n---\n\nhi\n")
    main(["inspect", str(tmp_path)])
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "\x07" not in captured.out
    assert "^[" in captured.out


# --- property-based ----------------------------------------------------------------------------------


@PROFILE
@given(config_text=raw_configs)
def test_any_config_gives_a_report_or_one_error_and_writes_nothing(config_text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.json").write_text(config_text, encoding="utf-8", errors="surrogateescape")
        before = _snapshot(folder)
        started = time.monotonic()
        result = _report_or_error(folder)
        assert time.monotonic() - started < BOUND_S
        assert isinstance(result, (InspectReport, MlxtuiError))
        if isinstance(result, InspectReport):
            json.dumps(result.to_dict(), default=str)  # the --json document can always be written
            assert result.supported == (not result.problems)
        else:
            assert "\n" not in str(result)
        assert _snapshot(folder) == before


headers = st.one_of(
    json_values,
    st.dictionaries(st.text(max_size=6), st.fixed_dictionaries({
        "dtype": st.one_of(st.sampled_from(["F16", "BF16", "F32", "I8"]), scalars),
        "shape": st.one_of(st.lists(st.integers(min_value=-2, max_value=10**6), max_size=4), scalars),
        "data_offsets": st.one_of(st.lists(st.integers(min_value=-1, max_value=10**9), max_size=3), scalars),
    }), max_size=5),
)


@PROFILE
@given(header=headers, declared_delta=st.sampled_from([0, 0, 0, -1, 5, 2**40]))
def test_any_safetensors_header_gives_totals_or_one_bad_file_error(header: Any, declared_delta: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        body = json.dumps(header).encode()
        (folder / "model.safetensors").write_bytes(_safetensors(None, raw=body, declared=max(0, len(body) + declared_delta)))
        try:
            totals = modelfolder.safetensors_totals(folder)
        except BadFileError as error:
            assert "model.safetensors" in str(error) and "\n" not in str(error)
        else:
            assert totals is not None and totals[0] >= 0 and math.isfinite(totals[0])
        (folder / "config.json").write_text(json.dumps(LLAMA))
        assert isinstance(_report_or_error(folder), InspectReport)


yaml_texts = st.one_of(
    st.dictionaries(st.sampled_from(["license", "tags", "language", "base_model", "library_name", "pipeline_tag",
                                     "datasets", "model-index", "x"]), json_values, max_size=6).map(
        lambda d: json.dumps(d)),  # JSON is YAML: every shape of value
    st.text(max_size=120),
    st.sampled_from(["a: &a [1]\n" + "\n".join(f"b{i}: &b{i} [*a, *a, *a]" for i in range(120)),
                     "x: [" * 2000 + "]" * 2000, "- 1\n- 2", "!!python/object:os.system {}"]),
)


@PROFILE
@given(front=yaml_texts, body=st.text(max_size=40))
def test_any_front_matter_gives_metadata_or_one_error(front: str, body: str) -> None:
    text = f"---\n{front}\n---\n{body}"
    started = time.monotonic()
    parsed = parse_front_matter(text)
    assert time.monotonic() - started < BOUND_S
    if parsed.meta is None:
        assert parsed.error and "\n" not in parsed.error
    else:
        assert isinstance(parsed.meta, dict)
    assert isinstance(card_data(text), dict)
    assert all(p.message and "\n" not in p.message for p in lint_card(text))


@PROFILE
@given(record=st.one_of(json_values, st.dictionaries(
    st.sampled_from(["source", "options", "versions", "label", "created_at", "bits_per_weight"]), json_values)))
def test_any_provenance_file_never_breaks_the_library(record: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "m"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(LLAMA))
        (folder / modelfolder.PROVENANCE_FILE).write_text(json.dumps(record))
        clean = modelfolder.read_provenance(folder)
        assert clean is None or (isinstance(clean["options"], dict) and isinstance(clean["versions"], dict)
                                 and all(clean.get(k) is None or isinstance(clean[k], str)
                                         for k in ("source", "revision", "created_at", "label")))
        before = _snapshot(root)
        entries = LibraryService(Context(), models_dir=root, cache_dir=root / "none").list_sync()
        assert [e.name for e in entries] == ["m"]
        assert entries[0].source is None or isinstance(entries[0].source, str)
        assert isinstance(modelfolder.quant_label(LLAMA, (clean or {}).get("options")), str)
        assert _snapshot(root) == before


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(config_text=raw_configs)
def test_the_inspect_and_library_commands_answer_any_config(config_text: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    models = Context().settings.models_dir()  # the library lists it too
    models.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models) as tmp:
        folder = Path(tmp)
        (folder / "config.json").write_text(config_text, encoding="utf-8", errors="surrogateescape")
        (folder / modelfolder.PROVENANCE_FILE).write_text(config_text, encoding="utf-8", errors="surrogateescape")
        before = _snapshot(folder)
        code = main(["inspect", str(folder)])
        captured = capsys.readouterr()
        assert code in (0, 7), captured.err
        assert captured.err.count("\n") <= 1 and "Traceback" not in captured.err
        assert "\x1b" not in captured.out
        assert main(["library"]) == 0
        assert "Traceback" not in capsys.readouterr().err
        assert _snapshot(folder) == before


@pytest.mark.parametrize("label", ["4bit", "8bit", "4bit-g32", "mixed_3_6", "mxfp4", "bf16", "fp32"])
def test_one_size_estimator_for_a_label_and_for_convert_options(label: str) -> None:
    from mlxtui.services.convert_options import options_from_label

    options = options_from_label(label)
    assert estimate_bytes(10**9, label, "bfloat16", LLAMA) == estimate_bytes(10**9, options, "bfloat16", LLAMA)
    assert estimate_bytes(10**9, options.to_dict(), "bfloat16", LLAMA) == estimate_bytes(10**9, options, "bfloat16", LLAMA)


provenances = st.one_of(json_values, st.dictionaries(
    st.sampled_from(["source", "options", "versions", "label", "created_at", "bits_per_weight", "source_revision"]),
    json_values | st.dictionaries(st.sampled_from(["quantize", "q_bits", "q_mode", "q_group_size", "quant_predicate",
                                                   "dtype"]), json_values)))


@PROFILE
@given(config=configs, provenance=provenances)
def test_every_reader_of_a_config_answers_any_config(config: Any, provenance: Any) -> None:
    """Inspect, the support verdict, sizes, labels, the cluster planner, the card, the upload name and the Library:
    each answers any config.json and provenance file with a value or an MlxtuiError, never a traceback."""
    from mlxtui.services import card_build, cluster_plan, sizes, support, upload

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "model.safetensors").write_bytes(
            _safetensors({"w": {"dtype": "F16", "shape": [4, 4], "data_offsets": [0, 32]}}) + b"\0" * 32)
        (folder / modelfolder.PROVENANCE_FILE).write_text(json.dumps(provenance))
        readers = [
            lambda: _report_or_error(folder),
            lambda: modelfolder.is_quantized(config, provenance),
            lambda: modelfolder.quant_label(config, provenance.get("options") if isinstance(provenance, dict) else None),
            lambda: card_build.build_card(folder, source="a/b"),
            lambda: upload.suggest_repo_name(folder),
            lambda: LibraryService(Context(), models_dir=folder.parent, cache_dir=folder / "none").list_sync(),
        ]
        if isinstance(config, dict):
            readers += [
                lambda: support.verdict(config, ["model.safetensors"]),
                lambda: support.support_notes(config),
                lambda: [sizes.estimate_bytes(10**6, q, "bfloat16", config) for q in ("4bit", "bf16", "mixed_3_6")],
                lambda: sizes.kv_cache_bytes(config, 4096, 2),
                lambda: cluster_plan.split_support(config),
                lambda: cluster_plan.model_size(folder, config),
            ]
        for read in readers:
            try:
                read()
            except MlxtuiError as error:
                assert "\n" not in str(error)
        label = modelfolder.quant_label(config, provenance.get("options") if isinstance(provenance, dict) else None)
        assert label == "?" or ("/" not in label and ".." not in label)  # it becomes part of folder and repo names


@pytest.mark.parametrize("label_source", [{"q_mode": "../../x"}, {"q_mode": ["a"]}, {"quant_predicate": "a/b"}])
def test_a_label_from_a_strangers_file_never_names_another_folder(label_source: dict[str, Any]) -> None:
    assert modelfolder.quant_label(LLAMA, {"quantize": True, **label_source}) == "?"


@pytest.mark.parametrize("field, value", [("architectures", True), ("architectures", 7.5), ("architectures", {"a": 1}),
                                          ("model_type", ["llama"]), ("model_type", 5), ("model_type", {"x": 1})])
def test_a_mistyped_name_field_leaves_inspect_standing(tmp_path: Path, field: str, value: object) -> None:
    """issue 12's class: `{"architectures": true}` was a TypeError in Inspect's report (found by CI's fuzzing)."""
    (tmp_path / "config.json").write_text(json.dumps({**LLAMA, field: value}))
    report = _report_or_error(tmp_path)
    assert isinstance(report, InspectReport) and not report.supported
    assert any(field in p for p in report.problems)


@pytest.mark.parametrize("architectures", [1, "LlamaForCausalLM", {"a": 1}, [1, 2], [None], True])
def test_a_mistyped_architectures_field_is_a_problem_not_a_crash(architectures: object) -> None:
    from mlxtui.services.support import support_notes, verdict

    config = {"model_type": "llama", "architectures": architectures}
    assert support_notes(config) == []
    result = verdict(config, ["model.safetensors"])
    assert not result.supported and any("architectures" in p for p in result.problems)


_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
tokenizer_configs = st.dictionaries(
    st.sampled_from(["chat_template", "bos_token", "eos_token", "pad_token", "add_bos_token", "model_max_length",
                     "added_tokens_decoder"]),
    json_values | st.just(_TEMPLATE) | st.lists(st.dictionaries(st.sampled_from(["name", "template"]),
                                                                json_values | st.just(_TEMPLATE)), max_size=3),
    max_size=5)
generation_configs = json_values | st.dictionaries(
    st.sampled_from(["do_sample", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "eos_token_id"]),
    json_values, max_size=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokenizer_config=tokenizer_configs, generation_config=generation_configs)
def test_any_tokenizer_and_generation_config_leave_inspect_chat_and_card_standing(
        tokenizer_config: dict[str, Any], generation_config: Any) -> None:
    """A list of named templates whose names are lists, a bos_token that is a dict, a temperature that is a string..."""
    from mlxtui.services import card_build
    from mlxtui.services.chat_sampling import SamplingSettings, sampling_defaults

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.json").write_text(json.dumps(LLAMA))
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
        (folder / "generation_config.json").write_text(json.dumps(generation_config))
        before = _snapshot(folder)
        assert isinstance(_report_or_error(folder), InspectReport)
        assert isinstance(sampling_defaults(folder).validate(), SamplingSettings)
        template = modelfolder.chat_template_of(tokenizer_config)
        assert template is None or isinstance(template, str)
        assert card_build.build_card(folder, source="a/b").startswith("---")
        assert _snapshot(folder) == before


def test_a_named_template_list_with_odd_names_gives_the_default_or_none() -> None:
    assert modelfolder.chat_template_of({"chat_template": [{"name": ["x"], "template": "a"},
                                                           {"name": "default", "template": "b"}]}) == "b"
    assert modelfolder.chat_template_of({"chat_template": [{"name": {"a": 1}, "template": "a"}]}) is None

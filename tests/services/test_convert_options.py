"""Convert options, output naming and the checks made before any job starts (no worker runs here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlxtui.services import Context
from mlxtui.services import convert_plan
from mlxtui.services.convert import (
    ALLOW_PATTERNS,
    ConvertOptions,
    ConvertService,
    free_output,
    options_from_label,
    output_name,
)
from mlxtui.services.errors import ConversionError, InvalidInputError, NotFoundError, UnsupportedModelError


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (ConvertOptions(quantize=True, q_bits=4, q_mode="mxfp4", quant_predicate="mixed_3_6"), "only with affine"),
        (ConvertOptions(quantize=True, q_mode="mxfp4", q_group_size=64), "group size 32"),
        (ConvertOptions(quantize=True, q_mode="nvfp4", q_group_size=32), "group size 16"),
        (ConvertOptions(quantize=True, q_mode="mxfp8", q_bits=4), "8 bits"),
        (ConvertOptions(quantize=True, q_bits=7), "7 bits is not supported"),
        (ConvertOptions(quantize=True, dequantize=True), "exclude each other"),
        (ConvertOptions(quantize=True, q_group_size=48), "Group size 48"),
        (ConvertOptions(quantize=False, quant_predicate="mixed_3_6"), "needs quantization"),
        (ConvertOptions(dtype="float64"), "Unknown dtype"),
        (ConvertOptions(quantize=True, q_mode="int3"), "Unknown quantization mode"),
    ],
)
def test_combinations_mlx_lm_rejects_are_refused_with_a_reason(options: ConvertOptions, says: str) -> None:
    problems = options.problems()
    assert any(says in p for p in problems), problems
    with pytest.raises(InvalidInputError):
        options.validate()


@pytest.mark.parametrize(
    "options",
    [ConvertOptions(), ConvertOptions(dtype="bfloat16")]
    + [ConvertOptions(quantize=True, q_bits=b, q_group_size=g) for b in (2, 8) for g in (32, 128)]
    + [
        ConvertOptions(quantize=True, q_mode="mxfp4"),
        ConvertOptions(quantize=True, q_mode="mxfp4", q_bits=4, q_group_size=32),
        ConvertOptions(quantize=True, q_mode="nvfp4"),
        ConvertOptions(quantize=True, q_mode="mxfp8"),
        ConvertOptions(quantize=True, q_bits=3, q_group_size=64, quant_predicate="mixed_3_6"),
        ConvertOptions(dequantize=True),
    ],
)
def test_valid_combinations_pass(options: ConvertOptions) -> None:
    assert options.problems() == []


def test_labels_and_default_folder_names() -> None:
    assert ConvertOptions(quantize=True).label() == "4bit"
    assert ConvertOptions(quantize=True, q_bits=8).label() == "8bit"
    assert ConvertOptions(quantize=True, q_bits=4, q_group_size=32).label() == "4bit-g32"
    assert ConvertOptions(quantize=True, q_bits=3, quant_predicate="mixed_3_6").label() == "mixed_3_6"
    assert ConvertOptions(quantize=True, q_mode="mxfp4").label() == "mxfp4"
    assert ConvertOptions().label("bfloat16") == "bf16"
    assert ConvertOptions(dtype="float32").label("bfloat16") == "fp32"
    assert output_name("h2oai/h2o-danube2-tiny-chat", "4bit") == "h2o-danube2-tiny-chat-4bit"
    assert output_name("/models/my-model/", "bf16") == "my-model-bf16"


def test_mlx_lm_flags_round_trip() -> None:
    options = ConvertOptions(quantize=True, q_bits=3, q_group_size=32, quant_predicate="mixed_3_6", dtype="float32")
    assert options.mlx_lm_args() == [
        "-q", "--q-bits", "3", "--q-group-size", "32", "--quant-predicate", "mixed_3_6", "--dtype", "float32"
    ]
    assert ConvertOptions.from_dict(options.to_dict()) == options


def test_allow_patterns_match_mlx_lm() -> None:
    from mlx_lm.utils import DEFAULT_ALLOW_PATTERNS

    assert list(ALLOW_PATTERNS) == list(DEFAULT_ALLOW_PATTERNS)


def test_an_existing_folder_gets_a_free_name(tmp_path: Path) -> None:
    (tmp_path / "m-4bit").mkdir()
    (tmp_path / "m-4bit-2").mkdir()
    assert free_output(tmp_path / "m-4bit") == tmp_path / "m-4bit-3"
    assert free_output(tmp_path / "m-8bit") == tmp_path / "m-8bit"
    assert free_output(tmp_path / "m-8bit", reserved=[tmp_path / "m-8bit"]) == tmp_path / "m-8bit-2"


@pytest.fixture
def service() -> ConvertService:
    return ConvertService(Context(endpoint="http://127.0.0.1:9"))


async def test_plan_for_a_local_folder_names_the_default_output(service: ConvertService, make_tiny_model) -> None:
    folder = make_tiny_model("tiny")
    plan = await service.plan(str(folder), [ConvertOptions(quantize=True), ConvertOptions()])
    outputs = [p for _, p in plan.variants]
    assert outputs == [service.models_dir() / "tiny-4bit", service.models_dir() / "tiny-bf16"]
    assert plan.kind == "local" and plan.download_bytes == 0 and plan.parameters > 0


async def test_default_output_that_exists_is_replaced_by_a_free_name(service: ConvertService, make_tiny_model) -> None:
    folder = make_tiny_model("tiny")
    (service.models_dir() / "tiny-4bit").mkdir(parents=True)
    free, taken = service.suggest_output(str(folder), ConvertOptions(quantize=True))
    assert taken == service.models_dir() / "tiny-4bit" and free.name == "tiny-4bit-2"
    plan = await service.plan(str(folder), ConvertOptions(quantize=True))
    assert plan.variants[0][1].name == "tiny-4bit-2"


async def test_an_explicit_existing_output_is_refused(service: ConvertService, make_tiny_model, tmp_path: Path) -> None:
    folder = make_tiny_model("tiny")
    (tmp_path / "out").mkdir()
    with pytest.raises(InvalidInputError, match="already exists and is never overwritten. Use out-2"):
        await service.plan(str(folder), ConvertOptions(quantize=True), outputs=[tmp_path / "out"])


async def test_unsupported_architecture_is_refused_before_anything_runs(service: ConvertService, make_tiny_model) -> None:
    folder = make_tiny_model("fancy", model_type="fancynet")
    with pytest.raises(UnsupportedModelError, match="fancynet"):
        await service.plan(str(folder), ConvertOptions(quantize=True))
    assert service.jobs() == []


async def test_inspect_report_saying_unsupported_stops_convert(service: ConvertService, make_tiny_model) -> None:
    folder = make_tiny_model("tiny")
    report = {"supported": False, "problems": ["mlx-lm has no module for model_type 'fancynet'"]}
    with pytest.raises(UnsupportedModelError, match="no module for model_type"):
        await service.plan(str(folder), ConvertOptions(quantize=True), report=report)


async def test_missing_config_json(service: ConvertService, tmp_path: Path) -> None:
    folder = tmp_path / "empty-model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(InvalidInputError, match="has no config.json"):
        await service.plan(str(folder), ConvertOptions())


async def test_malformed_config_json(service: ConvertService, make_tiny_model) -> None:
    folder = make_tiny_model("broken", malformed_config=True)
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        await service.plan(str(folder), ConvertOptions())


async def test_no_weights(service: ConvertService, make_tiny_model) -> None:
    folder = make_tiny_model("noweights")
    for f in folder.glob("*.safetensors"):
        f.rename(f.with_name("pytorch_model.bin"))
    # the shared support verdict (services.support), the same words Inspect shows
    with pytest.raises(UnsupportedModelError, match="the weights are PyTorch .bin files only"):
        await service.plan(str(folder), ConvertOptions())


async def test_local_path_with_a_typo_says_no_folder_never_no_repo(service: ConvertService, tmp_path: Path) -> None:
    # issue 14: a path is named as a path ("no repo '/tmp/…'" called it a repo id)
    for path in (str(tmp_path / "modles" / "tiny"), "./tiny-modle", "~/no-such-model"):
        with pytest.raises(NotFoundError, match="There is no folder ") as raised:
            await service.plan(path, ConvertOptions())
        assert "repo" not in raised.value.message and path in raised.value.message
    with pytest.raises(NotFoundError, match="There is no folder '4' here and no repo '4'"):  # either could be meant
        await service.plan("4", ConvertOptions())


async def test_not_enough_disk_is_refused_before_starting(
    service: ConvertService, make_tiny_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_tiny_model("tiny")
    monkeypatch.setattr(convert_plan, "disk_free", lambda path: 1000)
    with pytest.raises(ConversionError, match="Not enough disk space"):
        await service.plan(str(folder), ConvertOptions(quantize=True))
    assert not service.models_dir().exists() or not any(service.models_dir().iterdir())


async def test_dequantizing_an_mlx_model_is_allowed(service: ConvertService, make_tiny_model, tmp_path: Path) -> None:
    folder = make_tiny_model("tiny")
    config = json.loads((folder / "config.json").read_text())
    config["quantization"] = {"group_size": 64, "bits": 4}
    (folder / "config.json").write_text(json.dumps(config))
    plan = await service.plan(str(folder), ConvertOptions(dequantize=True))
    assert plan.variants


@given(
    quantize=st.booleans(), q_bits=st.sampled_from([None, 2, 3, 4, 5, 6, 8]),
    q_group_size=st.sampled_from([None, 32, 64, 128]), q_mode=st.sampled_from(["affine", "mxfp4", "nvfp4", "mxfp8"]),
    recipe=st.sampled_from([None, "mixed_2_6", "mixed_3_6"]), dtype=st.sampled_from([None, "float16", "bfloat16", "float32"]),
    source_dtype=st.sampled_from([None, "bfloat16", "float32"]),
)
def test_the_label_is_the_model_folders_quant_label(quantize, q_bits, q_group_size, q_mode, recipe, dtype, source_dtype) -> None:
    """One quantization label: what Convert names a folder is what the Library, Card and Upload read back."""
    from mlxtui.services.modelfolder import quant_label

    options = ConvertOptions(quantize=quantize, q_bits=q_bits, q_group_size=q_group_size, q_mode=q_mode,
                             quant_predicate=recipe if quantize else None, dtype=dtype)
    assert options.label(source_dtype) == quant_label(options=options.to_dict(), source_dtype_hint=source_dtype)
    if quantize and not options.problems():
        assert options_from_label(options.label()).label() == options.label()


@pytest.mark.parametrize("options", [
    ConvertOptions(q_bits=4), ConvertOptions(q_group_size=32), ConvertOptions(q_mode="mxfp4"),
    ConvertOptions(q_bits=8, dequantize=True),
])
def test_quantization_settings_without_quantize_are_a_problem_not_a_silent_bf16(options: ConvertOptions) -> None:
    problems = options.problems()
    assert any("need quantization switched on" in p for p in problems), problems
    with pytest.raises(InvalidInputError, match="switched on"):
        options.validate()

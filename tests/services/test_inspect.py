"""Pure inspect logic: the mlx-lm verdict, bits per weight and sizes as mlx quantizes, KV cache, template dry runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlxtui.devhub.models import CHATML_TEMPLATE, DANUBE_TEMPLATE, LLAMA3_TEMPLATE, ZEPHYR_TEMPLATE
from mlxtui.services.errors import InvalidInputError, NotFoundError
from mlxtui.services.inspect import (
    QUANTIZATIONS,
    bits_per_weight,
    build_report,
    chat_template_dry_run,
    chat_template_of,
    estimate_bytes,
    estimate_parameters,
    kv_cache_bytes,
    machine_memory_bytes,
    mlx_lm_module_for,
    parse_config,
    read_local_folder,
    support_problems,
)

LLAMA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1024,
    "torch_dtype": "bfloat16",
}


# --- verdict -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_type, architectures",
    [("llama", []), ("mistral", []), ("qwen2", []), ("llava", []), ("phi-msft", []), ("fancynet", []),
     ("bailing_hybrid", ["BailingMoeV3ForCausalLM"]), ("gemma3", [])],
)
def test_module_lookup_agrees_with_mlx_lm_get_classes(model_type: str, architectures: list[str]) -> None:
    from mlx_lm.utils import _get_classes

    try:
        model_class, _ = _get_classes({"model_type": model_type, "architectures": architectures})
        expected = model_class.__module__.rsplit(".", 1)[-1]
    except ValueError:
        expected = None
    assert mlx_lm_module_for(model_type, architectures) == expected


def test_supported_llama_has_no_problems() -> None:
    assert support_problems(LLAMA) == []
    assert support_problems({**LLAMA, "model_type": "mistral"}) == []


def test_unknown_model_type_has_no_module() -> None:
    (problem,) = support_problems({**LLAMA, "model_type": "fancynet"})
    assert "no module for model_type 'fancynet'" in problem


def test_vision_language_model_points_to_mlx_vlm() -> None:
    problems = support_problems({"model_type": "idefics9", "architectures": ["Idefics9ForConditionalGeneration"],
                                 "vision_config": {"hidden_size": 32}, "text_config": {"hidden_size": 64}})
    assert any("vision-language" in p and "mlx-vlm" in p for p in problems)


def test_vision_language_model_mlx_lm_supports_gets_a_note() -> None:
    from mlxtui.services.inspect import support_notes

    config = {"model_type": "qwen2_vl", "architectures": ["Qwen2VLForConditionalGeneration"], "vision_config": {}}
    assert support_problems(config) == []
    assert any("text part only" in n and "mlx-vlm" in n for n in support_notes(config))


def test_auto_map_needs_trust_remote_code() -> None:
    problems = support_problems({**LLAMA, "auto_map": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}})
    assert any("trust_remote_code" in p for p in problems)


@pytest.mark.parametrize(
    "quantization_config, label",
    [({"quant_method": "awq", "bits": 4}, "AWQ"), ({"quant_method": "gptq", "bits": 4}, "GPTQ"),
     ({"quant_method": "fp8"}, "FP8"), ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "bitsandbytes"),
     ({"load_in_8bit": True}, "bitsandbytes")],
)
def test_already_quantized_source(quantization_config: dict, label: str) -> None:
    problems = support_problems({**LLAMA, "quantization_config": quantization_config})
    assert any("already quantized" in p and label in p for p in problems)


def test_folder_that_is_already_mlx() -> None:
    q = {"group_size": 64, "bits": 4, "mode": "affine"}
    problems = support_problems({**LLAMA, "quantization": q, "quantization_config": q})
    assert len(problems) == 1 and "already an MLX 4-bit model" in problems[0]


@pytest.mark.parametrize("name", ["weights.npz", "weights.00.safetensors"])
def test_old_mlx_weight_names_mean_already_mlx(name: str) -> None:
    assert any("already an MLX" in p for p in support_problems(LLAMA, ["config.json", name]))
    assert support_problems(LLAMA, ["config.json", "model.safetensors"]) == []


def test_missing_model_type() -> None:
    config = dict(LLAMA)
    del config["model_type"]
    assert any("no model_type" in p for p in support_problems(config))


@pytest.mark.parametrize(
    "patch, needle",
    [({"model_type": 3}, "model_type should be a non-empty string"),
     ({"architectures": "LlamaForCausalLM"}, "architectures should be a list of strings"),
     ({"hidden_size": "128"}, "hidden_size should be a whole number"),
     ({"quantization_config": "awq"}, "quantization_config should be an object")],
)
def test_wrong_types_are_named(patch: dict, needle: str) -> None:
    assert any(needle in p for p in support_problems({**LLAMA, **patch}))


def test_config_that_is_not_an_object() -> None:
    assert support_problems([1, 2]) == ["config.json holds a list, not a JSON object"]  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="not a JSON object"):
        parse_config("[1, 2]")


def test_malformed_json_says_where() -> None:
    with pytest.raises(InvalidInputError, match="not valid JSON.*line 1"):
        parse_config('{"model_type": "llama",}')


# --- sizes ---------------------------------------------------------------------------------------


def test_bits_per_weight_counts_scales_and_biases() -> None:
    # affine: a bf16 scale and a bf16 bias per group of 64 weights = 0.5 extra bits per weight
    assert bits_per_weight("4bit") == 4.5
    assert bits_per_weight("8bit") == 8.5
    assert bits_per_weight("2bit") == 2.5
    assert bits_per_weight("4bit-g32") == 5.0
    assert bits_per_weight("4bit", scale_bits=32) == 5.0  # float32 sources keep float32 scales
    assert bits_per_weight("mxfp4") == 4.25  # one 8-bit shared exponent per 32
    assert bits_per_weight("bf16") == 16
    for recipe, (low, high) in {"mixed_2_6": (2, 6), "mixed_3_6": (3, 6), "mixed_4_6": (4, 6)}.items():
        assert low + 0.5 < bits_per_weight(recipe, config=LLAMA) < high + 0.5


def test_unknown_quantization_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        bits_per_weight("7bit")
    with pytest.raises(InvalidInputError):
        bits_per_weight("q4_k_m")


def test_estimate_bytes_matches_a_real_mlx_lm_conversion(generated_models: dict[str, Path]) -> None:
    source = read_local_folder(generated_models["h2oai/h2o-danube2-tiny-chat"])
    converted = generated_models["mlx-community/h2o-danube2-tiny-chat-4bit"]
    actual = sum(p.stat().st_size for p in converted.glob("*.safetensors"))
    estimate = estimate_bytes(source.safetensors_total or 0, "4bit")
    assert abs(estimate - actual) / actual < 0.05, (estimate, actual)


def test_parameters_estimated_from_config_match_the_weights(generated_models: dict[str, Path]) -> None:
    folder = generated_models["TinyLlama/TinyLlama-tiny-Chat-v1.0"]
    config = json.loads((folder / "config.json").read_text())
    report = build_report(read_local_folder(folder), memory_bytes=2**34, free_disk_bytes=2**40)
    assert report.parameters == estimate_parameters(config)


def test_kv_cache_formula() -> None:
    # 2 (k and v) * layers * kv_heads * head_dim * tokens * 2 bytes
    assert kv_cache_bytes(LLAMA, 4096) == 2 * 2 * 2 * 32 * 4096 * 2
    assert kv_cache_bytes({"model_type": "x"}, 4096) is None


def test_machine_memory_is_known() -> None:
    assert (machine_memory_bytes() or 0) > 2**28


def test_fits_memory_and_disk_are_judged() -> None:
    from mlxtui.services.inspect import ModelFiles

    files = ModelFiles(source="org/big", config_text=json.dumps(LLAMA), safetensors_total=8_000_000_000,
                       files={"config.json": 600, "model.safetensors": 16_000_000_000})
    report = build_report(files, memory_bytes=16 * 2**30, free_disk_bytes=10 * 2**30)
    fits = report.memory["fits"]
    assert fits["bf16"] is False and fits["4bit"] is True
    assert report.disk["download_bytes"] == 16_000_000_600
    assert report.disk["fits"] is False
    assert [e["quantization"] for e in report.estimates] == QUANTIZATIONS


# --- chat template -------------------------------------------------------------------------------

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>"}


def test_template_that_raises_on_system() -> None:
    result = chat_template_dry_run(DANUBE_TEMPLATE, SPECIAL)
    assert result["renders"] and result["system_role"] is False
    assert result["error"] == "System role not supported"


@pytest.mark.parametrize("template", [LLAMA3_TEMPLATE, CHATML_TEMPLATE, ZEPHYR_TEMPLATE])
def test_templates_that_accept_system(template: str) -> None:
    result = chat_template_dry_run(template, SPECIAL)
    assert result["renders"] and result["system_role"] is True and result["error"] is None


def test_template_that_drops_system() -> None:
    template = "{% for m in messages %}{% if m.role != 'system' %}{{ m.content }}{% endif %}{% endfor %}"
    result = chat_template_dry_run(template)
    assert result["system_role"] is False and "drops" in result["error"]


def test_template_runs_sandboxed() -> None:
    result = chat_template_dry_run("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    assert result["renders"] is False and result["error"]


def test_broken_template_is_reported() -> None:
    result = chat_template_dry_run("{% for m in messages %}")
    assert result["renders"] is False and "does not compile" in result["error"]


def test_template_sources() -> None:
    assert chat_template_of({"chat_template": "A"}, "B") == "B"  # chat_template.jinja wins
    assert chat_template_of({"chat_template": [{"name": "tool_use", "template": "T"},
                                               {"name": "default", "template": "D"}]}) == "D"
    assert chat_template_of({"chat_template": ""}) is None
    assert chat_template_of(None) is None


# --- local folders -------------------------------------------------------------------------------


def test_local_folder_report(generated_models: dict[str, Path]) -> None:
    report = build_report(read_local_folder(generated_models["NousResearch/Llama-3-tiny-Instruct"]))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["supported"] and data["local"] and data["model_type"] == "llama"
    assert data["parameters"] and data["parameters_source"] == "safetensors metadata"
    assert data["chat_template"] == data["chat_template"] | {"present": True, "system_role": True}
    assert data["disk"]["download_bytes"] == 0


def test_local_mlx_folder_is_already_mlx(generated_models: dict[str, Path]) -> None:
    report = build_report(read_local_folder(generated_models["mlx-community/h2o-danube2-tiny-chat-4bit"]))
    assert not report.supported and any("already an MLX" in p for p in report.problems)


def test_local_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        read_local_folder(tmp_path / "nope")


def test_local_folder_without_config(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\nhello\n")
    report = build_report(read_local_folder(tmp_path))
    assert not report.supported and "no config.json" in report.problems[0]
    assert report.license == "mit"

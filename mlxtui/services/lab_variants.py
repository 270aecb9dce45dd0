"""The lab's variant names and what each one needs, checked before anything runs.

Names follow mlx-community's folder suffixes and mlxtui's one quantization label (modelfolder.quant_label,
ConvertOptions.label): ``8bit``, ``6bit``, ``5bit``, ``4bit``, ``3bit``, ``2bit``, ``4bit-g32`` (a group size
other than 64; ``4bit-gs32`` is accepted and means the same), ``mxfp4``, ``nvfp4``, ``mxfp8``, ``mixed_2_6``,
``mixed_3_4``, ``mixed_3_6``, ``mixed_4_6``; and the learned methods mlx-lm ships: ``4bit-gptq`` (2, 4 or 8
bits), ``4bit-awq``, ``4bit-dwq`` and ``4.5bit-dq`` (dynamic quantization to a target bits per weight).
Import-light: no mlx here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mlxtui.services.convert_options import MODE_FIXED, RECIPES, ConvertOptions, options_from_label
from mlxtui.services.errors import InvalidInputError, UnsupportedModelError

__all__ = ["LEARNED", "AWQ_MODEL_TYPES", "LabVariant", "parse_variant", "parse_variants", "check_variant"]

#: learned methods and the mlx-lm module that implements each
LEARNED = {"gptq": "mlx_lm.quant.gptq", "awq": "mlx_lm.quant.awq", "dwq": "mlx_lm.quant.dwq", "dq": "mlx_lm.quant.dynamic_quant"}
#: mlx_lm.quant.awq.AWQ_MODEL_CONFIGS's keys (a test keeps them equal): AWQ needs a per-architecture map
AWQ_MODEL_TYPES = frozenset({"llama", "mistral", "ministral3", "mistral3", "llava", "qwen2", "qwen3", "gemma3_text",
                             "gemma3", "deepseek_v2"})
_GPTQ_BITS = (2, 4, 8)
_NAMES_HELP = "e.g. 8bit, 4bit, 4bit-g32, mxfp4, nvfp4, mxfp8, mixed_3_6, 4bit-gptq, 4bit-awq, 4bit-dwq, 4.5bit-dq"


@dataclass(frozen=True)
class LabVariant:
    """One variant: its canonical name and either convert options or a learned method with its settings."""

    name: str
    options: ConvertOptions | None = None  # a plain mlx_lm.convert variant
    method: str | None = None  # gptq | awq | dwq | dq
    bits: int = 4
    group_size: int = 64
    target_bpw: float | None = None  # dq only
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def learned(self) -> bool:
        return self.method is not None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "bits": self.bits, "group_size": self.group_size,
                "target_bpw": self.target_bpw, "options": self.options.to_dict() if self.options else None}


def parse_variant(text: str) -> LabVariant:
    """A variant name -> LabVariant, or InvalidInputError naming the accepted forms."""
    raw = text.strip()
    name = raw.lower().replace("-gs", "-g")
    if match := re.fullmatch(r"(\d+)bit(?:-g(\d+))?-(gptq|awq|dwq)", name):
        bits, method = int(match.group(1)), match.group(3)
        group = int(match.group(2) or 64)
        canonical = f"{bits}bit" + (f"-g{group}" if group != 64 else "") + f"-{method}"
        ConvertOptions(quantize=True, q_bits=bits, q_group_size=group).validate()
        return LabVariant(canonical, method=method, bits=bits, group_size=group)
    if match := re.fullmatch(r"(\d+(?:\.\d+)?)bit-dq", name):
        target = float(match.group(1))
        if not 2.0 <= target < 8.0:
            raise InvalidInputError(f"Dynamic quantization needs a target between 2 and 8 bits per weight, not {target:g}.")
        low = int(target)
        return LabVariant(f"{target:g}bit-dq", method="dq", bits=low, target_bpw=target)
    if mode := _mode_from_recipe(name):
        recipe = name.partition("-")[0]
        raise InvalidInputError(f"{raw}: recipes like {recipe} work only with affine quantization, not {mode}.")
    try:
        options = options_from_label(name)
    except InvalidInputError:
        raise InvalidInputError(f"Unknown variant {raw!r}: use {_NAMES_HELP}.") from None
    if not options.quantize:
        raise InvalidInputError(f"{raw!r} is not a quantization; the lab compares quantized variants ({_NAMES_HELP}).")
    options.validate()
    return LabVariant(options.label(), options=options, bits=options.bits or 4, group_size=options.group_size or 64)


def parse_variants(text: str | list[str]) -> list[LabVariant]:
    """A comma-separated list (or list) of names -> variants, in order, without duplicates."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[LabVariant] = []
    for item in items:
        if item.strip():
            variant = parse_variant(item)
            if variant.name not in {v.name for v in out}:
                out.append(variant)
    if not out:
        raise InvalidInputError(f"Name at least one variant ({_NAMES_HELP}).")
    return out


def _mode_from_recipe(name: str) -> str | None:
    """'mixed_3_6-mxfp4' style input: a recipe asked with a non-affine mode."""
    recipe, _, mode = name.partition("-")
    return mode if recipe in RECIPES and mode in MODE_FIXED else None


def check_variant(variant: LabVariant, config: dict[str, Any]) -> None:
    """UnsupportedModelError when this model's architecture cannot take the variant (said before any work)."""
    model_type = str(config.get("model_type") or "")
    if variant.method == "gptq" and variant.bits not in _GPTQ_BITS:
        raise UnsupportedModelError(
            f"{variant.name}: mlx-lm's GPTQ packs only 2, 4 or 8 bits, not {variant.bits}."
        )
    if variant.method == "awq" and model_type not in AWQ_MODEL_TYPES:
        raise UnsupportedModelError(
            f"{variant.name}: mlx-lm's AWQ has no layer map for {model_type or 'this'} models "
            f"(it knows {', '.join(sorted(AWQ_MODEL_TYPES))})."
        )
    # the mixed recipes' need for down_proj layers is checked on the model itself (services/lab.py)


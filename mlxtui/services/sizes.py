"""How big a model is and will be: parameters from a config, bits per weight as mlx quantizes, bytes, KV cache.

The one size estimator: Inspect's table and Convert's disk check both call `estimate_bytes`, so they cannot
disagree. Pure functions over plain dicts and labels (the labels `modelfolder.quant_label` gives); nothing
heavy is imported.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from mlxtui.services.errors import InvalidInputError
from mlxtui.services.modelfolder import quant_label

__all__ = [
    "QUANTIZATIONS",
    "KV_CONTEXTS",
    "DTYPE_BYTES",
    "parse_label",
    "bits_per_weight",
    "estimate_bytes",
    "estimate_parameters",
    "kv_cache_bytes",
    "dtype_bytes",
    "machine_memory_bytes",
    "free_disk",
]

#: the estimates Inspect shows for every model, in this order (names as folder labels and the Convert pane use them)
QUANTIZATIONS = ["bf16", "8bit", "6bit", "4bit", "3bit", "2bit", "mxfp4", "mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6"]
#: context lengths the KV cache is sized for
KV_CONTEXTS = [4096, 32768]
#: bytes per element, by config dtype name and by safetensors dtype name
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "I8": 1}

_RECIPES = {"mixed_2_6": (2, 6), "mixed_3_4": (3, 4), "mixed_3_6": (3, 6), "mixed_4_6": (4, 6)}
_FIXED = {"mxfp4": (4, 32), "mxfp8": (8, 32), "nvfp4": (4, 16)}
_FLOATS = {"bf16": 16, "fp16": 16, "float16": 16, "bfloat16": 16, "fp32": 32, "float32": 32}


def _int(config: dict[str, Any], *keys: str, default: int | None = None) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return default


def _merged(config: dict[str, Any]) -> dict[str, Any]:
    """The language-model part of a config: top level, or `text_config` (with top-level keys as fallbacks)."""
    text = config.get("text_config") if isinstance(config, dict) else None
    if isinstance(text, dict):
        merged = dict(text)
        for key, value in config.items():
            merged.setdefault(key, value)
        return merged
    return config if isinstance(config, dict) else {}


def dtype_bytes(dtype: str | None) -> int:
    """Bytes per element of a float dtype name (2 when unknown: bf16/fp16 is what models ship)."""
    return DTYPE_BYTES.get(dtype or "", 2)


def _layer_shapes(config: dict[str, Any] | None) -> dict[str, int] | None:
    """Parameter counts by kind for a Llama-family decoder, or None when the config lacks the sizes."""
    if not isinstance(config, dict):
        return None
    c = _merged(config)
    h = _int(c, "hidden_size", "n_embd", "d_model")
    layers = _int(c, "num_hidden_layers", "n_layer", "num_layers")
    vocab = _int(c, "vocab_size")
    if not (h and layers and vocab):
        return None
    heads = _int(c, "num_attention_heads", "n_head", default=max(1, h // 64)) or 1
    kv_heads = _int(c, "num_key_value_heads", "num_kv_heads", default=heads) or heads
    head_dim = _int(c, "head_dim", default=h // heads) or (h // heads)
    inter = _int(c, "intermediate_size", "ffn_dim", "n_inner", default=4 * h) or 4 * h
    experts = _int(c, "num_local_experts", "n_routed_experts", "num_experts", default=1) or 1
    moe_inter = (_int(c, "moe_intermediate_size", default=inter) or inter) if experts > 1 else inter
    shared = _int(c, "n_shared_experts", "num_shared_experts", default=0) or 0
    tied = c.get("tie_word_embeddings", False) is True
    q, kv = heads * head_dim, kv_heads * head_dim
    return {
        "layers": layers,
        "embed": vocab * h,
        "lm_head": 0 if tied else vocab * h,
        "q": h * q,
        "k": h * kv,
        "v": h * kv,
        "o": q * h,
        "gate_up": 2 * h * moe_inter * experts + 2 * h * inter * shared,
        "down": h * moe_inter * experts + h * inter * shared,
        "norms": 2 * h,
    }


def estimate_parameters(config: dict[str, Any] | None) -> int | None:
    """Parameter count estimated from the config's sizes (a Llama-family decoder), or None."""
    shapes = _layer_shapes(config)
    if shapes is None:
        return None
    per_layer = sum(shapes[k] for k in ("q", "k", "v", "o", "gate_up", "down", "norms"))
    hidden = _int(_merged(config or {}), "hidden_size") or 0
    return shapes["embed"] + shapes["lm_head"] + shapes["layers"] * per_layer + hidden


def parse_label(label: str) -> tuple[str, int, int, tuple[int, int] | None]:
    """(mode, bits, group_size, recipe) of a label: "4bit", "4bit-g32", "mxfp4", "mixed_3_6", "bf16".

    mode is "none" for float labels (bits 16 or 32, group 0). InvalidInputError for anything else.
    """
    q = str(label).strip().lower()
    if q in _FLOATS:
        return "none", _FLOATS[q], 0, None
    if q in _RECIPES:
        return "affine", _RECIPES[q][0], 64, _RECIPES[q]
    if q in _FIXED:
        return q, _FIXED[q][0], _FIXED[q][1], None
    match = re.fullmatch(r"(\d)[-_]?bits?(?:[-_]g(\d{1,4}))?", q)
    if match:
        bits, group = int(match.group(1)), int(match.group(2) or 64)
        if bits not in (1, 2, 3, 4, 5, 6, 8) or group not in (32, 64, 128):
            raise InvalidInputError(f"{label!r}: mlx-lm quantizes to 1-6 or 8 bits with group size 32, 64 or 128.")
        return "affine", bits, group, None
    raise InvalidInputError(
        f"Unknown quantization {label!r}; use one of {', '.join(QUANTIZATIONS)} (or e.g. 4bit-g32)."
    )


def _high_bit_share(config: dict[str, Any] | None) -> float:
    """The fraction of weights mlx-lm's mixed recipe keeps at high bits (from the config's shapes)."""
    shapes = _layer_shapes(config)
    if shapes is None:
        return 0.2  # typical for Llama-family models
    n = shapes["layers"]
    more = sum(1 for i in range(n) if i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2)
    high = more * (shapes["v"] + shapes["down"]) + shapes["lm_head"]
    per_layer = sum(shapes[k] for k in ("q", "k", "v", "o", "gate_up", "down"))
    total = shapes["embed"] + shapes["lm_head"] + n * per_layer
    return high / total if total else 0.2


def bits_per_weight(label: str, *, scale_bits: int = 16, config: dict[str, Any] | None = None,
                    group_size: int | None = None) -> float:
    """Average stored bits per weight at `label`, counting scales and biases as mlx quantizes them.

    Affine: each group of `group_size` weights stores a scale and a bias in the model's dtype (`scale_bits`,
    16 for bf16/fp16): bits + 2*scale_bits/group_size. mxfp4/mxfp8: one 8-bit shared exponent per 32 weights;
    nvfp4: one 8-bit scale per 16. Mixed recipes average their low and high bits over the layers mlx-lm's
    predicate gives more bits (v_proj, down_proj in 3 of 8 layers, lm_head).
    """
    mode, bits, group, recipe = parse_label(label)
    if mode == "none":
        return float(bits)
    if mode in _FIXED:
        return bits + 8 / group
    group = group_size if group_size in (32, 64, 128) else group
    overhead = 2 * scale_bits / group
    if recipe is None:
        return bits + overhead
    low, high = recipe
    return low + (high - low) * _high_bit_share(config) + overhead


def _options_dict(options: Any) -> dict[str, Any] | None:
    if isinstance(options, dict):
        return options
    to_dict = getattr(options, "to_dict", None)
    return to_dict() if callable(to_dict) else None


def estimate_bytes(parameters: int, label_or_options: Any, source_dtype: str | None = None,
                   config: dict[str, Any] | None = None, *, scale_bits: int | None = None) -> int:
    """Bytes of the MLX weights for `parameters` weights stored as `label_or_options`.

    `label_or_options` is a label ("4bit", "mixed_3_6", "bf16" ...) or Convert's options (a ConvertOptions,
    or its to_dict() / a provenance file's "options"). Scales are stored in the dtype the model is cast to
    (the options' dtype, else `source_dtype`), as mlx_lm.convert does; `scale_bits` overrides that.
    """
    options = _options_dict(label_or_options)
    group = None
    if options is not None:
        label = quant_label(None, options, source_dtype_hint=source_dtype)
        if label == "?":
            label = "bf16"
        cast = options.get("dtype") if isinstance(options.get("dtype"), str) else None
        group = options.get("q_group_size") if isinstance(options.get("q_group_size"), int) else None
    else:
        label, cast = str(label_or_options), None
    if scale_bits is None:
        scale_bits = 8 * dtype_bytes(cast or source_dtype)
    bpw = bits_per_weight(label, scale_bits=scale_bits, config=config, group_size=group)
    return int(math.ceil(max(0, int(parameters)) * bpw / 8))


def kv_cache_bytes(config: dict[str, Any] | None, tokens: int, dtype_size: int = 2) -> int | None:
    """Keys and values for `tokens` tokens across all layers: 2 * layers * kv_heads * head_dim * tokens * dtype."""
    if not isinstance(config, dict):
        return None
    c = _merged(config)
    h = _int(c, "hidden_size", "n_embd", "d_model")
    layers = _int(c, "num_hidden_layers", "n_layer", "num_layers")
    if not (h and layers):
        return None
    heads = _int(c, "num_attention_heads", "n_head", default=max(1, h // 64)) or 1
    kv_heads = _int(c, "num_key_value_heads", "num_kv_heads", default=heads) or heads
    head_dim = _int(c, "head_dim", default=h // heads) or (h // heads)
    window = _int(c, "sliding_window")
    if window and c.get("use_sliding_window", True) is not False and c.get("model_type") in ("mistral",):
        tokens = min(tokens, window)  # mlx-lm's Mistral uses a rotating cache of the window size
    return 2 * layers * kv_heads * head_dim * tokens * dtype_size


def machine_memory_bytes() -> int | None:
    """Physical memory: sysctl hw.memsize on macOS, else sysconf pages, else /proc/meminfo."""
    if sys.platform == "darwin":
        import subprocess

        try:
            return int(subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True, timeout=2).stdout)
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def free_disk(path: Path) -> int | None:
    """Free bytes on the filesystem that holds `path` (or its nearest existing parent)."""
    path = Path(path).expanduser()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None

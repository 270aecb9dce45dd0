"""What a config.json means before anything is downloaded: mlx-lm support, sizes, memory, template quirks.

The pure functions here (`support_problems`, `estimate_bytes`, `bits_per_weight`, `kv_cache_bytes`,
`chat_template_dry_run`, ...) take plain dicts and never touch the network; `InspectService` gathers the
small files through `HubService` (or a local folder) and builds an `InspectReport`.

Nothing heavy is imported here: mlx-lm's remapping is read from its source text and its model modules are
found with `importlib`'s path finder, so no mlx/transformers import happens to answer "is this supported?".
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlxtui.services import Context
from mlxtui.services.errors import InvalidInputError, MlxtuiError, NotFoundError
from mlxtui.services.events import Notice

__all__ = [
    "QUANTIZATIONS",
    "KV_CONTEXTS",
    "InspectReport",
    "InspectService",
    "ModelFiles",
    "support_problems",
    "support_notes",
    "mlx_lm_module_for",
    "bits_per_weight",
    "estimate_bytes",
    "estimate_parameters",
    "kv_cache_bytes",
    "chat_template_of",
    "chat_template_dry_run",
    "machine_memory_bytes",
    "validate_config",
    "parse_config",
    "build_report",
]

#: the estimates shown for every model, in this order (names as the Convert pane and folder names use them)
QUANTIZATIONS = ["bf16", "8bit", "6bit", "4bit", "3bit", "2bit", "mxfp4", "mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6"]
#: context lengths the KV cache is sized for
KV_CONTEXTS = [4096, 32768]

_RECIPES = {"mixed_2_6": (2, 6), "mixed_3_4": (3, 4), "mixed_3_6": (3, 6), "mixed_4_6": (4, 6)}
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "I8": 1}
#: quant_method values of sources that are already quantized (transformers' quantization_config)
_PREQUANTIZED = {
    "awq": "AWQ",
    "gptq": "GPTQ",
    "fp8": "FP8",
    "bitsandbytes": "bitsandbytes",
    "bitsandbytes_4bit": "bitsandbytes",
    "bitsandbytes_8bit": "bitsandbytes",
    "compressed-tensors": "compressed-tensors",
    "hqq": "HQQ",
    "eetq": "EETQ",
    "quanto": "quanto",
    "aqlm": "AQLM",
    "fbgemm_fp8": "FP8",
}


# --- mlx-lm support ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _mlx_lm_dir() -> Path | None:
    """Where the installed mlx_lm package lives, found without importing it (its __init__ loads mlx)."""
    spec = importlib.util.find_spec("mlx_lm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=1)
def _mlx_lm_remapping() -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """MODEL_REMAPPING and MODEL_ARCHITECTURE_REMAPPING of the installed mlx_lm.utils, read from its source.

    Importing mlx_lm.utils costs about a second (mlx, transformers); the two tables are plain literals.
    """
    root = _mlx_lm_dir()
    remap: dict[str, str] = {}
    arch_remap: dict[tuple[str, str], str] = {}
    if root is None:
        return remap, arch_remap
    if "mlx_lm.utils" in sys.modules:  # already loaded (e.g. in a conversion worker): use the real thing
        module = sys.modules["mlx_lm.utils"]
        return dict(getattr(module, "MODEL_REMAPPING", {})), dict(getattr(module, "MODEL_ARCHITECTURE_REMAPPING", {}))
    try:
        tree = ast.parse((root / "utils.py").read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return remap, arch_remap
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("MODEL_REMAPPING", "MODEL_ARCHITECTURE_REMAPPING"):
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    continue
                if name == "MODEL_REMAPPING":
                    remap = dict(value)
                else:
                    arch_remap = dict(value)
    if not remap:  # the table is no longer a plain literal: pay for the import rather than guess
        try:
            module = importlib.import_module("mlx_lm.utils")
        except ImportError:
            return remap, arch_remap
        return dict(getattr(module, "MODEL_REMAPPING", {})), dict(getattr(module, "MODEL_ARCHITECTURE_REMAPPING", {}))
    return remap, arch_remap


def mlx_lm_version() -> str | None:
    """The installed mlx-lm version, from its _version.py (no import of the package)."""
    root = _mlx_lm_dir()
    if root is None:
        return None
    try:
        match = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", (root / "_version.py").read_text(encoding="utf-8"))
    except OSError:
        return None
    return match.group(1) if match else None


def mlx_lm_module_for(model_type: str, architectures: list[str] | tuple[str, ...] = ()) -> str | None:
    """The mlx_lm.models module name mlx-lm's `_get_classes` would import for this config, or None if none exists.

    Follows mlx_lm.utils._get_classes: architecture-specific remapping first, then MODEL_REMAPPING.
    """
    root = _mlx_lm_dir()
    if root is None:
        return None
    remap, arch_remap = _mlx_lm_remapping()
    target = model_type
    for architecture in architectures:
        remapped = arch_remap.get((model_type, architecture))
        if remapped is not None:
            target = remapped
            break
    else:
        target = remap.get(model_type, model_type)
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", target):
        return None
    models = root / "models"
    if (models / f"{target}.py").is_file() or (models / target / "__init__.py").is_file():
        return target
    return None


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The language-model part of a config: top level, or `text_config` for multimodal wrappers."""
    text = config.get("text_config")
    if isinstance(text, dict):
        merged = dict(text)
        for key, value in config.items():
            merged.setdefault(key, value)
        return merged
    return config


def _is_vision_language(config: dict[str, Any]) -> bool:
    architectures = config.get("architectures") or []
    return "vision_config" in config or any(
        isinstance(a, str) and ("VL" in a or "Vision" in a or "Llava" in a) for a in architectures
    )


def validate_config(config: Any) -> list[str]:
    """Shape problems of a parsed config.json (missing model_type, wrong types); empty when well-formed."""
    if not isinstance(config, dict):
        return [f"config.json holds a {type(config).__name__}, not a JSON object"]
    problems: list[str] = []
    model_type = config.get("model_type")
    if model_type is None:
        problems.append("config.json has no model_type, so mlx-lm cannot tell which architecture to build")
    elif not isinstance(model_type, str) or not model_type:
        problems.append(f"config.json model_type should be a non-empty string, not {model_type!r}")
    architectures = config.get("architectures")
    if architectures is not None and not (
        isinstance(architectures, list) and all(isinstance(a, str) for a in architectures)
    ):
        problems.append(f"config.json architectures should be a list of strings, not {architectures!r}")
    text = _text_config(config)
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size",
                "intermediate_size", "head_dim"):
        value = text.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            problems.append(f"config.json {key} should be a whole number, not {value!r}")
    for key in ("quantization_config", "quantization", "auto_map", "text_config", "vision_config"):
        value = config.get(key)
        if value is not None and not isinstance(value, dict):
            problems.append(f"config.json {key} should be an object, not {value!r}")
    return problems


def parse_config(text: str | bytes) -> dict[str, Any]:
    """Parse config.json text; raises InvalidInputError saying where the JSON is broken."""
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"config.json is not valid JSON ({error}).") from error
    if not isinstance(config, dict):
        raise InvalidInputError(f"config.json holds a {type(config).__name__}, not a JSON object.")
    return config


def _looks_like_mlx(config: dict[str, Any], files: list[str] | None) -> bool:
    if isinstance(config.get("quantization"), dict):
        return True
    names = [n.rsplit("/", 1)[-1] for n in files or []]
    # Older mlx-lm / mlx-examples saved weights.npz or weights.00.safetensors; transformers never does.
    return any(re.fullmatch(r"weights(\.\d+)?\.(npz|safetensors)", n) for n in names)


def support_problems(config: dict, files: list[str] | None = None) -> list[str]:
    """Why the installed mlx-lm cannot convert this model; an empty list means it can.

    `files` (repo or folder file names), when given, sharpens the "already MLX" check.
    """
    problems = validate_config(config)
    if problems or not isinstance(config, dict):
        return problems
    model_type: str = config["model_type"]
    architectures = list(config.get("architectures") or [])
    if config.get("auto_map"):
        problems.append(
            "config.json has auto_map: the model needs its own Python code (trust_remote_code), "
            "which mlx-lm does not run; only models with an mlx-lm module convert"
        )
    module = mlx_lm_module_for(model_type, architectures)
    if module is None:
        if _is_vision_language(config):
            problems.append(
                f"{model_type!r} is a vision-language model mlx-lm has no module for; "
                "use mlx-vlm (pip install mlx-vlm; python -m mlx_vlm.convert) instead"
            )
        else:
            version = mlx_lm_version()
            problems.append(
                f"mlx-lm{' ' + version if version else ''} has no module for model_type {model_type!r} "
                "(after its own remapping), so it cannot load or convert it"
            )
    if _looks_like_mlx(config, files):
        q = config.get("quantization") or {}
        bits = f"{q.get('bits')}-bit " if isinstance(q, dict) and q.get("bits") else ""
        problems.append(
            f"this is already an MLX {bits}model: chat with it or upload it as it is; "
            "to re-quantize, convert its original (base_model) instead"
        )
    else:
        quant = config.get("quantization_config") or _text_config(config).get("quantization_config")
        if isinstance(quant, dict):
            method = str(quant.get("quant_method", "")).lower()
            if quant.get("load_in_4bit") or quant.get("load_in_8bit"):
                method = method or "bitsandbytes"
            label = _PREQUANTIZED.get(method, method or "an unknown method")
            bits = quant.get("bits")
            problems.append(
                f"the source is already quantized ({label}{f', {bits}-bit' if bits else ''}): "
                "quantizing it again loses quality or fails; convert the unquantized original instead"
            )
    return problems


def support_notes(config: dict[str, Any]) -> list[str]:
    """Things worth knowing that do not stop a conversion."""
    notes: list[str] = []
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        return notes
    if _is_vision_language(config) and mlx_lm_module_for(config["model_type"], config.get("architectures") or ()):
        notes.append("vision-language model: mlx-lm converts the text part only; for images use mlx-vlm")
    if config.get("model_type") in _mlx_lm_remapping()[0]:
        notes.append(f"mlx-lm loads {config['model_type']!r} with its "
                     f"{_mlx_lm_remapping()[0][config['model_type']]!r} module")
    return notes


# --- parameters, sizes, memory -------------------------------------------------------------------


def _int(config: dict[str, Any], *keys: str, default: int | None = None) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return default


def _layer_shapes(config: dict[str, Any]) -> dict[str, int] | None:
    """Parameter counts by kind for a Llama-family decoder, or None when the config lacks the sizes."""
    c = _text_config(config)
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
    moe_inter = _int(c, "moe_intermediate_size", default=inter) if experts > 1 else inter
    shared = _int(c, "n_shared_experts", "num_shared_experts", default=0) or 0
    tied = bool(c.get("tie_word_embeddings", False))
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


def estimate_parameters(config: dict[str, Any]) -> int | None:
    """Parameter count estimated from the config's sizes (a Llama-family decoder), or None."""
    shapes = _layer_shapes(config)
    if shapes is None:
        return None
    per_layer = sum(shapes[k] for k in ("q", "k", "v", "o", "gate_up", "down", "norms"))
    c = _text_config(config)
    return shapes["embed"] + shapes["lm_head"] + shapes["layers"] * per_layer + (_int(c, "hidden_size") or 0)


def _parse_quantization(quantization: str) -> tuple[str, int | None, int, tuple[int, int] | None]:
    """(mode, bits, group_size, recipe) from "4bit", "4bit-g32", "mxfp4", "mixed_3_6", "bf16"."""
    q = quantization.strip().lower()
    if q in ("bf16", "fp16", "float16", "bfloat16"):
        return "none", 16, 0, None
    if q in ("fp32", "float32"):
        return "none", 32, 0, None
    if q in _RECIPES:
        return "affine", None, 64, _RECIPES[q]
    if q in ("mxfp4", "mxfp8", "nvfp4"):
        return q, int(q[-1]), {"mxfp4": 32, "mxfp8": 32, "nvfp4": 16}[q], None
    match = re.fullmatch(r"(\d)[-_]?bits?(?:[-_]g(\d+))?", q)
    if match:
        bits = int(match.group(1))
        group = int(match.group(2) or 64)
        if bits not in (1, 2, 3, 4, 5, 6, 8) or group not in (32, 64, 128):
            raise InvalidInputError(f"{quantization!r}: mlx-lm quantizes to 1-6 or 8 bits with group size 32, 64 or 128.")
        return "affine", bits, group, None
    raise InvalidInputError(
        f"Unknown quantization {quantization!r}; use one of {', '.join(QUANTIZATIONS)} (or e.g. 4bit-g32)."
    )


def bits_per_weight(quantization: str, *, scale_bits: int = 16, config: dict[str, Any] | None = None) -> float:
    """Average stored bits per quantized weight, counting scales and biases as mlx quantizes them.

    Affine: each group of `group_size` weights stores a scale and a bias in the model's dtype
    (`scale_bits`, 16 for bf16/fp16 sources): bits + 2*scale_bits/group_size. mxfp4/mxfp8: one 8-bit
    shared exponent per 32 weights; nvfp4: one 8-bit scale per 16. Mixed recipes average their low and
    high bits over the layers mlx-lm's predicate gives more bits (v_proj, down_proj in 3 of 8 layers, lm_head).
    """
    mode, bits, group, recipe = _parse_quantization(quantization)
    if mode == "none":
        return float(bits or 16)
    if mode in ("mxfp4", "mxfp8", "nvfp4"):
        return (bits or 4) + 8 / group
    overhead = 2 * scale_bits / group
    if recipe is None:
        return (bits or 4) + overhead
    low, high = recipe
    share = _high_bit_share(config)
    return low + (high - low) * share + overhead


def _high_bit_share(config: dict[str, Any] | None) -> float:
    """The fraction of weights mlx-lm's mixed recipe keeps at high bits (from the config's shapes)."""
    shapes = _layer_shapes(config) if config else None
    if shapes is None:
        return 0.2  # typical for Llama-family models
    n = shapes["layers"]
    more = sum(1 for i in range(n) if i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2)
    high = more * (shapes["v"] + shapes["down"]) + shapes["lm_head"]
    per_layer = sum(shapes[k] for k in ("q", "k", "v", "o", "gate_up", "down"))
    total = shapes["embed"] + shapes["lm_head"] + n * per_layer
    return high / total if total else 0.2


def estimate_bytes(parameters: int, quantization: str, *, scale_bits: int = 16, config: dict[str, Any] | None = None) -> int:
    """Bytes of the MLX weights for `parameters` weights at `quantization` (e.g. "4bit", "mxfp4", "bf16")."""
    return int(math.ceil(parameters * bits_per_weight(quantization, scale_bits=scale_bits, config=config) / 8))


def kv_cache_bytes(config: dict[str, Any], tokens: int, dtype_bytes: int = 2) -> int | None:
    """Keys and values for `tokens` tokens across all layers: 2 * layers * kv_heads * head_dim * tokens * dtype."""
    c = _text_config(config)
    h = _int(c, "hidden_size", "n_embd", "d_model")
    layers = _int(c, "num_hidden_layers", "n_layer", "num_layers")
    if not (h and layers):
        return None
    heads = _int(c, "num_attention_heads", "n_head", default=max(1, h // 64)) or 1
    kv_heads = _int(c, "num_key_value_heads", "num_kv_heads", default=heads) or heads
    head_dim = _int(c, "head_dim", default=h // heads) or (h // heads)
    window = _int(c, "sliding_window")
    if window and c.get("use_sliding_window", True) is not False and c.get("model_type") in ("mistral",) :
        tokens = min(tokens, window)  # mlx-lm's Mistral uses a rotating cache of the window size
    return 2 * layers * kv_heads * head_dim * tokens * dtype_bytes


def _dtype_of(config: dict[str, Any]) -> str:
    c = _text_config(config)
    dtype = config.get("torch_dtype") or c.get("torch_dtype") or c.get("dtype") or "bfloat16"
    return dtype if isinstance(dtype, str) else "bfloat16"


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


def _free_disk(path: Path) -> int | None:
    """Free bytes on the filesystem that holds `path` (or its nearest existing parent)."""
    path = path.expanduser()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


# --- chat template -------------------------------------------------------------------------------


def _token_text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return value if isinstance(value, str) else ""


def chat_template_of(tokenizer_config: dict[str, Any] | None, template_file: str | None = None) -> str | None:
    """The default chat template: chat_template.jinja wins over tokenizer_config.json, as in transformers."""
    if template_file:
        return template_file
    if not isinstance(tokenizer_config, dict):
        return None
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    return template if isinstance(template, str) and template.strip() else None


def chat_template_dry_run(template: str, tokenizer_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Render the template in a sandbox with a system turn and without; report what it accepts.

    Uses jinja2's ImmutableSandboxedEnvironment with the helpers transformers gives templates
    (raise_exception, strftime_now, a tojson that does not escape HTML, loopcontrols).
    Returns {"renders": bool, "system_role": bool | None, "error": str | None, "preview": str}.
    """
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt: str) -> str:
        return "26 Jul 2024"  # a fixed date keeps the dry run deterministic

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    tc = tokenizer_config or {}
    special = {k: _token_text(tc.get(k)) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    result: dict[str, Any] = {"renders": False, "system_role": None, "error": None, "preview": ""}
    try:
        compiled = env.from_string(template)
    except jinja2.exceptions.TemplateError as error:
        result["error"] = f"the template does not compile: {error}"
        return result
    user = [{"role": "user", "content": "Hello"}]
    marker = "MLXTUI-SYSTEM-PROBE"
    try:
        result["preview"] = compiled.render(messages=user, add_generation_prompt=True, **special)
        result["renders"] = True
    except Exception as error:  # noqa: BLE001 - any failure of an untrusted template is a finding, not a crash
        result["error"] = f"the template fails on a plain user turn: {error}"
        return result
    try:
        text = compiled.render(messages=[{"role": "system", "content": marker}, *user], add_generation_prompt=True,
                               **special)
    except Exception as error:  # noqa: BLE001
        result["system_role"] = False
        result["error"] = str(error) or type(error).__name__
        return result
    result["system_role"] = marker in text
    if not result["system_role"]:
        result["error"] = "the template drops the system message"
    return result


# --- the report ----------------------------------------------------------------------------------


@dataclass
class ModelFiles:
    """The small files and facts gathered about a model: what `build_report` needs, nothing downloaded big."""

    source: str
    revision: str | None = None
    sha: str | None = None
    local: bool = False
    config_text: str | None = None
    tokenizer_config: dict[str, Any] | None = None
    chat_template_file: str | None = None
    generation_config: dict[str, Any] | None = None
    card_data: dict[str, Any] = field(default_factory=dict)
    #: file name -> size in bytes (None when unknown)
    files: dict[str, int | None] = field(default_factory=dict)
    safetensors_total: int | None = None
    safetensors_dtypes: dict[str, int] = field(default_factory=dict)
    index: dict[str, Any] | None = None
    gated: bool | str = False
    private: bool = False
    license: str | None = None
    tags: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    library_name: str | None = None
    last_modified: str | None = None
    downloads: int | None = None
    likes: int | None = None
    from_cache: bool = False
    conversions: list[dict[str, Any]] = field(default_factory=list)
    #: set when the repo is gated and this account has no access yet (only model_info could be read)
    gated_message: str | None = None


@dataclass
class InspectReport:
    """Everything Inspect shows about one model. `to_dict()` is the `mlxtui inspect --json` document."""

    repo_id: str
    revision: str | None
    sha: str | None
    local: bool
    model_type: str | None
    architectures: list[str]
    supported: bool
    problems: list[str]
    notes: list[str]
    parameters: int | None
    parameters_source: str | None
    dtype: str
    estimates: list[dict[str, Any]]
    kv_cache: dict[str, int | None]
    memory: dict[str, Any]
    disk: dict[str, Any]
    chat_template: dict[str, Any]
    license: str | None
    gated: bool | str
    private: bool
    tags: list[str]
    pipeline_tag: str | None
    library_name: str | None
    base_model: Any
    files: dict[str, int | None]
    generation_config: dict[str, Any] | None
    existing_conversions: list[str]
    conversions: list[dict[str, Any]]
    config: dict[str, Any] | None
    config_text: str | None
    from_cache: bool = False
    mlx_lm_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the raw config text is left out; `config` holds the parsed object)."""
        data = asdict(self)
        data.pop("config_text", None)
        return data


def _parameters(files: ModelFiles, config: dict[str, Any] | None) -> tuple[int | None, str | None]:
    if config is not None and isinstance(config.get("quantization"), dict):
        # MLX-quantized weights are packed into uint32, so the stored element count is not the parameter count
        estimated = estimate_parameters(config)
        if estimated:
            return estimated, "estimated from config.json (weights are packed)"
    if files.safetensors_total:
        return files.safetensors_total, "safetensors metadata"
    index = files.index or {}
    meta = index.get("metadata") if isinstance(index.get("metadata"), dict) else {}
    total_parameters = meta.get("total_parameters", index.get("total_parameters"))
    if isinstance(total_parameters, int) and total_parameters > 0:
        return total_parameters, "safetensors index"
    total_size = meta.get("total_size", index.get("total_size"))
    if isinstance(total_size, int) and total_size > 0 and config is not None:
        return total_size // _DTYPE_BYTES.get(_dtype_of(config), 2), "safetensors index size"
    if config is not None:
        estimated = estimate_parameters(config)
        if estimated:
            return estimated, "estimated from config.json"
    return None, None


def _download_bytes(files: dict[str, int | None]) -> int | None:
    """Bytes mlx-lm's convert downloads: its allow patterns (json, model*.safetensors, py, tokenizer files...)."""
    import fnmatch

    patterns = ["*.json", "model*.safetensors", "*.py", "tokenizer.model", "*.tiktoken", "tiktoken.model", "*.txt",
                "*.jsonl", "*.jinja"]
    sizes = [size for name, size in files.items() if any(fnmatch.fnmatch(name, p) for p in patterns)]
    if not sizes or any(s is None for s in sizes):
        return None
    return int(sum(s for s in sizes if s is not None))


def build_report(files: ModelFiles, *, models_dir: Path | None = None, memory_bytes: int | None = None,
                 free_disk_bytes: int | None = None, default_quantization: str = "4bit") -> InspectReport:
    """Turn gathered small files into a report. Pure apart from reading memory/disk when not given."""
    problems: list[str] = []
    config: dict[str, Any] | None = None
    if files.config_text is None:
        problems.append("there is no config.json, so this is not a Transformers-format model mlx-lm can convert")
    else:
        try:
            config = parse_config(files.config_text)
        except InvalidInputError as error:
            problems.append(str(error).rstrip("."))
    names = list(files.files)
    if config is not None:
        problems += support_problems(config, names)
    notes = support_notes(config) if config else []
    if files.gated_message:
        notes.insert(0, files.gated_message)
    card_tags = [str(t) for t in (files.tags or (files.card_data or {}).get("tags") or [])]
    if config is not None and not any("already an MLX" in p for p in problems) and (
            files.library_name == "mlx" or (files.card_data or {}).get("library_name") == "mlx" or "mlx" in card_tags):
        problems.append("this is already an MLX model (its card says library mlx): chat with it or upload it as "
                        "it is; to convert again, use its original (base_model)")
    dtype = _dtype_of(config) if config else "bfloat16"
    scale_bits = 8 * _DTYPE_BYTES.get(dtype, 2)
    parameters, parameters_source = _parameters(files, config) if config is not None or files.safetensors_total else (None, None)
    estimates = []
    if parameters:
        for q in QUANTIZATIONS:
            bpw = bits_per_weight(q, scale_bits=scale_bits, config=config)
            estimates.append({"quantization": q, "bits_per_weight": round(bpw, 3), "bytes": estimate_bytes(
                parameters, q, scale_bits=scale_bits, config=config)})
    kv = {str(n): (kv_cache_bytes(config, n, _DTYPE_BYTES.get(dtype, 2)) if config else None) for n in KV_CONTEXTS}
    total_memory = memory_bytes if memory_bytes is not None else machine_memory_bytes()
    # Apple silicon lets the GPU wire about 75% of unified memory by default; use that as the budget.
    budget = int(total_memory * 0.75) if total_memory else None
    kv4 = kv.get(str(KV_CONTEXTS[0])) or 0
    fits = {e["quantization"]: (e["bytes"] + kv4 <= budget) if budget else None for e in estimates}
    memory = {"total_bytes": total_memory, "budget_bytes": budget, "fits": fits}
    download = _download_bytes(files.files) if not files.local else 0
    if download is None and estimates:
        download = next(e["bytes"] for e in estimates if e["quantization"] == "bf16")
    free = free_disk_bytes if free_disk_bytes is not None else (_free_disk(models_dir) if models_dir else None)
    output = next((e["bytes"] for e in estimates if e["quantization"] == default_quantization), None)
    need = (download or 0) + (output or 0) if output is not None else None
    disk = {"free_bytes": free, "download_bytes": download, "output_quantization": default_quantization,
            "output_bytes": output, "needed_bytes": need,
            "fits": (need <= free) if (need is not None and free is not None) else None,
            "models_dir": str(models_dir) if models_dir else None}
    template = chat_template_of(files.tokenizer_config, files.chat_template_file)
    chat: dict[str, Any] = {"present": template is not None, "system_role": None, "renders": None, "error": None,
                            "source": None, "preview": ""}
    if template is not None:
        chat["source"] = "chat_template.jinja" if files.chat_template_file else "tokenizer_config.json"
        chat.update(chat_template_dry_run(template, files.tokenizer_config))
    card = files.card_data or {}
    architectures = [a for a in (config or {}).get("architectures") or [] if isinstance(a, str)]
    model_type = (config or {}).get("model_type")
    return InspectReport(
        repo_id=files.source,
        revision=files.revision,
        sha=files.sha,
        local=files.local,
        model_type=model_type if isinstance(model_type, str) else None,
        architectures=architectures,
        supported=not problems,
        problems=problems,
        notes=notes,
        parameters=parameters,
        parameters_source=parameters_source,
        dtype=dtype,
        estimates=estimates,
        kv_cache=kv,
        memory=memory,
        disk=disk,
        chat_template=chat,
        license=files.license or (card.get("license") if isinstance(card.get("license"), str) else None),
        gated=files.gated,
        private=files.private,
        tags=list(files.tags or card.get("tags") or []),
        pipeline_tag=files.pipeline_tag or card.get("pipeline_tag"),
        library_name=files.library_name or card.get("library_name"),
        base_model=card.get("base_model"),
        files=dict(files.files),
        generation_config=files.generation_config,
        existing_conversions=[c["repo_id"] for c in files.conversions],
        conversions=list(files.conversions),
        config=config,
        config_text=files.config_text,
        from_cache=files.from_cache,
        mlx_lm_version=mlx_lm_version(),
    )


# --- local folders -------------------------------------------------------------------------------


def _read_json_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _front_matter(text: str) -> dict[str, Any]:
    """The YAML front matter of a README.md (empty when absent or broken)."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    if not match:
        return {}
    import yaml

    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _safetensors_header_total(path: Path) -> tuple[int, dict[str, int]] | None:
    """Parameter count from a safetensors file's JSON header (the first few KB), without reading the weights."""
    try:
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if size <= 0 or size > 100_000_000:
                return None
            header = json.loads(handle.read(size))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    total, by_dtype = 0, {}
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        n = math.prod(info.get("shape") or [1])
        total += n
        by_dtype[info.get("dtype", "?")] = by_dtype.get(info.get("dtype", "?"), 0) + n
    return total, by_dtype


def read_local_folder(path: Path) -> ModelFiles:
    """Gather the small files of a local model folder. Raises NotFoundError when the path does not exist."""
    path = path.expanduser()
    if not path.exists():
        raise NotFoundError(f"{path} does not exist.", hint="Check the path, or give a Hub repo id like org/name.")
    if not path.is_dir():
        raise InvalidInputError(f"{path} is a file; give the folder that holds config.json.")
    files = ModelFiles(source=str(path), local=True)
    for child in sorted(path.rglob("*")):
        if child.is_file() and ".cache" not in child.parts:
            files.files[str(child.relative_to(path))] = child.stat().st_size
    config = path / "config.json"
    if config.is_file():
        files.config_text = config.read_text(encoding="utf-8", errors="replace")
    files.tokenizer_config = _read_json_file(path / "tokenizer_config.json")
    if (path / "chat_template.jinja").is_file():
        files.chat_template_file = (path / "chat_template.jinja").read_text(encoding="utf-8", errors="replace")
    files.generation_config = _read_json_file(path / "generation_config.json")
    if (path / "README.md").is_file():
        files.card_data = _front_matter((path / "README.md").read_text(encoding="utf-8", errors="replace"))
    index = _read_json_file(path / "model.safetensors.index.json")
    files.index = index
    if index is None:
        totals = [_safetensors_header_total(p) for p in sorted(path.glob("*.safetensors"))]
        if totals and all(totals):
            files.safetensors_total = sum(t[0] for t in totals if t)
    files.license = files.card_data.get("license") if isinstance(files.card_data.get("license"), str) else None
    files.library_name = files.card_data.get("library_name")
    files.pipeline_tag = files.card_data.get("pipeline_tag")
    return files


def looks_like_path(source: str) -> bool:
    """A local path rather than a repo id: starts with / . ~, or names something that exists."""
    return source.startswith(("/", ".", "~")) or os.sep + os.sep in source or Path(source).expanduser().exists()


class InspectService:
    """Builds an InspectReport for a repo id (small files through HubService) or a local folder."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def inspect(self, source: str, revision: str | None = None, *, conversions: bool = True
                      ) -> AsyncIterator[Notice | InspectReport]:
        """Yield Notice events (rate limits, cache fallback) and finally the InspectReport.

        Raises MlxtuiError kinds: NotFoundError, GatedError, OfflineError, InvalidInputError, RateLimitedError.
        """
        import asyncio

        source = source.strip()
        if not source:
            raise InvalidInputError("Give a repo id (org/name) or a local folder to inspect.")
        if looks_like_path(source):
            files = await asyncio.to_thread(read_local_folder, Path(source))
        else:
            from mlxtui.services.hub import HubService

            hub = HubService(self.ctx)
            files = None
            async for event in hub.fetch_model_files(source, revision, conversions=conversions):
                if isinstance(event, ModelFiles):
                    files = event
                else:
                    yield event
            if files is None:  # pragma: no cover - fetch_model_files always ends with the files or raises
                raise MlxtuiError(f"Nothing was read for {source}.")
            if files.from_cache:
                yield Notice("The Hub could not be reached: showing the files cached on this machine.", "warning")
        report = await asyncio.to_thread(
            build_report, files, models_dir=self.ctx.settings.models_dir(),
            default_quantization=f"{self.ctx.settings.convert.q_bits}bit",
        )
        yield report

    async def report(self, source: str, revision: str | None = None) -> InspectReport:
        """The report alone (notices dropped): for the CLI and other services."""
        result: InspectReport | None = None
        async for event in self.inspect(source, revision):
            if isinstance(event, InspectReport):
                result = event
        assert result is not None
        return result

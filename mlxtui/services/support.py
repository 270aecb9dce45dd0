"""Whether the installed mlx-lm can convert a model: the one support verdict Inspect shows and Convert obeys.

Pure functions over a parsed config.json and the list of the repo's (or folder's) file names; nothing heavy is
imported: mlx-lm's remapping is read from its source text and its model modules are found with `importlib`'s
path finder, so answering "is this supported?" costs no mlx/transformers import.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlxtui.services.modelfolder import config_architectures

__all__ = [
    "Verdict",
    "verdict",
    "support_problems",
    "support_notes",
    "weights_problem",
    "validate_config",
    "mlx_lm_module_for",
    "mlx_lm_version",
    "is_vision_language",
]

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
    if not isinstance(target, str) or not re.fullmatch(r"[A-Za-z0-9_\-]{1,100}", target):
        return None
    models = root / "models"
    try:
        if (models / f"{target}.py").is_file() or (models / target / "__init__.py").is_file():
            return target
    except OSError:
        return None
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


def is_vision_language(config: dict[str, Any]) -> bool:
    architectures = config_architectures(config)
    return "vision_config" in config or any(
        isinstance(a, str) and ("VL" in a or "Vision" in a or "Llava" in a) for a in architectures
    )


def _short(value: Any, limit: int = 60) -> str:
    """A config value as it appears in a problem: repr, cut to `limit` characters (it may be huge)."""
    text = repr(value) if not isinstance(value, (dict, list)) else f"a {type(value).__name__} of {len(value)}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validate_config(config: Any) -> list[str]:
    """Shape problems of a parsed config.json (missing model_type, wrong types); empty when well-formed."""
    if not isinstance(config, dict):
        return [f"config.json holds a {type(config).__name__}, not a JSON object"]
    problems: list[str] = []
    model_type = config.get("model_type")
    if model_type is None:
        problems.append("config.json has no model_type, so mlx-lm cannot tell which architecture to build")
    elif not isinstance(model_type, str) or not model_type:
        problems.append(f"config.json model_type should be a non-empty string, not {_short(model_type)}")
    architectures = config.get("architectures")
    if architectures is not None and not (
        isinstance(architectures, list) and all(isinstance(a, str) for a in architectures)
    ):
        problems.append(f"config.json architectures should be a list of strings, not {_short(architectures)}")
    text = _text_config(config)
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size",
                "intermediate_size", "head_dim"):
        value = text.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            problems.append(f"config.json {key} should be a whole number, not {_short(value)}")
    for key in ("quantization_config", "quantization", "auto_map", "text_config", "vision_config"):
        value = config.get(key)
        if value is not None and not isinstance(value, dict):
            problems.append(f"config.json {key} should be an object, not {_short(value)}")
    return problems


def _looks_like_mlx(config: dict[str, Any], files: list[str] | None) -> bool:
    if isinstance(config.get("quantization"), dict):
        return True
    names = [n.rsplit("/", 1)[-1] for n in files or []]
    # Older mlx-lm / mlx-examples saved weights.npz or weights.00.safetensors; transformers never does.
    return any(re.fullmatch(r"weights(\.\d+)?\.(npz|safetensors)", n) for n in names)


#: weight files of other formats, named when a repo has no safetensors mlx-lm can read
_OTHER_WEIGHTS = (
    ("*.bin", "PyTorch .bin"), ("*.pt", "PyTorch .pt"), ("*.pth", "PyTorch .pth"), ("*.ckpt", "checkpoint .ckpt"),
    ("*.gguf", "GGUF"), ("*.h5", "Keras/TensorFlow .h5"), ("*.msgpack", "Flax .msgpack"), ("*.onnx", "ONNX"),
)


def weights_problem(files: list[str] | tuple[str, ...]) -> str | None:
    """Why mlx-lm finds no weights among `files` (it loads only top-level `model*.safetensors`), or None."""
    top = [n for n in files if isinstance(n, str) and "/" not in n]
    if any(fnmatch.fnmatchcase(n, "model*.safetensors") for n in top):
        return None
    names = [n.rsplit("/", 1)[-1] for n in files if isinstance(n, str)]
    found = [label for pattern, label in _OTHER_WEIGHTS if any(fnmatch.fnmatchcase(n.lower(), pattern) for n in names)]
    other = sorted(n for n in top if n.endswith(".safetensors"))
    if found:
        return (f"the weights are {' and '.join(found)} files only; mlx-lm reads safetensors (model*.safetensors), "
                "so it cannot convert this repo: look for a safetensors version of the model")
    if other:
        return (f"the safetensors files are not named model*.safetensors ({', '.join(other[:3])}), "
                "so mlx-lm does not load them")
    return "there are no weight files (model*.safetensors), so there is nothing to convert"


def support_problems(config: dict, files: list[str] | None = None) -> list[str]:
    """Why the installed mlx-lm cannot convert this model; an empty list means it can.

    `files` (repo or folder file names), when given, adds the weights check (mlx-lm reads only
    `model*.safetensors`) and sharpens the "already MLX" check. Convert calls this too, so Inspect's verdict
    is the one Convert acts on.
    """
    problems = validate_config(config)
    if problems or not isinstance(config, dict):
        return problems
    model_type: str = config["model_type"]
    architectures = config_architectures(config)
    if config.get("auto_map"):
        problems.append(
            "config.json has auto_map: the model needs its own Python code (trust_remote_code), "
            "which mlx-lm does not run; only models with an mlx-lm module convert"
        )
    module = mlx_lm_module_for(model_type, architectures)
    if module is None:
        if is_vision_language(config):
            problems.append(
                f"{_short(model_type)} is a vision-language model mlx-lm has no module for; "
                "use mlx-vlm (pip install mlx-vlm; python -m mlx_vlm.convert) instead"
            )
        else:
            version = mlx_lm_version()
            problems.append(
                f"mlx-lm{' ' + version if version else ''} has no module for model_type {_short(model_type)} "
                "(after its own remapping), so it cannot load or convert it"
            )
    mlx = _looks_like_mlx(config, files)
    if files is not None and not mlx:
        weights = weights_problem(files)
        if weights:
            problems.append(weights)
    if mlx:
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
    if is_vision_language(config) and mlx_lm_module_for(config["model_type"], config_architectures(config)):
        notes.append("vision-language model: mlx-lm converts the text part only; for images use mlx-vlm")
    if config.get("model_type") in _mlx_lm_remapping()[0]:
        notes.append(f"mlx-lm loads {config['model_type']!r} with its "
                     f"{_mlx_lm_remapping()[0][config['model_type']]!r} module")
    return notes




@dataclass(frozen=True)
class Verdict:
    """The support verdict: `supported` when there are no problems; notes never block."""

    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def supported(self) -> bool:
        return not self.problems


def verdict(config: Any, files: list[str] | tuple[str, ...] | None = None, *, library_name: str | None = None,
            tags: list[str] | tuple[str, ...] = ()) -> Verdict:
    """Inspect's and Convert's one answer to "can the installed mlx-lm convert this?".

    `files` are the repo's (or folder's) file names; `library_name` and `tags` come from model_info or the
    card (a card saying library mlx marks a model that is already converted).
    """
    files_list = list(files) if files is not None else None
    problems = support_problems(config, files_list)
    said_mlx = library_name == "mlx" or "mlx" in tags
    if isinstance(config, dict) and said_mlx and not any("already an MLX" in p for p in problems):
        problems = [p for p in problems if not p.startswith(("the weights are", "there are no weight", "the safetensors"))]
        problems.append("this is already an MLX model (its card says library mlx): chat with it or upload it as "
                        "it is; to convert again, use its original (base_model)")
    notes = support_notes(config) if isinstance(config, dict) else []
    return Verdict(tuple(problems), tuple(notes))

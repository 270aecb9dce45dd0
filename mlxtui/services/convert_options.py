"""The options of mlx_lm.convert and their rules, and the folder labels they give (4bit, mixed_3_6, bf16...).

Kept apart from convert.py and import-light: the worker process reads them before it imports mlx-lm.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlxtui.services.errors import InvalidInputError
from mlxtui.services.modelfolder import ALLOW_PATTERNS, DTYPE_LABELS, RECIPES, quant_label

__all__ = [
    "BITS",
    "FORM_BITS",
    "GROUP_SIZES",
    "MODES",
    "MODE_FIXED",
    "RECIPES",
    "DTYPES",
    "ALLOW_PATTERNS",
    "ConvertOptions",
    "options_from_label",
    "output_name",
]

#: bits mlx-lm can quantize to (7 fails inside mlx); the form offers 2..8
BITS = (1, 2, 3, 4, 5, 6, 8)
FORM_BITS = (2, 3, 4, 5, 6, 8)
GROUP_SIZES = (32, 64, 128)
MODES = ("affine", "mxfp4", "nvfp4", "mxfp8")
#: the non-affine modes allow exactly one (bits, group size)
MODE_FIXED = {"mxfp4": (4, 32), "nvfp4": (4, 16), "mxfp8": (8, 32)}
DTYPES = ("float16", "bfloat16", "float32")
# ALLOW_PATTERNS (mlx-lm's download patterns) and RECIPES are modelfolder's, re-exported for callers of this module


@dataclass(frozen=True)
class ConvertOptions:
    """The options of ``mlx_lm.convert`` (names as its keyword arguments); never ``upload_repo``."""

    quantize: bool = False
    q_bits: int | None = None
    q_group_size: int | None = None
    q_mode: str = "affine"
    quant_predicate: str | None = None  # a recipe name
    dtype: str | None = None
    dequantize: bool = False
    trust_remote_code: bool = False

    def problems(self) -> list[str]:
        """What mlx-lm would refuse or silently get wrong with these options, in words; empty when fine."""
        out: list[str] = []
        if self.quantize and self.dequantize:
            out.append("Quantize and dequantize exclude each other: choose one.")
        if self.q_mode not in MODES:
            out.append(f"Unknown quantization mode {self.q_mode!r}; choose one of {', '.join(MODES)}.")
        if self.dtype is not None and self.dtype not in DTYPES:
            out.append(f"Unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}.")
        if self.quant_predicate is not None and self.quant_predicate not in RECIPES:
            out.append(f"Unknown recipe {self.quant_predicate!r}; choose one of {', '.join(RECIPES)}.")
        if not self.quantize:
            if self.quant_predicate is not None:
                # mlx-lm ignores a recipe without -q; say so instead of converting unquantized.
                out.append(f"The recipe {self.quant_predicate} needs quantization switched on.")
            given = [f"{self.q_bits} bits"] if self.q_bits is not None else []
            given += [f"group size {self.q_group_size}"] if self.q_group_size is not None else []
            given += [f"mode {self.q_mode}"] if self.q_mode != "affine" else []
            if given:  # mlx-lm ignores them too: the result would silently be unquantized
                out.append(f"{' and '.join(given).capitalize()} need quantization switched on; without it the model "
                           "is converted unquantized.")
            return out
        if self.q_bits is not None and self.q_bits not in BITS:
            out.append(f"{self.q_bits} bits is not supported; choose one of {', '.join(map(str, FORM_BITS))}.")
        if self.q_mode == "affine":
            if self.q_group_size is not None and self.q_group_size not in GROUP_SIZES:
                out.append(
                    f"Group size {self.q_group_size} is not supported; choose one of {', '.join(map(str, GROUP_SIZES))}."
                )
        elif self.q_mode in MODE_FIXED:
            bits, group = MODE_FIXED[self.q_mode]
            if self.q_group_size is not None and self.q_group_size != group:
                out.append(f"{self.q_mode} always uses group size {group}, not {self.q_group_size}.")
            if self.q_bits is not None and self.q_bits != bits:
                out.append(f"{self.q_mode} always uses {bits} bits, not {self.q_bits}.")
            if self.quant_predicate is not None:
                out.append(f"Recipes like {self.quant_predicate} work only with affine quantization, not {self.q_mode}.")
        return out

    def validate(self) -> None:
        """Raise InvalidInputError naming every problem."""
        problems = self.problems()
        if problems:
            raise InvalidInputError(" ".join(problems))

    @property
    def bits(self) -> int | None:
        """The bits this will quantize to (mlx-lm's default for the mode when unset); None when not quantizing."""
        if not self.quantize:
            return None
        if self.q_mode in MODE_FIXED:
            return self.q_bits or MODE_FIXED[self.q_mode][0]
        return self.q_bits or 4

    @property
    def group_size(self) -> int | None:
        if not self.quantize:
            return None
        if self.q_mode in MODE_FIXED:
            return self.q_group_size or MODE_FIXED[self.q_mode][1]
        return self.q_group_size or 64

    def label(self, source_dtype: str | None = None) -> str:
        """The quantization label of the output (4bit, 8bit, 4bit-g32, mixed_3_6, mxfp4, bf16, ...): exactly
        modelfolder.quant_label of these options, so a folder, its card and the Library say the same."""
        return quant_label(None, self.to_dict(), source_dtype_hint=source_dtype)

    def estimate_bytes(self, parameters: int, source_dtype: str | None, config: dict[str, Any] | None = None) -> int:
        """About how big the output weights will be: the shared estimator's answer (mlxtui.services.sizes)."""
        from mlxtui.services.sizes import estimate_bytes

        return estimate_bytes(parameters, self, source_dtype, config)

    def to_dict(self) -> dict[str, Any]:
        """As stored in job.json and in the provenance file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvertOptions:
        fields = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in fields})

    def mlx_lm_args(self) -> list[str]:
        """The same conversion as ``mlx_lm convert`` flags (for the log and the benchmark)."""
        args: list[str] = []
        if self.quantize:
            args.append("-q")
            if self.q_bits is not None:
                args += ["--q-bits", str(self.q_bits)]
            if self.q_group_size is not None:
                args += ["--q-group-size", str(self.q_group_size)]
            if self.q_mode != "affine":
                args += ["--q-mode", self.q_mode]
            if self.quant_predicate:
                args += ["--quant-predicate", self.quant_predicate]
        if self.dtype:
            args += ["--dtype", self.dtype]
        if self.dequantize:
            args.append("-d")
        if self.trust_remote_code:
            args.append("--trust-remote-code")
        return args


def options_from_label(label: str, base: ConvertOptions | None = None) -> ConvertOptions:
    """The options a folder label names (the inverse of ConvertOptions.label): 4bit, 8bit-g32, mixed_3_6,
    mxfp4, bf16, ... `base` supplies dtype and trust_remote_code."""
    base = base or ConvertOptions()
    keep = {"dtype": base.dtype, "trust_remote_code": base.trust_remote_code}
    label = label.strip().lower()
    if label in RECIPES:
        low = int(label.split("_")[1])
        return ConvertOptions(quantize=True, q_bits=low, q_group_size=base.q_group_size or 64, quant_predicate=label, **keep)
    if label in MODE_FIXED:
        return ConvertOptions(quantize=True, q_mode=label, **keep)
    if match := re.fullmatch(r"(\d+)bit(?:-g(\d+))?", label):
        group = int(match.group(2)) if match.group(2) else 64
        return ConvertOptions(quantize=True, q_bits=int(match.group(1)), q_group_size=group, **keep)
    for dtype, short in DTYPE_LABELS.items():
        if label in (dtype, short):
            return ConvertOptions(dtype=dtype, trust_remote_code=base.trust_remote_code)
    raise InvalidInputError(
        f"Unknown variant {label!r}: use e.g. 4bit, 8bit, 4bit-g32, mixed_3_6, mxfp4, nvfp4, mxfp8, bf16, fp16, fp32."
    )


def output_name(source: str, label: str) -> str:
    """`<name>-<label>` where name is the repo name or the folder name: h2o-danube2-tiny-chat-4bit
    ("mlx" stands in for a label nothing could tell, "?", which has no place in a folder name)."""
    name = Path(source.rstrip("/")).name or "model"
    return f"{name}-{'mlx' if label == '?' else label}"

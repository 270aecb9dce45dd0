"""Build one learned variant in its own process: ``python -m mlxtui.services.lab_build SPEC.json``.

GPTQ, AWQ, DWQ and dynamic quantization with mlx-lm's own functions (``gptq_quantize``, ``awq_quantize``,
``dwq_quantize``, ``estimate_sensitivities``/``estimate_threshold`` + ``quantize_model``) and its ``save``, fed
with the calibration tokens the lab passes in (``spec["tokens"]``), so nothing is fetched: mlx-lm's own
command-line tools would download a calibration file. The model is written to ``spec["partial"]`` and renamed
to ``spec["output"]`` only when complete; SIGTERM leaves no half-written folder under the final name (the lab
removes the partial one).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["build", "main"]

#: seconds to wait with the finished model still in its partial folder, so tests can cancel at that moment
_SLOWDOWN_S = float(os.environ.get("MLXTUI_LAB_SLOWDOWN_S") or 0)


def _say(done: int, total: int = 4) -> None:
    print(json.dumps({"done": done, "total": total}), flush=True)


def _gptq(model: Any, config: dict[str, Any], data: Any, spec: dict[str, Any]) -> Any:
    from mlx_lm.quant.gptq import gptq_quantize

    # mlx-lm's defaults: layers GPTQ cannot reach (none in a Llama) fall back to 6 bits
    model, config["quantization"] = gptq_quantize(model, data, spec["bits"], spec["group_size"], 6, 64, batch_size=4)
    return model


def _awq(model: Any, config: dict[str, Any], data: Any, spec: dict[str, Any]) -> Any:
    from mlx_lm.quant.awq import AWQ_MODEL_CONFIGS, awq_quantize, update_config

    awq_quantize(model, data, AWQ_MODEL_CONFIGS[config["model_type"]], bits=spec["bits"], group_size=spec["group_size"],
                 embed_bits=4, embed_group_size=32, n_grid=10)
    update_config(model, config)
    return model


def _dwq(model: Any, config: dict[str, Any], data: Any, spec: dict[str, Any]) -> Any:
    import mlx.core as mx
    import mlx.optimizers as optimizers
    from mlx.utils import tree_flatten
    from mlx_lm.quant.dwq import dwq_quantize
    from mlx_lm.utils import quantize_model

    teacher = model
    student = copy.deepcopy(model)
    _, quantized = quantize_model(student, dict(config), group_size=spec["group_size"], bits=spec["bits"])
    config.update(quantized)
    rows = [(row, 0) for row in data.tolist()]
    n_valid = max(1, len(rows) // 8)
    opt = optimizers.Adam(learning_rate=spec.get("learning_rate", 1e-5), bias_correction=True)
    # keep the source's float dtype for scales and biases (mlx-lm's default would make them bfloat16)
    dtype = next(v.dtype for _, v in tree_flatten(teacher.parameters()) if mx.issubdtype(v.dtype, mx.floating))
    dwq_quantize(student, lambda batch, idx, split: teacher(batch), opt, rows[n_valid:], rows[:n_valid],
                 batch_size=4, max_seq_length=data.shape[1], seed=123, dtype=dtype)
    return student


def _dq(model: Any, config: dict[str, Any], data: Any, spec: dict[str, Any]) -> Any:
    from mlx_lm.quant.dynamic_quant import estimate_sensitivities, estimate_threshold
    from mlx_lm.utils import quantize_model

    low, high = spec["bits"], spec["bits"] + 1
    sensitivities = dict(estimate_sensitivities(model, data, low, 64, high, 64))
    threshold = estimate_threshold(model, sensitivities, target_bpw=spec["target_bpw"], low_bits=low, low_group_size=64,
                                   high_bits=high, high_group_size=64)

    def predicate(path: str, module: Any) -> Any:
        if not hasattr(module, "to_quantized"):
            return False
        if sensitivities.get(path, 0.0) > threshold:
            return {"bits": high, "group_size": 64}
        return True

    model, quantized = quantize_model(model, config, group_size=64, bits=low, quant_predicate=predicate)
    config.update(quantized)
    return model


_METHODS = {"gptq": _gptq, "awq": _awq, "dwq": _dwq, "dq": _dq}


def build(spec: dict[str, Any]) -> None:
    """Quantize spec["source"] with spec["method"] and save it to spec["output"] (through spec["partial"])."""
    import mlx.core as mx
    import numpy as np
    from mlx_lm.utils import load, save

    mx.random.seed(123)
    partial, output = Path(spec["partial"]), Path(spec["output"])
    shutil.rmtree(partial, ignore_errors=True)
    model, tokenizer, config = load(spec["source"], return_config=True)
    data = mx.array(np.load(spec["tokens"]))
    _say(1)
    model = _METHODS[spec["method"]](model, config, data, spec)
    _say(2)
    save(partial, spec["source"], model, tokenizer, config)
    _say(3)
    if _SLOWDOWN_S:
        time.sleep(_SLOWDOWN_S)
    os.replace(partial, output)
    _say(4)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    build(json.loads(Path(args[0]).read_text(encoding="utf-8")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

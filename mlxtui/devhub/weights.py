"""Random safetensors weights of a Llama-family checkpoint, streamed tensor by tensor (one file or shards)."""

from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path
from typing import Any

from mlxtui.devhub.spec import ModelSpec

__all__ = ["tensor_shapes", "parameter_count", "write_weights"]

_CHUNK = 4_000_000  # elements generated at a time
_DTYPES = {"bfloat16": ("BF16", 2), "float32": ("F32", 4), "float16": ("F16", 2)}


def tensor_shapes(spec: ModelSpec) -> list[tuple[str, tuple[int, ...]]]:
    """The weights of a Llama-family checkpoint in Hugging Face naming and order."""
    h, i, d = spec.hidden_size, spec.intermediate_size, spec.head_dim
    q, kv = spec.num_attention_heads * d, spec.num_key_value_heads * d
    shapes: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (spec.vocab_size, h))]
    bias = spec.model_type == "qwen2"  # Qwen2 has q/k/v biases
    for n in range(spec.num_hidden_layers):
        p = f"model.layers.{n}."
        shapes += [
            (p + "input_layernorm.weight", (h,)),
            (p + "mlp.down_proj.weight", (h, i)),
            (p + "mlp.gate_proj.weight", (i, h)),
            (p + "mlp.up_proj.weight", (i, h)),
            (p + "post_attention_layernorm.weight", (h,)),
        ]
        if bias:
            shapes.append((p + "self_attn.k_proj.bias", (kv,)))
        shapes.append((p + "self_attn.k_proj.weight", (kv, h)))
        shapes.append((p + "self_attn.o_proj.weight", (h, q)))
        if bias:
            shapes.append((p + "self_attn.q_proj.bias", (q,)))
        shapes.append((p + "self_attn.q_proj.weight", (q, h)))
        if bias:
            shapes.append((p + "self_attn.v_proj.bias", (kv,)))
        shapes.append((p + "self_attn.v_proj.weight", (kv, h)))
    shapes.append(("model.norm.weight", (h,)))
    if not spec.tie_word_embeddings:
        shapes.append(("lm_head.weight", (spec.vocab_size, h)))
    return shapes


def parameter_count(spec: ModelSpec) -> int:
    """Number of parameters the spec's checkpoint holds."""
    return sum(math.prod(shape) for _, shape in tensor_shapes(spec))


def _tensor_bytes(name: str, shape: tuple[int, ...], dtype: str, rng: Any) -> bytes:
    """Random weights (norms are ones, as at initialisation) encoded little-endian in ``dtype``."""
    import numpy as np

    if name.endswith("norm.weight"):
        values = np.ones(shape, dtype=np.float32)
    elif name.endswith(".bias"):
        values = np.zeros(shape, dtype=np.float32)
    else:
        # A wider spread than real init, so greedy decoding of random weights is not one repeated token.
        values = rng.standard_normal(shape, dtype=np.float32)
        values *= 0.08
    if dtype == "bfloat16":
        bits = values.view(np.uint32)
        # Round to nearest even, then keep the top 16 bits: exactly what torch's bf16 cast does.
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        return bits.astype("<u2").tobytes()
    if dtype == "float16":
        return values.astype("<f2").tobytes()
    return values.astype("<f4").tobytes()


def _write_safetensors(path: Path, tensors: list[tuple[str, tuple[int, ...]]], dtype: str, rng: Any) -> int:
    """Write one safetensors file, streaming tensor by tensor; return its tensor bytes."""
    code, width = _DTYPES[dtype]
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in tensors:
        size = math.prod(shape) * width
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name, shape in tensors:
            # Big matrices go out in row blocks, so a 200M-parameter model needs little memory.
            rows = max(1, _CHUNK // max(1, math.prod(shape[1:])))
            for start in range(0, shape[0], rows):
                block = (min(rows, shape[0] - start), *shape[1:])
                f.write(_tensor_bytes(name, block, dtype, rng))
    return offset


def _split_shards(tensors: list[tuple[str, tuple[int, ...]]], shards: int) -> list[list[tuple[str, tuple[int, ...]]]]:
    """Split in order into ``shards`` groups of about equal size, as save_pretrained's max_shard_size does."""
    shards = max(1, min(shards, len(tensors)))
    total = sum(math.prod(s) for _, s in tensors)
    groups: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    done = 0
    for k, (name, shape) in enumerate(tensors):
        remaining_tensors = len(tensors) - k
        remaining_groups = shards - len(groups)
        if groups[-1] and (done >= total * len(groups) / shards or remaining_tensors <= remaining_groups):
            if len(groups) < shards:
                groups.append([])
        groups[-1].append((name, shape))
        done += math.prod(shape)
    return groups


def write_weights(spec: ModelSpec, folder: Path) -> None:
    import numpy as np

    # A stable seed per repo, so regenerated models are byte-identical.
    rng = np.random.default_rng(spec.seed or zlib.crc32(spec.repo_id.encode()))
    tensors = tensor_shapes(spec)
    if spec.shards <= 1:
        _write_safetensors(folder / "model.safetensors", tensors, spec.dtype, rng)
        return
    groups = _split_shards(tensors, spec.shards)
    weight_map: dict[str, str] = {}
    total = 0
    for n, group in enumerate(groups, 1):
        filename = f"model-{n:05d}-of-{len(groups):05d}.safetensors"
        total += _write_safetensors(folder / filename, group, spec.dtype, rng)
        weight_map.update({name: filename for name, _ in group})
    index = {
        "metadata": {"total_parameters": parameter_count(spec), "total_size": total},
        "weight_map": weight_map,
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")

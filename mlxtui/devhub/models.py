"""Small but real Hugging Face-format causal LMs, written in about a second with no network.

Each model is a folder as the Hub serves it: ``config.json``, random weights as safetensors (bf16 or
float32, one file or sharded with an index), a BPE ``tokenizer.json`` trained with ``tokenizers`` on a
built-in corpus, ``tokenizer_config.json`` with a chat template, ``special_tokens_map.json``,
``generation_config.json`` and a ``README.md`` model card with YAML front matter. The models load, convert
and generate with mlx-lm; the weights are random, so the text is gibberish.

``DEMO_MODELS`` is the set the demo Hub and the tests are seeded with.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "GENERATOR_VERSION",
    "ModelSpec",
    "DEMO_MODELS",
    "MLX_COMMUNITY_CONVERSIONS",
    "DANUBE_TEMPLATE",
    "LLAMA3_TEMPLATE",
    "CHATML_TEMPLATE",
    "ZEPHYR_TEMPLATE",
    "write_model",
    "write_demo_models",
    "convert_with_mlx_lm",
    "spec_for_parameters",
    "tensor_shapes",
    "parameter_count",
    "demo_spec",
]

# Bump when the written files change, so cached demo hubs are rebuilt.
GENERATOR_VERSION = "2"

# --- chat templates, as the real models ship them ------------------------------------------------

# h2oai/h2o-danube2-1.8b-chat: a system message is refused inside the template itself.
DANUBE_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}"
    "{{ '<|prompt|>' + message['content'].strip() + eos_token }}"
    "{% elif message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|answer|>' + message['content'].strip() + eos_token }}"
    "{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|answer|>' }}{% endif %}"
    "{% endfor %}"
)

# Meta-Llama-3-8B-Instruct: header-delimited turns, system supported.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}"
    "{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

# Qwen2-Instruct: ChatML with a default system prompt.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# TinyLlama-1.1B-Chat-v1.0 (Zephyr style).
ZEPHYR_TEMPLATE = (
    "{% for message in messages %}\n"
    "{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}"
)

_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "fancynet": "FancyNetForCausalLM",
}


@dataclass(frozen=True)
class ModelSpec:
    """What to generate: architecture and size, tokenizer family, card metadata and Hub attributes.

    Sizes are multiples of 128 by default so every mlx-lm quantization group size (32, 64, 128) applies
    to every layer. ``tokenizer`` is the family: "spm" (Llama-2/Mistral sentencepiece-style BPE with byte
    fallback), "llama3" or "qwen" (byte-level BPE).
    """

    repo_id: str
    model_type: str = "llama"
    chat_template: str | None = None
    dtype: str = "bfloat16"  # "bfloat16" or "float32" (as config.json's torch_dtype)
    shards: int = 1
    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vocab_size: int = 1024
    max_position_embeddings: int = 4096
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = False
    tokenizer: str = "spm"
    architectures: tuple[str, ...] | None = None  # default from model_type
    extra_config: dict[str, Any] = field(default_factory=dict)  # merged into config.json
    # Model card front matter and body.
    license: str | None = "apache-2.0"
    language: tuple[str, ...] = ("en",)
    tags: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    pipeline_tag: str = "text-generation"
    library_name: str = "transformers"
    base_model: str | None = None
    description: str = ""
    extra_card: dict[str, Any] = field(default_factory=dict)
    # Hub attributes the demo store records.
    gated: bool = False
    private: bool = False
    downloads: int = 0
    likes: int = 0
    created_at: str = "2024-04-05T10:00:00Z"
    # Ship configuration_/modeling_<type>.py and an auto_map, as trust_remote_code repos do.
    custom_code: bool = False
    # Fault injection: write a config.json that is not valid JSON.
    malformed_config: bool = False
    seed: int = 0

    @property
    def name(self) -> str:
        """The repo name without its owner."""
        return self.repo_id.split("/", 1)[-1]

    @property
    def architecture(self) -> str:
        if self.architectures:
            return self.architectures[0]
        return _ARCHITECTURES.get(self.model_type, "".join(p.title() for p in self.model_type.split("_")) + "ForCausalLM")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


# --- weights -------------------------------------------------------------------------------------

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


def _write_weights(spec: ModelSpec, folder: Path) -> None:
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


# --- tokenizers ----------------------------------------------------------------------------------

# Special tokens per tokenizer family: (bos, eos, unk, pad, extra specials).
_FAMILIES: dict[str, dict[str, Any]] = {
    "spm": {"bos": "<s>", "eos": "</s>", "unk": "<unk>", "pad": None, "extra": []},
    "llama3": {
        "bos": "<|begin_of_text|>",
        "eos": "<|end_of_text|>",
        "unk": None,
        "pad": None,
        "extra": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    },
    "qwen": {"bos": None, "eos": "<|endoftext|>", "unk": None, "pad": "<|endoftext|>", "extra": ["<|im_start|>", "<|im_end|>"]},
}


def _family_specials(spec: ModelSpec) -> list[str]:
    fam = _FAMILIES[spec.tokenizer]
    specials = [t for t in (fam["unk"], fam["bos"], fam["eos"]) if t]
    specials += fam["extra"]
    if spec.chat_template and "<|prompt|>" in spec.chat_template:
        specials += ["<|prompt|>", "<|answer|>"]  # danube's turn markers are added tokens
    return list(dict.fromkeys(specials))


@lru_cache(maxsize=16)
def _trained_tokenizer(family: str, vocab_size: int, specials: tuple[str, ...]) -> str:
    """Train a BPE tokenizer of the family on the built-in corpus; return its tokenizer.json text."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    from mlxtui.devhub._corpus import CORPUS

    lines = [line for line in CORPUS.splitlines() if line.strip()]
    if family == "spm":
        # Llama-2/Mistral layout: <unk> <s> </s>, 256 byte-fallback tokens, then merges; the normalizer
        # turns spaces into "▁" and the decoder is the one mlx-lm recognises as sentencepiece.
        byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
        tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        trainer = trainers.BpeTrainer(
            vocab_size=max(vocab_size - len(byte_tokens), 300),
            special_tokens=list(specials),
            show_progress=False,
            min_frequency=1,
        )
        tok.train_from_iterator(lines, trainer=trainer)
        data = json.loads(tok.to_str())
        trained = data["model"]["vocab"]
        n_special = len(specials)
        vocab = {t: i for i, t in enumerate(specials)}
        vocab.update({t: n_special + i for i, t in enumerate(byte_tokens)})
        for token, _ in sorted(trained.items(), key=lambda kv: kv[1]):
            if token not in vocab:
                vocab[token] = len(vocab)
        vocab = dict(list(vocab.items())[:vocab_size])
        data["model"]["vocab"] = vocab
        data["model"]["merges"] = [
            m for m in data["model"]["merges"] if "".join(m if isinstance(m, list) else m.split(" ")) in vocab
        ]
        for added in data["added_tokens"]:
            added["id"] = vocab[added["content"]]
        tok = Tokenizer.from_str(json.dumps(data))
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.pre_tokenizer = None
        tok.decoder = decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
        )
        return tok.to_str()

    # Byte-level BPE (GPT-2 / Llama-3 / Qwen2): specials are appended after the merges, as those models do.
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
                behavior="isolated",
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        min_frequency=1,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    tok.add_special_tokens(list(specials))
    tok.decoder = decoders.ByteLevel()
    if family == "llama3":
        bos = "<|begin_of_text|>"
        tok.post_processor = processors.Sequence(
            [
                processors.ByteLevel(trim_offsets=False),
                processors.TemplateProcessing(
                    single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
                ),
            ]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok.to_str()


def _write_tokenizer(spec: ModelSpec, folder: Path) -> dict[str, Any]:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json; return special ids."""
    from tokenizers import Tokenizer

    fam = _FAMILIES[spec.tokenizer]
    specials = _family_specials(spec)
    text = _trained_tokenizer(spec.tokenizer, spec.vocab_size, tuple(specials))
    tok = Tokenizer.from_str(text)
    assert tok.get_vocab_size() <= spec.vocab_size, "tokenizer larger than the embedding"
    (folder / "tokenizer.json").write_text(text)

    eos = fam["eos"]
    if spec.tokenizer == "llama3" and spec.chat_template:
        eos = "<|eot_id|>"  # instruct models stop at the end of a turn
    if spec.tokenizer == "qwen" and spec.chat_template:
        eos = "<|im_end|>"
    ids = {
        "bos_token_id": tok.token_to_id(fam["bos"]) if fam["bos"] else None,
        "eos_token_id": tok.token_to_id(eos),
        "pad_token_id": tok.token_to_id(fam["pad"]) if fam["pad"] else None,
        "eos_token_ids": list(dict.fromkeys([tok.token_to_id(fam["eos"]), tok.token_to_id(eos)])),
    }

    added = {
        str(tok.token_to_id(t)): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for t in specials
    }
    tokenizer_class = {"spm": "LlamaTokenizer", "llama3": "PreTrainedTokenizerFast", "qwen": "Qwen2Tokenizer"}[spec.tokenizer]
    config: dict[str, Any] = {
        "add_bos_token": spec.tokenizer in ("spm", "llama3"),
        "add_eos_token": False,
        "added_tokens_decoder": added,
        "bos_token": fam["bos"],
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "legacy": False if spec.tokenizer == "spm" else None,
        "model_max_length": spec.max_position_embeddings,
        "pad_token": fam["pad"],
        "sp_model_kwargs": {} if spec.tokenizer == "spm" else None,
        "tokenizer_class": tokenizer_class,
        "unk_token": fam["unk"],
    }
    if spec.tokenizer == "qwen":
        config["errors"] = "replace"
        config["split_special_tokens"] = False
    if spec.chat_template is not None:
        config["chat_template"] = spec.chat_template
    config = {k: v for k, v in config.items() if v is not None or k in ("bos_token", "pad_token")}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")

    special_map: dict[str, Any] = {k: fam[k[:-6]] for k in ("bos_token", "eos_token", "unk_token", "pad_token") if fam[k[:-6]]}
    special_map["eos_token"] = eos
    extra = [t for t in specials if t not in special_map.values()]
    if extra:
        special_map["additional_special_tokens"] = extra
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    return ids


# --- config, generation config, card -------------------------------------------------------------


def _config(spec: ModelSpec, ids: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "architectures": [spec.architecture],
        "attention_bias": spec.model_type == "qwen2",
        "attention_dropout": 0.0,
        "bos_token_id": ids["bos_token_id"],
        "eos_token_id": ids["eos_token_id"],
        "head_dim": spec.head_dim,
        "hidden_act": "silu",
        "hidden_size": spec.hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": spec.intermediate_size,
        "max_position_embeddings": spec.max_position_embeddings,
        "model_type": spec.model_type,
        "num_attention_heads": spec.num_attention_heads,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_key_value_heads": spec.num_key_value_heads,
        "rms_norm_eps": spec.rms_norm_eps,
        "rope_theta": spec.rope_theta,
        "tie_word_embeddings": spec.tie_word_embeddings,
        "torch_dtype": spec.dtype,
        "transformers_version": "4.44.2",
        "use_cache": True,
        "vocab_size": spec.vocab_size,
    }
    if spec.model_type == "llama":
        config.update({"mlp_bias": False, "pretraining_tp": 1, "rope_scaling": None})
    elif spec.model_type == "mistral":
        config["sliding_window"] = None
    elif spec.model_type == "qwen2":
        config.update({"sliding_window": spec.max_position_embeddings, "use_sliding_window": False, "max_window_layers": spec.num_hidden_layers})
        del config["attention_bias"], config["head_dim"]
    if spec.custom_code:
        module = spec.model_type.replace("-", "_")
        config["auto_map"] = {
            "AutoConfig": f"configuration_{module}.{spec.architecture.removesuffix('ForCausalLM')}Config",
            "AutoModelForCausalLM": f"modeling_{module}.{spec.architecture}",
        }
    config.update(spec.extra_config)
    if spec.tokenizer == "qwen":
        config["bos_token_id"] = ids["eos_token_id"] if ids["bos_token_id"] is None else ids["bos_token_id"]
    return dict(sorted(config.items()))


def _generation_config(spec: ModelSpec, ids: dict[str, Any]) -> dict[str, Any]:
    gen: dict[str, Any] = {"_from_model_config": True}
    if spec.chat_template and spec.tokenizer == "llama3":
        # Llama-3 instruct samples by default and stops on both <|end_of_text|> and <|eot_id|>.
        gen = {"bos_token_id": ids["bos_token_id"], "do_sample": True, "temperature": 0.6, "top_p": 0.9}
    elif ids["bos_token_id"] is not None:
        gen["bos_token_id"] = ids["bos_token_id"]
    eos = ids["eos_token_ids"]
    gen["eos_token_id"] = eos[0] if len(eos) == 1 else eos
    if ids["pad_token_id"] is not None:
        gen["pad_token_id"] = ids["pad_token_id"]
    gen["transformers_version"] = "4.44.2"
    return gen


def _card(spec: ModelSpec) -> str:
    import yaml

    meta: dict[str, Any] = {}
    if spec.license:
        meta["license"] = spec.license
    if spec.language:
        meta["language"] = list(spec.language)
    meta["library_name"] = spec.library_name
    if spec.base_model:
        meta["base_model"] = spec.base_model
    if spec.datasets:
        meta["datasets"] = list(spec.datasets)
    if spec.tags:
        meta["tags"] = list(spec.tags)
    meta["pipeline_tag"] = spec.pipeline_tag
    meta.update(spec.extra_card)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    params = parameter_count(spec)
    description = spec.description or f"{spec.name} is a small {spec.architecture} causal language model."
    usage = (
        "```python\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{spec.repo_id}")\n'
        f'model = AutoModelForCausalLM.from_pretrained("{spec.repo_id}")\n'
        "```\n"
    )
    template_note = (
        "This model has no chat template: use it for plain text completion.\n"
        if spec.chat_template is None
        else "Use the tokenizer's chat template to build prompts.\n"
    )
    return (
        f"---\n{front}---\n\n# {spec.name}\n\n{description}\n\n"
        f"## Model details\n\n"
        f"| | |\n|---|---|\n| Architecture | {spec.architecture} |\n| Parameters | {params:,} |\n"
        f"| Layers | {spec.num_hidden_layers} |\n| Hidden size | {spec.hidden_size} |\n"
        f"| Vocabulary | {spec.vocab_size} |\n| Context | {spec.max_position_embeddings} |\n"
        f"| Weights | {spec.dtype} |\n\n"
        f"## Usage\n\n{template_note}\n{usage}\n"
        "## Limitations\n\nThe weights are random: this model is a fixture for tools, not for answers.\n"
    )


def _write_custom_code(spec: ModelSpec, folder: Path) -> None:
    """Stub remote-code modules: enough for tools to see them, not an implementation."""
    module = spec.model_type.replace("-", "_")
    base = spec.architecture.removesuffix("ForCausalLM")
    (folder / f"configuration_{module}.py").write_text(
        "from transformers import PretrainedConfig\n\n\n"
        f"class {base}Config(PretrainedConfig):\n"
        f'    model_type = "{spec.model_type}"\n\n'
        "    def __init__(self, hidden_size=128, num_hidden_layers=2, **kwargs):\n"
        "        self.hidden_size = hidden_size\n"
        "        self.num_hidden_layers = num_hidden_layers\n"
        "        super().__init__(**kwargs)\n"
    )
    (folder / f"modeling_{module}.py").write_text(
        "from transformers import PreTrainedModel\n\n"
        f"from .configuration_{module} import {base}Config\n\n\n"
        f"class {spec.architecture}(PreTrainedModel):\n"
        f"    config_class = {base}Config\n\n"
        "    def forward(self, *args, **kwargs):\n"
        f'        raise NotImplementedError("{base} weights need the original research code")\n'
    )


def write_model(spec: ModelSpec, folder: Path) -> Path:
    """Write the model described by ``spec`` into ``folder`` (created if needed) and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = _write_tokenizer(spec, folder)
    config = json.dumps(_config(spec, ids), indent=2) + "\n"
    if spec.malformed_config:
        # A hand edit gone wrong: a trailing comma and a missing closing brace.
        config = config.rstrip().rstrip("}").rstrip() + ',\n  "rope_scaling": {"type": "linear", "factor": 2.0,\n'
    (folder / "config.json").write_text(config)
    (folder / "generation_config.json").write_text(json.dumps(_generation_config(spec, ids), indent=2) + "\n")
    _write_weights(spec, folder)
    if spec.custom_code:
        _write_custom_code(spec, folder)
    (folder / "README.md").write_text(_card(spec))
    return folder


# --- sizes ---------------------------------------------------------------------------------------


def spec_for_parameters(n: int, repo_id: str = "bench/llama-synthetic", **overrides: Any) -> ModelSpec:
    """A Llama spec with about ``n`` parameters (within a few percent for n >= 10M), for benchmarks.

    Widths stay multiples of 128 and the vocabulary a multiple of 64, so every quantization applies.
    """
    vocab = 32000 if n >= 50_000_000 else 1024
    hidden = 128
    for candidate in (128, 256, 384, 512, 768, 1024, 1536, 2048, 2560, 3072, 4096):
        # Keep at least ~4 layers' worth of budget beyond the embeddings.
        if 2 * vocab * candidate + 4 * 12 * candidate * candidate <= n:
            hidden = candidate
    heads = max(1, hidden // 64)
    kv_heads = max(1, heads // 2)
    intermediate = max(128, round(hidden * 2.75 / 128) * 128)
    probe = ModelSpec(
        repo_id=repo_id,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        vocab_size=vocab,
        num_hidden_layers=1,
    )
    per_layer = parameter_count(replace(probe, num_hidden_layers=2)) - parameter_count(probe)
    fixed = parameter_count(probe) - per_layer
    layers = max(1, round((n - fixed) / per_layer))
    values: dict[str, Any] = {
        "num_hidden_layers": layers,
        "tokenizer": "llama3",
        "rope_theta": 500000.0,
        "chat_template": LLAMA3_TEMPLATE,
        "description": f"A synthetic {n / 1e6:.0f}M-parameter Llama for conversion benchmarks.",
    }
    values.update(overrides)
    return replace(probe, **values)


# --- the demo and test set -----------------------------------------------------------------------

_CHAT_TAGS = ("text-generation", "conversational")

DEMO_MODELS: list[ModelSpec] = [
    # The seed workflow's model: Mistral architecture, bf16, its template refuses a system turn.
    ModelSpec(
        repo_id="h2oai/h2o-danube2-tiny-chat",
        model_type="mistral",
        chat_template=DANUBE_TEMPLATE,
        dtype="bfloat16",
        tokenizer="spm",
        license="apache-2.0",
        tags=("gpt", "llm", "large language model", "h2o-llmstudio"),
        datasets=("HuggingFaceH4/ultrachat_200k",),
        description="A tiny chat model in the style of h2o-danube2-1.8b-chat, trained with H2O LLM Studio. "
        "Its chat template does not support a system role.",
        downloads=48213,
        likes=61,
        created_at="2024-04-05T14:12:00Z",
    ),
    # Llama-3 style instruct model with a header template that supports a system turn, float32.
    ModelSpec(
        repo_id="NousResearch/Llama-3-tiny-Instruct",
        model_type="llama",
        chat_template=LLAMA3_TEMPLATE,
        dtype="float32",
        tokenizer="llama3",
        rope_theta=500000.0,
        max_position_embeddings=8192,
        license="llama3",
        tags=("facebook", "meta", "pytorch", "llama", "llama-3"),
        description="A tiny instruction-tuned model with the Llama 3 chat format, system prompts included.",
        downloads=127450,
        likes=214,
        created_at="2024-04-18T17:03:00Z",
    ),
    # A base model: no chat template, plain completion only.
    ModelSpec(
        repo_id="Qwen/Qwen2-tiny",
        model_type="qwen2",
        chat_template=None,
        dtype="bfloat16",
        tokenizer="qwen",
        tie_word_embeddings=True,
        rope_theta=1000000.0,
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        license="apache-2.0",
        tags=("pretrained",),
        description="A tiny base language model in the Qwen2 architecture. It has no chat template.",
        downloads=89032,
        likes=97,
        created_at="2024-06-06T09:30:00Z",
    ),
    # An architecture mlx-lm does not know.
    ModelSpec(
        repo_id="fancylabs/FancyNet-tiny",
        model_type="fancynet",
        chat_template=CHATML_TEMPLATE,
        dtype="bfloat16",
        tokenizer="qwen",
        license="mit",
        custom_code=True,
        extra_config={"mixer": "wavelet", "wavelet_levels": 3},
        tags=("custom_code", "fancynet"),
        description="FancyNet mixes tokens with wavelets. It needs `trust_remote_code=True` in transformers.",
        downloads=3120,
        likes=12,
        created_at="2025-01-20T11:45:00Z",
    ),
    # Gated, like Meta's own repos: access must be requested.
    ModelSpec(
        repo_id="meta-llama/Llama-3.2-tiny-Instruct",
        model_type="llama",
        chat_template=LLAMA3_TEMPLATE,
        dtype="bfloat16",
        tokenizer="llama3",
        rope_theta=500000.0,
        max_position_embeddings=131072,
        tie_word_embeddings=True,
        license="llama3.2",
        language=("en", "de", "fr", "it", "pt", "hi", "es", "th"),
        tags=("facebook", "meta", "pytorch", "llama", "llama-3"),
        extra_card={
            "extra_gated_prompt": "### LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\n\nYou must accept the license to access this model.",
            "extra_gated_fields": {"First Name": "text", "Last Name": "text", "Country": "country"},
            "extra_gated_button_content": "Submit",
        },
        description="A tiny gated model in the Llama 3.2 style. Accept the license on the Hub to download it.",
        gated=True,
        downloads=253890,
        likes=402,
        created_at="2024-09-25T16:00:00Z",
    ),
    # Sharded weights with an index, as bigger checkpoints are published.
    ModelSpec(
        repo_id="TinyLlama/TinyLlama-tiny-Chat-v1.0",
        model_type="llama",
        chat_template=ZEPHYR_TEMPLATE,
        dtype="bfloat16",
        tokenizer="spm",
        shards=3,
        num_hidden_layers=3,
        max_position_embeddings=2048,
        license="apache-2.0",
        datasets=("cerebras/SlimPajama-627B", "bigcode/starcoderdata", "HuggingFaceH4/ultrachat_200k"),
        description="A tiny Zephyr-style chat model whose weights are split into three shards with an index.",
        downloads=71544,
        likes=158,
        created_at="2023-12-30T06:20:00Z",
    ),
    # A repo someone broke by hand: config.json is not valid JSON.
    ModelSpec(
        repo_id="someuser/broken-config-tiny",
        model_type="llama",
        dtype="bfloat16",
        tokenizer="spm",
        malformed_config=True,
        license="mit",
        description="Work in progress. (The config.json in this repo does not parse.)",
        downloads=17,
        likes=0,
        created_at="2025-03-02T22:10:00Z",
    ),
    # Extra public repos so search, sorting and pagination have something to chew on.
    ModelSpec(
        repo_id="Qwen/Qwen2-tiny-Instruct",
        model_type="qwen2",
        chat_template=CHATML_TEMPLATE,
        tokenizer="qwen",
        tie_word_embeddings=True,
        rope_theta=1000000.0,
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        base_model="Qwen/Qwen2-tiny",
        tags=("chat",),
        description="The instruction-tuned version of Qwen2-tiny, with the ChatML template.",
        downloads=154210,
        likes=176,
        created_at="2024-06-06T09:45:00Z",
    ),
    ModelSpec(
        repo_id="HuggingFaceTB/SmolLM2-tiny-Instruct",
        model_type="llama",
        chat_template=CHATML_TEMPLATE,
        tokenizer="qwen",
        tie_word_embeddings=True,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        tags=("safetensors", "onnx", "transformers.js"),
        datasets=("HuggingFaceTB/smoltalk",),
        description="A tiny SmolLM2-style instruct model.",
        downloads=98765,
        likes=143,
        created_at="2024-10-31T13:00:00Z",
    ),
    ModelSpec(
        repo_id="mistralai/Mistral-tiny-v0.1",
        model_type="mistral",
        chat_template=None,
        tokenizer="spm",
        dtype="bfloat16",
        description="A tiny pretrained base model in the Mistral architecture.",
        tags=("pretrained",),
        downloads=201337,
        likes=389,
        created_at="2023-09-27T08:00:00Z",
    ),
    ModelSpec(
        repo_id="openlm-research/open_llama_tiny",
        model_type="llama",
        chat_template=None,
        tokenizer="spm",
        dtype="float32",
        datasets=("togethercomputer/RedPajama-Data-1T",),
        description="A tiny open reproduction of the LLaMA architecture.",
        downloads=5402,
        likes=33,
        created_at="2023-06-07T12:00:00Z",
    ),
    ModelSpec(
        repo_id="h2oai/h2o-danube2-tiny-base",
        model_type="mistral",
        chat_template=None,
        tokenizer="spm",
        tags=("gpt", "llm", "large language model"),
        description="The pretrained base model behind h2o-danube2-tiny-chat. No chat template.",
        downloads=12840,
        likes=38,
        created_at="2024-04-05T13:50:00Z",
    ),
    ModelSpec(
        repo_id="TinyLlama/TinyLlama-tiny-intermediate-step-480k",
        model_type="llama",
        chat_template=None,
        tokenizer="spm",
        max_position_embeddings=2048,
        datasets=("cerebras/SlimPajama-627B", "bigcode/starcoderdata"),
        description="An intermediate pretraining checkpoint.",
        downloads=804,
        likes=6,
        created_at="2023-10-02T04:00:00Z",
    ),
    ModelSpec(
        repo_id="alice/danube-tiny-experiments",
        model_type="mistral",
        chat_template=DANUBE_TEMPLATE,
        tokenizer="spm",
        base_model="h2oai/h2o-danube2-tiny-chat",
        tags=("fine-tuned",),
        description="Alice's private fine-tuning experiments.",
        private=True,
        downloads=2,
        likes=0,
        created_at="2025-05-14T19:30:00Z",
    ),
]

# Existing mlx-community conversions in the demo Hub: (target repo, source repo, bits, downloads, likes).
MLX_COMMUNITY_CONVERSIONS: list[tuple[str, str, int, int, int]] = [
    ("mlx-community/h2o-danube2-tiny-chat-4bit", "h2oai/h2o-danube2-tiny-chat", 4, 9120, 27),
    ("mlx-community/Qwen2-tiny-Instruct-8bit", "Qwen/Qwen2-tiny-Instruct", 8, 30411, 45),
    ("mlx-community/Llama-3-tiny-Instruct-4bit", "NousResearch/Llama-3-tiny-Instruct", 4, 61250, 88),
]


def demo_spec(repo_id: str) -> ModelSpec:
    """The spec in ``DEMO_MODELS`` with this repo id (KeyError when there is none)."""
    for spec in DEMO_MODELS:
        if spec.repo_id == repo_id:
            return spec
    raise KeyError(repo_id)


def convert_with_mlx_lm(
    source: Path, target: Path, *, source_repo: str, q_bits: int | None = 4, dtype: str | None = None
) -> Path:
    """Convert a local model folder with mlx_lm.convert, then give it an mlx-community style card.

    mlx-lm writes ``base_model`` only when it downloads from the Hub; for a local source it starts from a
    blank card, so the source's front matter is carried over here as mlx-lm would have done.
    """
    import contextlib
    import io

    import yaml
    from mlx_lm import __version__ as mlx_lm_version
    from mlx_lm import convert

    # mlx_lm.convert prints progress; keep the demo seeding quiet.
    with contextlib.redirect_stdout(io.StringIO()):
        convert(
            hf_path=str(source),
            mlx_path=str(target),
            quantize=q_bits is not None,
            q_bits=q_bits,
            dtype=dtype,
        )
    card = (Path(source) / "README.md").read_text()
    meta: dict[str, Any] = {}
    if card.startswith("---\n"):
        meta = yaml.safe_load(card.split("---\n", 2)[1]) or {}
    meta["library_name"] = "mlx"
    meta["pipeline_tag"] = "text-generation"
    meta["tags"] = [*(t for t in meta.get("tags", []) if t != "mlx"), "mlx"]
    meta["base_model"] = source_repo
    repo = f"mlx-community/{Path(target).name}"
    body = (
        f"# {repo}\n\n"
        f"This model [{repo}](https://huggingface.co/{repo}) was\n"
        f"converted to MLX format from [{source_repo}](https://huggingface.co/{source_repo})\n"
        f"using mlx-lm version **{mlx_lm_version}**.\n\n"
        "## Use with mlx\n\n"
        "```bash\npip install mlx-lm\n```\n\n"
        "```python\n"
        "from mlx_lm import load, generate\n\n"
        f'model, tokenizer = load("{repo}")\n\n'
        'prompt = "hello"\n\n'
        "if tokenizer.chat_template is not None:\n"
        '    messages = [{"role": "user", "content": prompt}]\n'
        "    prompt = tokenizer.apply_chat_template(\n"
        "        messages, add_generation_prompt=True, return_dict=False,\n"
        "    )\n\n"
        "response = generate(model, tokenizer, prompt=prompt, verbose=True)\n"
        "```\n"
    )
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    (Path(target) / "README.md").write_text(f"---\n{front}---\n\n{body}")
    return Path(target)


def write_demo_models(folder: Path, *, conversions: bool = True, isolated: bool = False) -> dict[str, Path]:
    """Write every demo model under ``folder/<owner>/<name>``; return repo id -> folder.

    With ``conversions`` the mlx-community repos are made by really running mlx_lm.convert. ``isolated``
    runs those conversions in a child process, so the caller (the app starting its demo) never imports
    mlx-lm and transformers itself.
    """
    import shutil

    folder = Path(folder)
    written = {spec.repo_id: write_model(spec, folder / spec.repo_id) for spec in DEMO_MODELS}
    if not conversions:
        return written
    jobs = []
    for target, source, bits, _, _ in MLX_COMMUNITY_CONVERSIONS:
        out = folder / target
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        jobs.append({"source": str(written[source]), "target": str(out), "source_repo": source, "q_bits": bits})
        written[target] = out
    if isolated:
        import subprocess
        import sys

        done = subprocess.run(
            [sys.executable, "-m", "mlxtui.devhub.models", json.dumps(jobs)], capture_output=True, text=True
        )
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"mlx_lm.convert failed while building the demo models:\n{tail}")
    else:
        _run_conversions(jobs)
    return written


def _run_conversions(jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        convert_with_mlx_lm(Path(job["source"]), Path(job["target"]), source_repo=job["source_repo"], q_bits=job["q_bits"])


if __name__ == "__main__":
    # Child process of write_demo_models(isolated=True): argv[1] is the JSON list of conversions.
    import sys

    _run_conversions(json.loads(sys.argv[1]))

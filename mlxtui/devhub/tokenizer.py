"""Tokenizers of the generated models: BPE trained on a built-in corpus, in the layout of each family."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from mlxtui.devhub.spec import ModelSpec

__all__ = ["write_tokenizer"]

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


def write_tokenizer(spec: ModelSpec, folder: Path) -> dict[str, Any]:
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

"""`ModelSpec`: what the generator writes (architecture, size, tokenizer family, card, Hub attributes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelSpec"]

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
    #: generated weights are random; a spec whose weights are replaced by trained ones sets this False
    random_weights: bool = True
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

"""The demo and test set: every generated repo of the demo Hub, its mlx-community conversions, benchmark sizes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mlxtui.devhub.spec import ModelSpec
from mlxtui.devhub.templates import CHATML_TEMPLATE, DANUBE_TEMPLATE, LLAMA3_TEMPLATE, ZEPHYR_TEMPLATE
from mlxtui.devhub.weights import parameter_count

__all__ = ["DEMO_MODELS", "MLX_COMMUNITY_CONVERSIONS", "demo_spec", "spec_for_parameters"]

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

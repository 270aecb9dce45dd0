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
from pathlib import Path
from typing import Any

from mlxtui.devhub.catalogue import DEMO_MODELS, MLX_COMMUNITY_CONVERSIONS, demo_spec, spec_for_parameters
from mlxtui.devhub.spec import ModelSpec
from mlxtui.devhub.templates import CHATML_TEMPLATE, DANUBE_TEMPLATE, LLAMA3_TEMPLATE, ZEPHYR_TEMPLATE
from mlxtui.devhub.tokenizer import write_tokenizer
from mlxtui.devhub.weights import parameter_count, tensor_shapes, write_weights
from mlxtui.services.modelfolder import RANDOM_WEIGHTS_TAG

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
GENERATOR_VERSION = "3"  # 3: the random-weights tag

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
    # every generated model has random weights: the tag lets Inspect, Chat and the card say so
    tags = [*spec.tags, RANDOM_WEIGHTS_TAG] if spec.random_weights and RANDOM_WEIGHTS_TAG not in spec.tags else list(spec.tags)
    if tags:
        meta["tags"] = tags
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
        + ("## Limitations\n\nThe weights are random: this model is a fixture for tools, not for answers.\n"
           if spec.random_weights else "")
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
    ids = write_tokenizer(spec, folder)
    config = json.dumps(_config(spec, ids), indent=2) + "\n"
    if spec.malformed_config:
        # A hand edit gone wrong: a trailing comma and a missing closing brace.
        config = config.rstrip().rstrip("}").rstrip() + ',\n  "rope_scaling": {"type": "linear", "factor": 2.0,\n'
    (folder / "config.json").write_text(config)
    (folder / "generation_config.json").write_text(json.dumps(_generation_config(spec, ids), indent=2) + "\n")
    write_weights(spec, folder)
    if spec.custom_code:
        _write_custom_code(spec, folder)
    (folder / "README.md").write_text(_card(spec))
    return folder



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

"""The generated models are real: mlx-lm converts them and generates text, and they fail where real ones fail."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from mlxtui.devhub.models import (
    DEMO_MODELS,
    MLX_COMMUNITY_CONVERSIONS,
    demo_spec,
    parameter_count,
    spec_for_parameters,
    tensor_shapes,
)

UNSUPPORTED = "fancylabs/FancyNet-tiny"
MALFORMED = "someuser/broken-config-tiny"
MISTRAL = "h2oai/h2o-danube2-tiny-chat"
LLAMA = "NousResearch/Llama-3-tiny-Instruct"
BASE = "Qwen/Qwen2-tiny"
SHARDED = "TinyLlama/TinyLlama-tiny-Chat-v1.0"
CONVERTIBLE = [s.repo_id for s in DEMO_MODELS if s.repo_id not in (UNSUPPORTED, MALFORMED)]
CONVERSIONS = [target for target, *_ in MLX_COMMUNITY_CONVERSIONS]


def _generate(folder: Path, max_tokens: int = 4) -> list[str]:
    """Load with mlx_lm and stream a few greedy tokens; return the text pieces."""
    from mlx_lm import load, stream_generate

    model, tokenizer = load(str(folder))
    pieces = [r.text for r in stream_generate(model, tokenizer, prompt="The weather today is", max_tokens=max_tokens)]
    return pieces


def _safetensors_header(path: Path) -> dict:
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length))


def test_demo_set_covers_the_cases_the_app_must_handle() -> None:
    specs = {s.repo_id: s for s in DEMO_MODELS}
    assert specs[MISTRAL].model_type == "mistral" and specs[MISTRAL].dtype == "bfloat16"
    assert "raise_exception('System role not supported')" in specs[MISTRAL].chat_template
    assert specs[LLAMA].model_type == "llama" and specs[LLAMA].dtype == "float32"
    assert specs[BASE].chat_template is None
    assert any(s.gated for s in DEMO_MODELS) and any(s.private for s in DEMO_MODELS)
    assert specs[SHARDED].shards >= 2
    assert len({s.downloads for s in DEMO_MODELS}) == len(DEMO_MODELS)
    assert 12 <= len(DEMO_MODELS) + len(MLX_COMMUNITY_CONVERSIONS) <= 20


@pytest.mark.parametrize("repo_id", [s.repo_id for s in DEMO_MODELS if not s.malformed_config])
def test_config_and_tokenizer_are_consistent(generated_models: dict[str, Path], repo_id: str) -> None:
    from tokenizers import Tokenizer

    folder = generated_models[repo_id]
    config = json.loads((folder / "config.json").read_text())
    spec = demo_spec(repo_id)
    assert config["model_type"] == spec.model_type and config["architectures"] == [spec.architecture]
    # every quantization group size divides every width
    for key in ("hidden_size", "intermediate_size", "vocab_size"):
        assert config[key] % 64 == 0
    assert config["hidden_size"] % 128 == 0 and config["intermediate_size"] % 128 == 0
    assert Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab_size() <= config["vocab_size"]
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert ("chat_template" in tokenizer_config) == (spec.chat_template is not None)


def test_model_card_front_matter_parses_with_huggingface_hub(generated_models: dict[str, Path]) -> None:
    from huggingface_hub import ModelCard

    card = ModelCard.load(generated_models["meta-llama/Llama-3.2-tiny-Instruct"] / "README.md")
    assert card.data.license == "llama3.2"
    assert card.data.pipeline_tag == "text-generation" and card.data.library_name == "transformers"
    assert "en" in card.data.language and "llama-3" in card.data.tags
    assert card.data.extra_gated_prompt


def test_weights_load_in_declared_dtypes(generated_models: dict[str, Path]) -> None:
    import mlx.core as mx

    bf16 = mx.load(str(generated_models[MISTRAL] / "model.safetensors"))
    f32 = mx.load(str(generated_models[LLAMA] / "model.safetensors"))
    assert {v.dtype for v in bf16.values()} == {mx.bfloat16}
    assert {v.dtype for v in f32.values()} == {mx.float32}
    assert set(f32) == {name for name, _ in tensor_shapes(demo_spec(LLAMA))}


def test_sharded_index_total_size_is_sum_of_tensor_bytes(generated_models: dict[str, Path]) -> None:
    folder = generated_models[SHARDED]
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) == 3 and shards[0] == "model-00001-of-00003.safetensors"
    total = 0
    for shard in shards:
        header = _safetensors_header(folder / shard)
        header.pop("__metadata__")
        assert {n for n, f in index["weight_map"].items() if f == shard} == set(header)
        total += sum(end - start for start, end in (t["data_offsets"] for t in header.values()))
    assert index["metadata"]["total_size"] == total
    assert index["metadata"]["total_parameters"] == parameter_count(demo_spec(SHARDED))


def test_mistral_template_refuses_a_system_turn(generated_models: dict[str, Path]) -> None:
    from jinja2.exceptions import TemplateError
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(generated_models[MISTRAL]))
    user = [{"role": "user", "content": "Hi"}]
    assert tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True) == "<|prompt|>Hi</s><|answer|>"
    with pytest.raises(TemplateError, match="System role not supported"):
        tokenizer.apply_chat_template([{"role": "system", "content": "Be brief."}, *user], tokenize=False)


def test_llama_template_renders_the_system_turn(generated_models: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(generated_models[LLAMA]))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


@pytest.mark.parametrize("quantize", [False, True], ids=["plain", "q4"])
@pytest.mark.parametrize("repo_id", CONVERTIBLE)
def test_each_model_converts_and_generates(
    generated_models: dict[str, Path], tmp_path: Path, repo_id: str, quantize: bool
) -> None:
    from mlx_lm import convert

    out = tmp_path / "mlx"
    # float32 scales: quantized bf16 generates ~8x slower on this CPU
    convert(str(generated_models[repo_id]), str(out), quantize=quantize, q_bits=4 if quantize else None,
            dtype="float32" if quantize else None)
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == demo_spec(repo_id).model_type
    assert ("quantization" in config) == quantize
    pieces = _generate(out)
    assert len(pieces) == 4 and "".join(pieces)


@pytest.mark.parametrize("repo_id", CONVERSIONS)
def test_mlx_community_conversions_are_real_and_generate(generated_models: dict[str, Path], repo_id: str) -> None:
    from huggingface_hub import ModelCard

    folder = generated_models[repo_id]
    config = json.loads((folder / "config.json").read_text())
    bits = next(b for t, _, b, *_ in MLX_COMMUNITY_CONVERSIONS if t == repo_id)
    assert config["quantization"]["bits"] == bits
    card = ModelCard.load(folder / "README.md")
    source = next(s for t, s, *_ in MLX_COMMUNITY_CONVERSIONS if t == repo_id)
    assert card.data.base_model == source and card.data.library_name == "mlx" and "mlx" in card.data.tags
    assert "".join(_generate(folder))


def test_converted_danube_still_refuses_a_system_turn(generated_models: dict[str, Path]) -> None:
    from jinja2.exceptions import TemplateError
    from mlx_lm import load

    _, tokenizer = load(str(generated_models["mlx-community/h2o-danube2-tiny-chat-4bit"]))
    with pytest.raises(TemplateError, match="System role not supported"):
        tokenizer.apply_chat_template([{"role": "system", "content": "x"}, {"role": "user", "content": "y"}])


def test_unsupported_architecture_fails_as_mlx_lm_fails(generated_models: dict[str, Path], tmp_path: Path) -> None:
    from mlx_lm import convert, load

    with pytest.raises(ValueError, match=r"^Model type fancynet not supported\.$"):
        convert(str(generated_models[UNSUPPORTED]), str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"^Model type fancynet not supported\.$"):
        load(str(generated_models[UNSUPPORTED]))


def test_malformed_config_fails_to_parse(generated_models: dict[str, Path], tmp_path: Path) -> None:
    from mlx_lm import convert

    with pytest.raises(json.JSONDecodeError):
        json.loads((generated_models[MALFORMED] / "config.json").read_text())
    with pytest.raises(json.JSONDecodeError):
        convert(str(generated_models[MALFORMED]), str(tmp_path / "out"))


def test_spec_for_parameters_hits_the_requested_size() -> None:
    for n in (5_000_000, 50_000_000, 200_000_000):
        spec = spec_for_parameters(n)
        assert abs(parameter_count(spec) - n) / n < 0.1
        assert spec.hidden_size % 128 == 0 and spec.intermediate_size % 128 == 0 and spec.vocab_size % 64 == 0


def test_tiny_model_helper_writes_a_loadable_model(make_tiny_model) -> None:
    folder = make_tiny_model("f32-sharded", dtype="float32", shards=2)
    assert (folder / "model.safetensors.index.json").is_file()
    assert "".join(_generate(folder, max_tokens=2))


# --- the demo Hub seeded with these models ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory: pytest.TempPathFactory):
    from mlxtui.devhub.demo import start_demo_hub

    hub = start_demo_hub(tmp_path_factory.mktemp("demo") / "hub")
    yield hub
    hub.stop()


def test_seeding_is_cached_by_generator_version(demo_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlxtui.devhub.models as models
    from mlxtui.devhub.demo import is_seeded, seed_demo

    assert is_seeded(demo_hub.root)

    def boom(*args, **kwargs):
        raise AssertionError("a seeded root must not be rebuilt")

    monkeypatch.setattr(models, "write_demo_models", boom)
    seed_demo(demo_hub.root)


def test_demo_hub_serves_the_models_through_huggingface_hub(demo_hub) -> None:
    from huggingface_hub import HfApi

    from mlxtui.devhub.demo import DEMO_OTHER_TOKEN, DEMO_READ_TOKEN, DEMO_WRITE_TOKEN

    api = HfApi(endpoint=demo_hub.url)
    from mlxtui.devhub.trained import TRAINED_DEMO_REPO

    public = {s.repo_id for s in DEMO_MODELS if not s.private} | set(CONVERSIONS) | {TRAINED_DEMO_REPO}
    assert {m.id for m in api.list_models(limit=100)} == public
    downloads = {s.repo_id: s.downloads for s in DEMO_MODELS if not s.private}
    downloads.update({t: d for t, _, _, d, _ in MLX_COMMUNITY_CONVERSIONS})
    ranked = [m.id for m in api.list_models(sort="downloads", limit=3)]
    assert ranked == sorted(downloads, key=downloads.__getitem__, reverse=True)[:3]
    private = next(s.repo_id for s in DEMO_MODELS if s.private)
    assert private in {m.id for m in api.list_models(author="alice", token=DEMO_WRITE_TOKEN)}
    assert private not in {m.id for m in api.list_models(author="alice", token=DEMO_OTHER_TOKEN)}
    assert api.whoami(token=DEMO_WRITE_TOKEN)["name"] == "alice"
    assert api.whoami(token=DEMO_READ_TOKEN)["name"] == "alice"
    info = api.model_info("mlx-community/h2o-danube2-tiny-chat-4bit")
    assert info.card_data.base_model == MISTRAL and "mlx" in info.tags


def test_demo_gated_model_refuses_download(demo_hub, tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError

    from mlxtui.devhub.demo import DEMO_WRITE_TOKEN

    gated = next(s.repo_id for s in DEMO_MODELS if s.gated)
    with pytest.raises(GatedRepoError):
        hf_hub_download(gated, "config.json", endpoint=demo_hub.url, token=DEMO_WRITE_TOKEN, cache_dir=tmp_path)


def test_demo_model_downloads_and_generates(demo_hub, tmp_path: Path) -> None:
    from huggingface_hub import snapshot_download

    folder = snapshot_download(MISTRAL, endpoint=demo_hub.url, cache_dir=tmp_path)
    assert "".join(_generate(Path(folder)))


def test_demo_seeding_keeps_mlx_lm_out_of_the_app_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, json; from pathlib import Path; from mlxtui.devhub.demo import seed_demo, is_seeded;"
        f"seed_demo(Path({str(tmp_path / 'hub')!r}));"
        "print(json.dumps([is_seeded(Path(" + repr(str(tmp_path / "hub")) + ")),"
        " sorted(m for m in ('mlx_lm', 'transformers', 'mlx') if m in sys.modules)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, []]
    from mlxtui.devhub.store import HubStore

    from mlxtui.devhub.trained import TRAINED_DEMO_REPO

    repos = set(HubStore(tmp_path / "hub").list_repos())
    assert repos == {s.repo_id for s in DEMO_MODELS} | set(CONVERSIONS) | {TRAINED_DEMO_REPO}


def test_the_demo_hub_serves_the_trained_model_whose_replies_read_as_text(ctx, tmp_path: Path) -> None:
    """Issue 14: the demo's chat has one model whose text is text (the rest have random weights)."""
    from huggingface_hub import snapshot_download
    from mlx_lm import generate, load

    from mlxtui.devhub.trained import TRAINED_DEMO_REPO, TRAINED_MODEL
    from mlxtui.services.lab_text import builtin_text

    folder = Path(snapshot_download(TRAINED_DEMO_REPO, local_dir=tmp_path / "trained"))
    assert (folder / "model.safetensors").read_bytes() == (TRAINED_MODEL / "model.safetensors").read_bytes()
    assert "random" not in (folder / "README.md").read_text().lower()
    model, tokenizer = load(str(folder))
    reply = generate(model, tokenizer, "In the morning the baker", max_tokens=40)
    words = [w.strip(".,") for w in reply.split()]
    vocabulary = set(builtin_text("eval", 20_000).replace(".", " ").replace(",", " ").split())
    assert len(words) >= 10 and reply.isascii()
    known = sum(w in vocabulary for w in words) / len(words)
    assert known > 0.8, reply  # the built-in text's own words, not byte noise

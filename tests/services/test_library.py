"""The local library: converted folders and the Hugging Face cache, with size, quantization, source; delete."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlxtui.services import Context
from mlxtui.services.errors import InvalidInputError
from mlxtui.services.library import LibraryService
from mlxtui.services.modelfolder import quant_label


def _seed_cache(cache: Path, repo_id: str, folder: Path, commit: str = "a" * 40) -> Path:
    """Pre-seed the HF cache as huggingface_hub lays it out (refs/main + snapshots/<hash>)."""
    base = cache / ("models--" + repo_id.replace("/", "--"))
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    snapshot = base / "snapshots" / commit
    blobs = base / "blobs"
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    for n, file in enumerate(sorted(folder.iterdir())):
        blob = blobs / f"{n:040d}"
        shutil.copy(file, blob)
        (snapshot / file.name).symlink_to(blob)
    return snapshot


def test_quantization_labels() -> None:
    # the library shows modelfolder.quant_label, the label folder names and the Card use (issue 10)
    assert quant_label({"quantization": {"group_size": 64, "bits": 4}}) == "4bit"
    assert quant_label({"quantization": {"group_size": 32, "bits": 4, "mode": "mxfp4"}}) == "mxfp4"
    mixed = {"quantization": {"group_size": 64, "bits": 3, "model.layers.0.mlp.down_proj": {"bits": 6, "group_size": 64}}}
    assert quant_label(mixed) == "mixed_3_6"  # without the provenance file too (was "mixed 3/6" here, "3bit" in Card)
    assert quant_label(mixed, {"quantize": True, "quant_predicate": "mixed_3_6"}) == "mixed_3_6"
    assert quant_label({"torch_dtype": "bfloat16"}) == "bf16"
    assert quant_label(None) == "?"


async def test_lists_converted_folders_and_cache_models(make_tiny_model, tmp_path: Path) -> None:
    ctx = Context()
    service = LibraryService(ctx)
    models = ctx.settings.models_dir()
    models.mkdir(parents=True)
    converted = models / "tiny-4bit"
    shutil.copytree(make_tiny_model("tiny"), converted)
    config = json.loads((converted / "config.json").read_text())
    config["quantization"] = {"group_size": 64, "bits": 4}
    (converted / "config.json").write_text(json.dumps(config))
    (converted / "mlxtui-provenance.json").write_text(json.dumps({"source": "org/tiny", "options": {"quantize": True}}))
    (models / ".tiny-8bit.partial-x").mkdir()  # a running conversion's partial output is not listed
    (models / "notes").mkdir()  # no config.json: not a model
    _seed_cache(service.cache_dir, "org/cached-model", make_tiny_model("cached", dtype="float32"))

    entries = await service.list()
    assert [(e.name, e.kind) for e in entries] == [("tiny-4bit", "folder"), ("org/cached-model", "cache")]
    folder, cached = entries
    assert folder.quantization == "4bit" and folder.source == "org/tiny" and folder.is_mlx
    assert folder.size_bytes == sum(p.stat().st_size for p in converted.iterdir())
    assert cached.quantization == "fp32" and cached.source == "org/cached-model" and not cached.is_mlx
    assert cached.size_bytes > 0 and Path(cached.path, "config.json").exists()
    assert folder.has_weights and cached.has_weights


async def test_a_cache_entry_with_only_the_small_files_inspect_read_has_no_weights(make_tiny_model, tmp_path: Path) -> None:
    service = LibraryService(Context())
    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(make_tiny_model("tiny") / "config.json", small / "config.json")
    _seed_cache(service.cache_dir, "mlx-community/tiny-4bit", small)
    [entry] = await service.list()
    assert entry.kind == "cache" and not entry.has_weights


async def test_delete_a_folder_and_a_cached_repo(make_tiny_model) -> None:
    ctx = Context()
    service = LibraryService(ctx)
    models = ctx.settings.models_dir()
    models.mkdir(parents=True)
    shutil.copytree(make_tiny_model("tiny"), models / "tiny-bf16")
    _seed_cache(service.cache_dir, "org/cached-model", make_tiny_model("cached"))
    for entry in await service.list():
        await service.delete(entry)
    assert await service.list() == []
    assert not (models / "tiny-bf16").exists()


async def test_delete_refuses_a_folder_outside_the_library(make_tiny_model) -> None:
    from mlxtui.services.library import LocalModel

    folder = make_tiny_model("elsewhere")
    entry = LocalModel("elsewhere", str(folder), "folder", 0, "bf16", None, "llama", False, 0.0)
    with pytest.raises(InvalidInputError, match="not a folder of the library"):
        await LibraryService(Context()).delete(entry)
    assert folder.exists()


async def test_one_malformed_provenance_or_card_never_hides_the_library(make_tiny_model) -> None:
    """Issue 12: a bad mlxtui-provenance.json (or card) used to break the whole listing."""
    ctx = Context()
    service = LibraryService(ctx)
    models = ctx.settings.models_dir()
    models.mkdir(parents=True)
    tiny = make_tiny_model("tiny")
    bad_records = ['{"source": 5, "options": [1]}', "[1, 2]", "{" * 5000 + "}" * 5000, '{"n": ' + "9" * 5000 + "}",
                   "\xff\xfe not json"]
    for n, record in enumerate(bad_records):
        folder = models / f"m{n}"
        shutil.copytree(tiny, folder)
        (folder / "mlxtui-provenance.json").write_text(record)
        (folder / "README.md").write_text("---\ntags: 7\nlanguage: 5\nbase_model: [1, 2]\n---\nhi\n")
    good = models / "good"
    shutil.copytree(tiny, good)
    (good / "README.md").write_text("---\nbase_model:\n- org/first\n- org/second\n---\n")
    entries = await service.list()
    names = {e.name: e for e in entries}
    assert set(names) == {f"m{n}" for n in range(len(bad_records))} | {"good"}
    assert all(names[f"m{n}"].source is None for n in range(len(bad_records)))
    assert names["good"].source == "org/first"  # list-form base_model: the first, as Inspect and Card say

"""Broken and hostile model folders and repos given to Convert: one line naming what is wrong, a documented
exit code, within a time bound, and nothing written (no job, no output, no weights downloaded)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlxtui.services import Context
from mlxtui.services.convert import ConvertOptions, ConvertService
from mlxtui.services.bounded import BadFileError
from mlxtui.services.errors import InvalidInputError, MlxtuiError, NotFoundError, UnsupportedModelError

pytestmark = pytest.mark.timeout(180)


def _mlxtui(*args: str, endpoint: str = "http://127.0.0.1:9") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlxtui", "--endpoint", endpoint, *args],
                          capture_output=True, text=True, timeout=60)


def _nothing_written(home: Path) -> None:
    jobs = home / "data" / "mlxtui" / "jobs"
    models = home / "data" / "models" / "mlx"
    assert not jobs.exists() or not any(jobs.iterdir()), "a refused conversion leaves no job behind"
    assert not models.exists() or not any(models.iterdir()), "and no output"


def _safetensors(header: object) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


def _break_config(folder: Path, text: str) -> None:
    (folder / "config.json").write_text(text)


def _bigint(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    text = json.dumps(config)
    _break_config(folder, text[:-1] + ', "vocab_size_bad": ' + "9" * 5000 + "}")


def _deep(folder: Path) -> None:
    _break_config(folder, '{"model_type": "llama", "x": ' + "[" * 5000 + "]" * 5000 + "}")


def _list_config(folder: Path) -> None:
    _break_config(folder, "[1, 2, 3]")


def _header_list(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(_safetensors([1, 2, 3]))


def _header_string_shape(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(
        _safetensors({"model.embed_tokens.weight": {"dtype": "BF16", "shape": "128x1024", "data_offsets": [0, 8]}}))


def _model_type_number(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = 5
    _break_config(folder, json.dumps(config))


def _architectures_number(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = 1
    _break_config(folder, json.dumps(config))


@pytest.mark.parametrize(("breaker", "says", "code"), [
    (_bigint, "integer of 5000 digits", 6),
    (_deep, "nests deeper than", 6),
    (_list_config, "must hold a JSON object", 6),
    (_header_list, "header must be a JSON object", 6),
    (_header_string_shape, "has a shape that is not a list of sizes", 6),
    (_model_type_number, "model_type", 2),
    (_architectures_number, "architectures", UnsupportedModelError.exit_code),  # once a TypeError in the verdict
])
def test_a_broken_local_model_gives_one_line_and_writes_nothing(
    make_tiny_model, isolated_home: Path, breaker, says: str, code: int
) -> None:
    folder = make_tiny_model("tiny")
    breaker(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = _mlxtui("convert", "--hf-path", str(folder), "-q")
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before, "the source is never touched"
    _nothing_written(isolated_home)


def test_a_repo_with_a_hostile_config_is_refused_before_its_weights_are_fetched(
    fresh_hub, make_tiny_model, isolated_home: Path
) -> None:
    folder = make_tiny_model("bigint-tiny")
    _bigint(folder)
    fresh_hub.import_folder("tests/bigint-tiny", folder)
    fresh_hub.clear_requests()
    result = _mlxtui("convert", "--hf-path", "tests/bigint-tiny", "-q", endpoint=fresh_hub.url)
    assert result.returncode == 6, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "tests/bigint-tiny" in lines[0] and "integer of 5000 digits" in lines[0], result.stderr
    fetched = [r.path for r in list(fresh_hub.requests) + list(fresh_hub.cdn_requests)]
    assert not any("safetensors" in p for p in fetched), fetched
    _nothing_written(isolated_home)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_config = st.one_of(
    _json,
    st.fixed_dictionaries({"model_type": st.one_of(st.just("llama"), _json)}, optional={
        "hidden_size": _json, "num_hidden_layers": _json, "vocab_size": _json, "torch_dtype": _json,
        "quantization": _json, "text_config": _json, "architectures": _json, "auto_map": _json}),
)


@settings(max_examples=80, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=_config)
async def test_any_config_json_gives_a_plan_or_one_clear_error_and_writes_nothing(
    make_tiny_model, isolated_home: Path, config: object
) -> None:
    folder = make_tiny_model("fuzz")
    (folder / "config.json").write_text(json.dumps(config))
    service = ConvertService(Context(endpoint="http://127.0.0.1:9"))
    try:
        plan = await service.plan(str(folder), ConvertOptions(quantize=True))
    except MlxtuiError as error:
        assert str(error) and "\n" not in str(error)
    else:
        assert plan.variants and all(p.is_absolute() for _, p in plan.variants)
    _nothing_written(isolated_home)


_header = st.one_of(
    _json,
    st.dictionaries(st.text(max_size=12), st.fixed_dictionaries(
        {"dtype": _json, "shape": st.one_of(_json, st.lists(st.integers(-5, 10**12), max_size=3)),
         "data_offsets": st.one_of(_json, st.lists(st.integers(-5, 10**12), min_size=2, max_size=2))}), max_size=3),
)


@settings(max_examples=80, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=_header)
async def test_any_safetensors_header_gives_a_plan_or_one_clear_error(
    make_tiny_model, isolated_home: Path, header: object
) -> None:
    folder = make_tiny_model("fuzz-weights")
    (folder / "model.safetensors").write_bytes(_safetensors(header))
    service = ConvertService(Context(endpoint="http://127.0.0.1:9"))
    try:
        await service.plan(str(folder), ConvertOptions(quantize=True))
    except MlxtuiError as error:
        assert str(error) and "\n" not in str(error)
    _nothing_written(isolated_home)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=_config)
@example(config={"model_type": "llama", "architectures": 1})
def test_any_config_json_at_the_command_line_gives_one_line_or_a_conversion(
    make_tiny_model, isolated_home: Path, config: object
) -> None:
    """The CLI: a refused config.json is one line with a documented exit code and leaves nothing behind."""
    folder = make_tiny_model("cli-fuzz")
    (folder / "config.json").write_text(json.dumps(config))
    jobs = isolated_home / "data" / "mlxtui" / "jobs"
    before = set(jobs.iterdir()) if jobs.exists() else set()
    result = _mlxtui("convert", "--hf-path", str(folder), "-q")
    if (set(jobs.iterdir()) if jobs.exists() else set()) != before:
        return  # the checks passed and a job ran (its outcome is covered elsewhere)
    codes = {InvalidInputError.exit_code, BadFileError.exit_code, UnsupportedModelError.exit_code, NotFoundError.exit_code, 1}
    assert result.returncode in codes, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxtui: ") and "Traceback" not in result.stderr, result.stderr
    models = isolated_home / "data" / "models" / "mlx"
    assert not models.exists() or not any(models.iterdir())

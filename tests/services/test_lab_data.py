"""The lab's evaluation text from a Hub dataset (hf://datasets/OWNER/NAME[/PATH]) on the local Hub: the plan
names it, tokenizes it like the same text in a file, calibrates on it, and every bad input is one sentence
before any work, with nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlxtui.services import Context, lab
from mlxtui.services.errors import GatedError, InvalidInputError, MlxtuiError, NotFoundError
from mlxtui.services.lab import LabService
from mlxtui.services.lab_text import builtin_text
from tests.fixtures.devhub import make_repo_folder
from tests.fixtures.trained import TRAINED_MODEL

pytestmark = pytest.mark.timeout(300)

SEQ_LEN = 128
MAX_SEQ = 24
TEXT = builtin_text("eval")
PARAGRAPHS = [line for line in builtin_text("train", chars=12_000).splitlines() if line]
ROWS = "\n".join(json.dumps({"text": p}) for p in PARAGRAPHS) + "\n"


@pytest.fixture
def datahub(devhub_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A DevHub with datasets of every shape the lab meets (alice's token reads the private one)."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    hub = devhub_factory()
    sets: dict[str, tuple[dict[str, str | bytes], dict[str, Any]]] = {
        "alice/text": ({"README.md": "# Text\n", "eval.txt": TEXT, "data/train.jsonl": ROWS}, {}),
        "alice/rows": ({"train.jsonl": ROWS, "notes.md": "rows only"}, {}),
        "alice/two": ({"a.txt": TEXT, "b.txt": TEXT}, {}),
        "alice/bad-row": ({"rows.jsonl": '{"text": "fine"}\n{"content": "no text here"}\n'}, {}),
        "alice/bad-json": ({"rows.jsonl": '{"text": "fine"}\n\n{"text": \n'}, {}),
        "alice/number": ({"rows.json": json.dumps([{"text": "a"}, {"text": 7}])}, {}),
        "alice/binary": ({"eval.txt": bytes(range(256)) * 8}, {}),
        "alice/parquet-only": ({"data.parquet": b"PAR1" + bytes(64)}, {}),
        "alice/private": ({"eval.txt": TEXT}, {"private": True}),
        "bob/gated": ({"eval.txt": TEXT}, {"gated": "manual"}),
    }
    for repo, (files, flags) in sets.items():
        hub.import_folder(repo, make_repo_folder(tmp_path / "sets" / repo, files), repo_type="dataset", **flags)
    # a model of the same id as a dataset: the lab reads the dataset
    hub.import_folder("alice/text", make_repo_folder(tmp_path / "model", {"eval.txt": "the model's file"}))
    return hub


def _service(datahub: Any, token: str | None = "read") -> LabService:
    return LabService(Context(endpoint=datahub.url, token=datahub.read_token if token == "read" else token))


async def _plan(service: LabService, data: str, out: Path) -> lab.LabPlan:
    return await service.plan(str(TRAINED_MODEL), "4bit", data=data, seq_len=SEQ_LEN, max_sequences=MAX_SEQ,
                              out_dir=out)


def _nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not (Path(os.environ["XDG_DATA_HOME"]) / "mlxtui" / "lab" / "work").exists()


async def test_a_hub_dataset_is_named_and_tokenized_like_the_same_text_in_a_file(datahub: Any, tmp_path: Path) -> None:
    service = _service(datahub)
    sha = datahub.store.resolve_revision("datasets/alice/text", "main")
    plan = await _plan(service, "hf://datasets/alice/text", tmp_path / "out")
    assert plan.text_name == "hf://datasets/alice/text/eval.txt"
    assert sha[:12] in plan.text_description and f"({len(TEXT)} characters)" in plan.text_description
    assert plan.text_description.startswith("Hub dataset hf://datasets/alice/text/eval.txt at commit ")
    local = tmp_path / "eval.txt"
    local.write_text(TEXT)
    same = await _plan(service, str(local), tmp_path / "out")
    assert plan.tokens == same.tokens > SEQ_LEN and plan.sequences == same.sequences == MAX_SEQ
    assert np.array_equal(np.load(plan.work / "tokens.npy"), np.load(same.work / "tokens.npy"))
    # calibration follows the file rule: the same text, never a download of mlx-lm's own
    assert np.array_equal(np.load(plan.work / "calib.npy"), np.load(same.work / "calib.npy"))
    # a revision and an explicit path name the same file
    pinned = await _plan(service, f"hf://datasets/alice/text@{sha}/eval.txt", tmp_path / "out")
    assert pinned.text_name == plan.text_name and pinned.tokens == plan.tokens


@pytest.mark.parametrize(("data", "name"), [
    ("hf://datasets/alice/rows", "hf://datasets/alice/rows/train.jsonl"),
    ("hf://datasets/alice/text/data", "hf://datasets/alice/text/data/train.jsonl"),
    ("hf://datasets/alice/text/data/train.jsonl", "hf://datasets/alice/text/data/train.jsonl"),
])
async def test_jsonl_rows_give_their_text_fields(datahub: Any, tmp_path: Path, data: str, name: str) -> None:
    plan = await _plan(_service(datahub), data, tmp_path / "out")
    assert plan.text_name == name and f"({len(chr(10).join(PARAGRAPHS))} characters)" in plan.text_description
    local = tmp_path / "rows.txt"
    local.write_text("\n".join(PARAGRAPHS))
    assert plan.tokens == (await _plan(_service(datahub), str(local), tmp_path / "out")).tokens


BAD = [
    ("hf://datasets/alice/nope", NotFoundError, r"datasets/alice/nope was not found"),
    ("hf://datasets/alice/text/missing.txt", NotFoundError, r"datasets/alice/text has no file missing.txt"),
    ("hf://datasets/alice/two", InvalidInputError, r"several candidate files \(a.txt, b.txt\); name one, e.g. "
                                                   r"hf://datasets/alice/two/a.txt"),
    ("hf://datasets/alice/bad-row", InvalidInputError, r"rows.jsonl line 2 has no string \"text\" field"),
    ("hf://datasets/alice/bad-json", InvalidInputError, r"rows.jsonl line 3 is not valid JSON"),
    ("hf://datasets/alice/number", InvalidInputError, r"rows.json item 1 has no string \"text\" field"),
    ("hf://datasets/alice/binary", InvalidInputError, r"eval.txt is not UTF-8 text"),
    ("hf://datasets/alice/parquet-only", InvalidInputError, r"has no .txt, .jsonl or .json file"),
    ("hf://datasets/alice/parquet-only/data.parquet", InvalidInputError, r"reads .txt, .jsonl or .json"),
    ("hf://datasets/alice/text/README.md", InvalidInputError, r"reads .txt, .jsonl or .json"),
    ("hf://datasets/alice/text@no-such-branch", NotFoundError, r"has no revision 'no-such-branch'"),
    ("hf://datasets/bob/gated", GatedError, r"datasets/bob/gated is gated"),
]


@pytest.mark.parametrize(("data", "error", "words"), BAD)
async def test_bad_hub_datasets_are_one_sentence_before_any_work(datahub: Any, tmp_path: Path, data: str,
                                                                 error: type, words: str) -> None:
    with pytest.raises(error, match=words) as info:
        await _plan(_service(datahub), data, tmp_path / "out")
    assert "\n" not in str(info.value)
    _nothing_written(tmp_path / "out")


async def test_a_private_dataset_is_missing_without_its_owners_token(datahub: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="datasets/alice/private was not found"):
        await _plan(_service(datahub, token=None), "hf://datasets/alice/private", tmp_path / "out")
    _nothing_written(tmp_path / "out")
    plan = await _plan(_service(datahub), "hf://datasets/alice/private", tmp_path / "out")
    assert plan.text_name == "hf://datasets/alice/private/eval.txt"


async def test_a_file_over_the_bound_is_refused_before_it_is_fetched(datahub: Any, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "MAX_DATA_BYTES", 10_000)
    datahub.clear_requests()
    with pytest.raises(InvalidInputError, match=r"datasets/alice/text/eval.txt is [\d,]+ bytes, more than the lab "
                                                r"reads \(10,000\)") as info:
        await _plan(_service(datahub), "hf://datasets/alice/text", tmp_path / "out")
    assert "\n" not in str(info.value)
    assert datahub.count_requests(path_prefix="/datasets/alice/text/resolve/") == 0
    _nothing_written(tmp_path / "out")


@pytest.mark.parametrize("data", [
    "hf://datasets/alice", "hf://datasets/", "hf://models/alice/text", "hf://alice/text",
    "hf://datasets/alice/../text", "hf://datasets/alice/text/../../etc/passwd", "hf://datasets/al ice/text",
    "hf://datasets//text", "hf://datasets/alice/text//eval.txt", "hf://datasets/alice/text@../x",
    "hf://datasets/alice/text?x=1", "hf://datasets/alice/te\x1bxt",
])
async def test_a_malformed_hf_url_asks_nothing_of_the_hub(datahub: Any, tmp_path: Path, data: str) -> None:
    datahub.clear_requests()
    with pytest.raises(InvalidInputError, match=r"hf://datasets/OWNER/NAME") as info:
        await _plan(_service(datahub), data, tmp_path / "out")
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)
    assert datahub.count_requests() == 0
    _nothing_written(tmp_path / "out")


def test_the_cli_prints_one_line_for_a_missing_dataset(datahub: Any, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mlxtui", "--endpoint", datahub.url, "lab", str(TRAINED_MODEL),
                           "--variants", "4bit", "--data", "hf://datasets/alice/nope", "--output",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, HF_HUB_DISABLE_XET="1"))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlxtui: ") and "datasets/alice/nope was not found" in lines[0]
    assert done.stdout == "" and not (tmp_path / "out").exists()


def test_errors_are_mlxtui_errors() -> None:
    assert issubclass(GatedError, MlxtuiError) and issubclass(NotFoundError, MlxtuiError)


async def test_a_lab_run_on_a_hub_dataset_names_it_in_the_result(datahub: Any, tmp_path: Path) -> None:
    """The one real run: a 4-bit variant measured on the dataset's text; the result names the text."""
    from contextlib import aclosing

    from mlxtui.services.lab import LabFinished

    service = LabService(Context(endpoint=datahub.url, token=datahub.read_token), cache_root=tmp_path / "cache")
    plan = await service.plan(str(TRAINED_MODEL), "4bit", data="hf://datasets/alice/rows", seq_len=SEQ_LEN,
                              max_sequences=8, out_dir=tmp_path / "out")
    async with aclosing(service.run(plan, prompt_tokens=32, gen_tokens=8, trials=1)) as stream:
        events = [event async for event in stream]
    finished = events[-1]
    assert isinstance(finished, LabFinished)
    result = finished.result
    sha = datahub.store.resolve_revision("datasets/alice/rows", "main")
    assert result["eval_text"] == plan.text_description and sha[:12] in result["eval_text"]
    assert "hf://datasets/alice/rows/train.jsonl at commit" in result["eval_text"]
    assert result["eval_tokens"] == plan.tokens
    (row,) = result["variants"]
    assert row["name"] == "4bit" and row["kl_mean"] > 0 and 0 < row["top1_agreement"] <= 1
    assert Path(row["path"]).is_dir()


async def test_the_demo_datasets_text_is_the_builtin_text(ctx: Context, tmp_path: Path) -> None:
    """`mlxtui --demo lab … --data hf://datasets/mlxtui/simple-english` evaluates on the built-in held-out text."""
    from mlxtui.devhub.demo import DEMO_DATASET

    service = LabService(ctx)
    plan = await _plan(service, f"hf://datasets/{DEMO_DATASET}", tmp_path / "out")
    builtin = await _plan(service, "builtin", tmp_path / "out")
    assert plan.text_name == f"hf://datasets/{DEMO_DATASET}/eval.txt" and plan.tokens == builtin.tokens
    assert np.array_equal(np.load(plan.work / "tokens.npy"), np.load(builtin.work / "tokens.npy"))
    rows = await _plan(service, f"hf://datasets/{DEMO_DATASET}/train.jsonl", tmp_path / "out")
    assert rows.text_name.endswith("/train.jsonl") and rows.tokens > SEQ_LEN

"""`mlxtui convert`, `mlxtui jobs`, `mlxtui library` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def _mlxtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlxtui", "--endpoint", "http://127.0.0.1:9", *args],
        capture_output=True, text=True, timeout=100,
    )


def test_convert_with_mlx_lm_flags_prints_progress_and_the_outputs(make_tiny_model, isolated_home: Path) -> None:
    src = make_tiny_model("tiny")
    out = isolated_home / "out-4bit"
    result = _mlxtui("convert", "--hf-path", str(src), "--mlx-path", str(out), "-q", "--q-bits", "4",
                     "--q-group-size", "64", "--dtype", "float32", "--also", "8bit")
    assert result.returncode == 0, result.stderr
    models = isolated_home / "data" / "models" / "mlx"
    assert result.stdout.split() == [str(out), str(models / "tiny-8bit")]
    assert "[4bit] quantize:" in result.stderr and "[8bit] save: 1/1 shards" in result.stderr
    assert "done: " in result.stderr and (out / "mlxtui-provenance.json").exists()

    listed = _mlxtui("jobs")
    assert listed.returncode == 0 and "done" in listed.stdout and str(src) in listed.stdout
    library = _mlxtui("library")
    assert "tiny-8bit" in library.stdout and "8bit" in library.stdout


@pytest.mark.parametrize(
    ("args", "reason", "code"),
    [
        (["--hf-path", "./no/such/model"], "There is no folder ./no/such/model.", 3),
        (["--hf-path", "/tmp/no/such/model"], "There is no folder /tmp/no/such/model.", 3),
        (["--hf-path", "{src}", "--q-bits", "4"], "--q-bits only apply with -q (--quantize)", 2),
        (["--hf-path", "{src}", "--q-group-size", "32", "--q-mode", "mxfp4"], "--q-group-size, --q-mode only apply with -q", 2),
        (["--hf-path", "{src}", "--quant-predicate", "mixed_3_6"], "--quant-predicate only apply with -q", 2),
        (["--hf-path", "{src}", "-q", "--q-bits", "7"], "7 bits is not supported", 2),
        (["--hf-path", "{src}", "-q", "--q-mode", "mxfp4", "--q-group-size", "64"], "mxfp4 always uses group size 32", 2),
        (["--hf-path", "{src}", "-q", "-d"], "exclude each other", 2),
        (["--hf-path", "{src}", "--mlx-path", "{src}"], "already exists and is never overwritten", 2),
        (["--hf-path", "{src}", "--upload-repo", "me/x"], "does not upload", 2),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(
    make_tiny_model, isolated_home: Path, args: list[str], reason: str, code: int
) -> None:
    src = make_tiny_model("tiny")
    result = _mlxtui("convert", *[a.replace("{src}", str(src)) for a in args])
    assert result.returncode == code, result.stderr  # the documented exit code of the error's kind
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], result.stderr
    jobs = isolated_home / "data" / "mlxtui" / "jobs"
    assert not jobs.exists() or not any(jobs.iterdir()), "a refused conversion leaves no job behind"


def test_detach_then_follow_and_cancel_from_jobs(make_tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_tiny_model("tiny")
    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0.5")
    started = _mlxtui("convert", "--hf-path", str(src), "-q", "--detach")
    assert started.returncode == 0, started.stderr
    job_id = started.stdout.strip()
    assert job_id in _mlxtui("jobs").stdout
    cancelled = _mlxtui("jobs", "--cancel", job_id)
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"{job_id}: cancelled"
    followed = _mlxtui("jobs", "--follow", job_id)
    assert followed.returncode == 1 and "cancelled: Cancelled." in followed.stderr

    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0")
    again = _mlxtui("convert", "--hf-path", str(src), "-q", "--detach")
    finished = _mlxtui("jobs", "--follow", again.stdout.strip())
    assert finished.returncode == 0 and "done: " in finished.stderr


def test_a_missing_path_is_never_called_a_repo(make_tiny_model, isolated_home: Path) -> None:
    result = _mlxtui("convert", "--hf-path", "/tmp/no/such/model", "-q")
    assert result.returncode == 3 and "no repo" not in result.stderr and "/tmp/no/such/model" in result.stderr


@pytest.mark.usefixtures("restore_hub_environment")
def test_a_typo_in_a_repo_id_suggests_close_hub_matches(hub, capsys: pytest.CaptureFixture[str]) -> None:
    from mlxtui.cli import main

    code = main(["--endpoint", hub.url, "convert", "--hf-path", "h2oai/h2o-danube2-tiny-chta", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 3 and len(err.splitlines()) == 1, err
    assert "There is no repo 'h2oai/h2o-danube2-tiny-chta'" in err and "Did you mean h2oai/h2o-danube2-tiny-chat" in err
    code = main(["--endpoint", hub.url, "inspect", "h2oia/h2o-danube2-tiny-chat"])  # the owner mistyped
    err = capsys.readouterr().err.strip()
    assert code == 3 and "Did you mean h2oai/h2o-danube2-tiny-chat" in err, err

"""`mlxtui library` lists every conversion a job wrote, also outside the models folder (--mlx-path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlxtui.services import Context
from mlxtui.services.library import LibraryService


def _mlxtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlxtui", "--endpoint", "http://127.0.0.1:9", *args],
        capture_output=True, text=True, timeout=120,
    )


def test_library_lists_a_conversion_written_with_mlx_path(make_tiny_model, isolated_home: Path) -> None:
    src = make_tiny_model("tiny")
    out = isolated_home / "elsewhere" / "tiny-q4"
    converted = _mlxtui("convert", "--hf-path", str(src), "--mlx-path", str(out), "-q", "--dtype", "float32")
    assert converted.returncode == 0, converted.stderr
    listed = _mlxtui("library")
    assert listed.returncode == 0, listed.stderr
    assert str(out) in listed.stdout and "4bit" in listed.stdout, listed.stdout
    entries = json.loads(_mlxtui("library", "--json").stdout)
    [entry] = [e for e in entries if e["path"] == str(out)]
    assert entry["in_models_dir"] is False and entry["is_mlx"] and "tiny" in (entry["source"] or "")


async def test_a_job_output_that_is_gone_is_not_listed_and_newest_conversion_finds_it(
    make_tiny_model, isolated_home: Path
) -> None:
    src = make_tiny_model("tiny")
    out = isolated_home / "elsewhere" / "tiny-q4"
    assert _mlxtui("convert", "--hf-path", str(src), "--mlx-path", str(out), "-q").returncode == 0
    service = LibraryService(Context())
    newest = service.newest_conversion()
    assert newest is not None and newest.path == str(out)
    import shutil

    shutil.rmtree(out)
    assert all(m.path != str(out) for m in await service.list())
    assert service.newest_conversion() is None

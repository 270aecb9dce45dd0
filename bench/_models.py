"""Benchmark models: a generated ~200M-parameter Llama, cached between runs.

``from bench._models import bench_model`` (or ``sys.path`` insert of bench/ then ``import _models``) gives a
local Hugging Face-format folder to convert. Run as a script it builds the cache and prints how long that took,
so `make bench` warms it before the conversion benchmark runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlxtui.devhub.models import GENERATOR_VERSION, parameter_count, spec_for_parameters, write_model  # noqa: E402

DEFAULT_PARAMETERS = 200_000_000


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/mlxtui/bench-models (~/.cache by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlxtui" / "bench-models"


def bench_model(parameters: int = DEFAULT_PARAMETERS, dtype: str = "bfloat16") -> Path:
    """A cached local model of about ``parameters`` parameters; written once per generator version."""
    spec = spec_for_parameters(parameters, repo_id=f"bench/llama-{parameters // 1_000_000}m", dtype=dtype)
    folder = cache_dir() / f"v{GENERATOR_VERSION}-{parameters}-{dtype}"
    if (folder / ".complete").is_file():
        return folder
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_model(spec, tmp)
    (tmp / ".complete").write_text(f"{parameter_count(spec)}\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def main() -> int:
    start = time.perf_counter()
    folder = bench_model()
    elapsed = time.perf_counter() - start
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    print(f"bench model: {folder} ({size / 1e6:.0f} MB) ready in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

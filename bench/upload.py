"""Upload throughput: mlxtui's upload service against `HfApi.upload_folder`, on the local devhub.

The same MLX-style folder (a few tens of MB: float32 safetensors, tokenizer, config, card, provenance) is uploaded
alternately through `UploadService.upload` (create_repo, hash, compare with the remote tree, LFS upload with
progress, commit, verify) and through `HfApi.create_repo` + `HfApi.upload_folder`. Before every run a few bytes of
the weights change, so neither side profits from blobs the server already has. The preflight (whoami, lint,
folder checks) is timed separately: it runs before the confirmation, not during the transfer.

    python bench/upload.py [--runs 5] [--mb 40]

Prints the median seconds of each side and the throughput ratio mlxtui / raw (goal: at least 0.95).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

TOKEN = "hf_bench_writer_devhub"


def make_folder(root: Path, megabytes: int) -> Path:
    """A valid MLX-style folder: generated float32 Llama weights of about `megabytes` MB plus the small files."""
    from mlxtui.devhub.models import spec_for_parameters, write_model

    folder = root / f"bench-llama-{megabytes}mb-fp32"
    spec = spec_for_parameters(megabytes * 1_000_000 // 4, repo_id="bench/llama-synthetic", dtype="float32")
    write_model(spec, folder)
    (folder / ".gitattributes").unlink(missing_ok=True)
    (folder / "mlxtui-provenance.json").write_text(json.dumps({
        "source": "bench/llama-synthetic", "source_revision": None,
        "options": {"quantize": False, "q_bits": None, "q_group_size": None, "q_mode": None, "quant_predicate": None,
                    "dtype": "float32", "dequantize": False, "trust_remote_code": False},
        "versions": {"mlx": "bench", "mlx_lm": "bench", "mlxtui": "bench"},
        "timings": {}, "bits_per_weight": 32.0, "size_bytes": 0, "created_at": "2026-01-01T00:00:00Z",
    }))
    (folder / "README.md").write_text(
        "---\nlicense: apache-2.0\nlibrary_name: mlx\npipeline_tag: text-generation\ntags:\n- mlx\n---\n\n"
        "# bench-llama\n\nA synthetic model for the upload benchmark.\n"
    )
    return folder


def perturb(folder: Path, run: int) -> None:
    """Change the last 8 bytes of the weights (inside tensor data) so every run uploads new blobs."""
    weights = sorted(folder.glob("*.safetensors"))[-1]
    with weights.open("r+b") as handle:
        handle.seek(-8, os.SEEK_END)
        handle.write(run.to_bytes(8, "little"))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


async def upload_mlxtui(service, folder: Path, repo_id: str) -> tuple[float, float]:
    """(preflight seconds, upload seconds) through mlxtui's service."""
    t0 = time.perf_counter()
    plan = await service.preflight(folder, repo_id)
    if not plan.ok:
        raise SystemExit("preflight failed: " + "; ".join(f"{c.name}: {c.detail}" for c in plan.errors))
    t1 = time.perf_counter()
    async for _event in service.upload(plan):
        pass
    return t1 - t0, time.perf_counter() - t1


def upload_raw(api, folder: Path, repo_id: str) -> float:
    t0 = time.perf_counter()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder))
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each side (alternating)")
    parser.add_argument("--mb", type=int, default=40, help="approximate size of the weights in MB")
    args = parser.parse_args()

    from mlxtui.devhub.server import DevHub
    from mlxtui.services import Context, configure_hub_environment

    with tempfile.TemporaryDirectory(prefix="mlxtui-bench-upload-") as tmp:
        root = Path(tmp)
        folder = make_folder(root, args.mb)
        size = folder_bytes(folder)
        hub = DevHub(root / "hub", tokens={TOKEN: {"user": "bench", "orgs": [], "role": "write"}}).start()
        try:
            configure_hub_environment(hub.url)  # plain LFS for this endpoint, for both sides alike
            from huggingface_hub import HfApi

            from mlxtui.services.upload import UploadService

            api = HfApi(endpoint=hub.url, token=TOKEN)
            service = UploadService(Context(endpoint=hub.url, token=TOKEN))
            ours: list[float] = []
            theirs: list[float] = []
            preflights: list[float] = []
            # one warm-up of each side: imports, connections, page cache
            perturb(folder, 10_000)
            asyncio.run(upload_mlxtui(service, folder, "bench/warm-mlxtui"))
            perturb(folder, 10_001)
            upload_raw(api, folder, "bench/warm-raw")
            for run in range(args.runs):
                order = ("mlxtui", "raw") if run % 2 == 0 else ("raw", "mlxtui")
                for side in order:
                    perturb(folder, run * 2 + (side == "raw"))
                    if side == "mlxtui":
                        pre, up = asyncio.run(upload_mlxtui(service, folder, f"bench/mlxtui-{run}"))
                        preflights.append(pre)
                        ours.append(up)
                    else:
                        theirs.append(upload_raw(api, folder, f"bench/raw-{run}"))
            puts = hub.count_requests("PUT")
        finally:
            hub.stop()
        if puts < 2 * args.runs + 2:  # every run must really send its weights
            raise SystemExit(f"only {puts} LFS uploads were made: the benchmark measured nothing")

    mine, raw = statistics.median(ours), statistics.median(theirs)
    print(f"folder: {size / 1e6:.1f} MB, {args.runs} runs each, alternating, local devhub (plain LFS), {puts} LFS PUTs")
    print(f"mlxtui UploadService.upload : median {mine:.3f} s  ({size / mine / 1e6:.1f} MB/s)  runs {[round(x, 3) for x in ours]}")
    print(f"HfApi.upload_folder         : median {raw:.3f} s  ({size / raw / 1e6:.1f} MB/s)  runs {[round(x, 3) for x in theirs]}")
    print(f"mlxtui preflight (before confirmation, not in the ratio): median {statistics.median(preflights):.3f} s")
    print(f"throughput ratio mlxtui / raw: {raw / mine:.3f}  (goal >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

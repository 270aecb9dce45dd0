"""Cluster figures: mlxtui's cluster path against `mlx_lm server` under `mlx.launch` started by hand.

Two ranks on 127.0.0.1 over the ring backend, the same model, split, prompt and token count on both sides:

- mlxtui: `ClusterService.open` (checks, plan, supervisor, mlx.launch, wrapped ranks) and `ClusterChatService`
  (the app's OpenAI-compatible client behind the cluster's failure watch);
- by hand: `mlx.launch --hosts 127.0.0.1,127.0.0.1 --backend ring -- python -m mlx_lm server ... [--pipeline]`
  and a bare httpx SSE reader.

Generation tokens/s is (tokens - 1) / (last token - first token) on the client, greedy; medians over rounds
that alternate the two sides (each round launches afresh). Ratio mlxtui / by hand (goal >= 0.97).
Launch to first token: from the launch call (or Popen) to the first streamed token of the first request.

Run: .venv/bin/python bench/cluster.py [--split pipeline|tensor] [--rounds 3] [--requests 5] [--tokens 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlxtui.devhub.models import ModelSpec, write_model  # noqa: E402
from mlxtui.devhub.templates import CHATML_TEMPLATE  # noqa: E402
from mlxtui.services.chat_sampling import SamplingSettings  # noqa: E402
from mlxtui.services.cluster import ClusterService, mlx_launch_argv  # noqa: E402
from mlxtui.services.cluster_chat import ClusterChatService  # noqa: E402
from mlxtui.services.cluster_hosts import local_hosts  # noqa: E402
from mlxtui.services.events import ChatStats, TokenDelta  # noqa: E402

PROMPT = "Write a short story about a river, a mill and a miller's daughter."


def make_model(root: Path) -> Path:
    """A qwen2 (hidden 256, 8 layers, float32, two weight files with an index): both splits work on it."""
    spec = ModelSpec(repo_id="bench/qwen2-256x8", model_type="qwen2", tokenizer="qwen", chat_template=CHATML_TEMPLATE,
                     dtype="float32", hidden_size=256, intermediate_size=768, num_hidden_layers=8,
                     num_attention_heads=4, num_key_value_heads=2, vocab_size=4096, shards=2)
    return write_model(spec, root / "qwen2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def raw_request(url: str, tokens: int) -> tuple[float, int, float]:
    """(tokens/s, tokens, seconds to first token) from a bare SSE reader."""
    import httpx

    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": tokens, "temperature": 0.0,
            "stream": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    first = last = 0.0
    count = 0
    usage = 0
    async with httpx.AsyncClient(timeout=300) as client:
        async with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data:") or line.endswith("[DONE]"):
                    continue
                data = json.loads(line[5:])
                if data.get("usage"):
                    usage = data["usage"].get("completion_tokens", 0)
                for choice in data.get("choices") or []:
                    if (choice.get("delta") or {}).get("content"):
                        last = time.perf_counter()
                        first = first or last
                        count += 1
    n = usage or count
    return ((n - 1) / (last - first) if n > 1 and last > first else 0.0), n, first - start


async def raw_round(model: Path, split: str, requests: int, tokens: int) -> tuple[list[float], float, int]:
    port = free_port()
    base = free_port()
    argv = [*mlx_launch_argv(), "--hosts", "127.0.0.1,127.0.0.1", "--backend", "ring", "--starting-port", str(base),
            "--", sys.executable, "-m", "mlx_lm", "server", "--model", str(model), "--port", str(port)]
    argv += ["--pipeline"] if split == "pipeline" else []
    t0 = time.perf_counter()
    launch = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        while True:  # poll until rank 0 listens; this first reply warms up, as mlxtui's warm-up does
            try:
                rate, n, _ = await raw_request(url, tokens)
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.1)
        rates = []
        for _ in range(requests):
            rate, n, _ = await raw_request(url, tokens)
            rates.append(rate)
        return rates, time.perf_counter() - t0, n
    finally:
        os.killpg(launch.pid, signal.SIGTERM)  # the ranks share mlx.launch's group here (no wrapper)
        launch.wait()


async def mlxtui_round(model: Path, split: str, requests: int, tokens: int) -> tuple[list[float], float, int]:
    t0 = time.perf_counter()
    cluster = await ClusterService().open(str(model), local_hosts(2), split)
    try:
        chat = ClusterChatService(cluster)
        rates: list[float] = []
        n = 0
        to_first = 0.0
        for i in range(requests + 1):
            async for event in chat.reply([{"role": "user", "content": PROMPT}], None,
                                          SamplingSettings(temperature=0.0, max_tokens=tokens)):
                if isinstance(event, TokenDelta) and i == 0 and not to_first:
                    to_first = time.perf_counter() - t0
                if isinstance(event, ChatStats) and event.finish_reason:
                    if i:
                        rates.append(event.generation_tps)
                    n = event.generation_tokens
        return rates, to_first, n
    finally:
        await cluster.stop()


async def first_token_raw(model: Path, split: str) -> float:
    """Popen of mlx.launch to the first streamed token (the loop above times a whole first reply)."""
    import httpx

    port, base = free_port(), free_port()
    argv = [*mlx_launch_argv(), "--hosts", "127.0.0.1,127.0.0.1", "--backend", "ring", "--starting-port", str(base),
            "--", sys.executable, "-m", "mlx_lm", "server", "--model", str(model), "--port", str(port)]
    argv += ["--pipeline"] if split == "pipeline" else []
    t0 = time.perf_counter()
    launch = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        while True:
            try:
                asked = time.perf_counter()
                _, _, ttft = await raw_request(f"http://127.0.0.1:{port}", 8)
                return asked + ttft - t0
            except httpx.ConnectError:
                await asyncio.sleep(0.1)
    finally:
        os.killpg(launch.pid, signal.SIGTERM)
        launch.wait()


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model(Path(tmp))
        ours: list[float] = []
        theirs: list[float] = []
        launch_ours: list[float] = []
        launch_theirs: list[float] = []
        for r in range(args.rounds):
            sides = [("mlxtui", mlxtui_round), ("by hand", raw_round)]
            if r % 2:
                sides.reverse()
            for name, run in sides:
                rates, to_first, n = await run(model, args.split, args.requests, args.tokens)
                (ours if name == "mlxtui" else theirs).extend(rates)
                if name == "mlxtui":
                    launch_ours.append(to_first)
                print(f"round {r + 1} {name:8}: {statistics.median(rates):8.1f} tok/s ({n} tokens)", flush=True)
            launch_theirs.append(await first_token_raw(model, args.split))
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"\nsplit {args.split}, 2 ranks on 127.0.0.1 (ring), {args.rounds} rounds x {args.requests} requests")
        print(f"generation tok/s  mlxtui {statistics.median(ours):.1f}  by hand {statistics.median(theirs):.1f}  "
              f"ratio {ratio:.3f} (goal >= 0.97)")
        print(f"launch to first token  mlxtui {statistics.median(launch_ours):.2f} s (checks, plan, launch, "
              f"warm-up, first token)  by hand {statistics.median(launch_theirs):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["pipeline", "tensor"], default="pipeline")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=200)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

"""Cluster figures: mlxtui's cluster path against `mlx_lm server` under `mlx.launch` started by hand.

Two ranks on 127.0.0.1 over the ring backend, the same model, split, prompt and token count on both sides:

- mlxtui: `ClusterService.open` (checks, plan, supervisor, mlx.launch, wrapped ranks) and `ClusterChatService`
  (the app's OpenAI-compatible client behind the cluster's failure watch);
- by hand: `mlx.launch --hosts 127.0.0.1,127.0.0.1 --backend ring -- python -m mlx_lm server ... [--pipeline]`
  and a bare httpx SSE reader.

Generation tokens/s is (tokens - 1) / (last token - first token) on the client, greedy. Each round launches
both clusters afresh and keeps both up (an idle cluster costs no CPU), then alternates requests between them,
so each pair is measured under the same load. Ratio mlxtui / by hand (goal >= 0.97).
Launch to first token: from the launch call (or Popen) to the first streamed token of the first request.

Run: .venv/bin/python bench/cluster.py [--split pipeline|tensor] [--rounds 3] [--requests 4] [--tokens 200]
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


def launch_by_hand(model: Path, split: str) -> tuple[subprocess.Popen[bytes], str]:
    """`mlx.launch ... -- python -m mlx_lm server` as a person would type it (its own session, for cleanup)."""
    port, base = free_port(), free_port()
    argv = [*mlx_launch_argv(), "--hosts", "127.0.0.1,127.0.0.1", "--backend", "ring", "--starting-port", str(base),
            "--", sys.executable, "-m", "mlx_lm", "server", "--model", str(model), "--port", str(port)]
    argv += ["--pipeline"] if split == "pipeline" else []
    launch = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    return launch, f"http://127.0.0.1:{port}"


async def first_token_by_hand(url: str, t0: float, tokens: int) -> float:
    """Poll until rank 0 listens; the time from Popen to the first streamed token."""
    import httpx

    while True:
        try:
            asked = time.perf_counter()
            _, _, ttft = await raw_request(url, tokens)
            return asked + ttft - t0
        except httpx.ConnectError:
            await asyncio.sleep(0.1)


async def mlxtui_request(chat: ClusterChatService, tokens: int, t0: float | None = None) -> tuple[float, int, float]:
    """(tokens/s, tokens, time from t0 to the first token) through the app's client."""
    rate, n, first = 0.0, 0, 0.0
    async for event in chat.reply([{"role": "user", "content": PROMPT}], None,
                                  SamplingSettings(temperature=0.0, max_tokens=tokens)):
        if isinstance(event, TokenDelta) and t0 is not None and not first:
            first = time.perf_counter() - t0
        if isinstance(event, ChatStats) and event.finish_reason:
            rate, n = event.generation_tps, event.generation_tokens
    return rate, n, first


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model(Path(tmp))
        ours: list[float] = []
        theirs: list[float] = []
        pairs: list[float] = []
        launch_ours: list[float] = []
        launch_theirs: list[float] = []
        for r in range(args.rounds):
            # Launch both (one after the other, alone on the machine, order alternating), keep both up; an idle
            # cluster costs no CPU, so requests can alternate A/B under the same load.
            cluster = launch = None
            try:
                for side in (("mlxtui", "hand") if r % 2 == 0 else ("hand", "mlxtui")):
                    t0 = time.perf_counter()
                    if side == "mlxtui":
                        cluster = await ClusterService().open(str(model), local_hosts(2), args.split)
                        chat = ClusterChatService(cluster)
                        launch_ours.append((await mlxtui_request(chat, 8, t0))[2])
                    else:
                        launch, url = launch_by_hand(model, args.split)
                        launch_theirs.append(await first_token_by_hand(url, t0, 8))
                for i in range(args.requests):
                    order = ("mlxtui", "hand") if (i + r) % 2 == 0 else ("hand", "mlxtui")
                    got = {}
                    for side in order:
                        if side == "mlxtui":
                            got[side] = (await mlxtui_request(chat, args.tokens))[:2]
                        else:
                            got[side] = (await raw_request(url, args.tokens))[:2]
                    ours.append(got["mlxtui"][0])
                    theirs.append(got["hand"][0])
                    pairs.append(got["mlxtui"][0] / got["hand"][0])
                    print(f"round {r + 1} request {i + 1}: mlxtui {got['mlxtui'][0]:7.1f} tok/s, by hand "
                          f"{got['hand'][0]:7.1f} tok/s ({got['mlxtui'][1]}/{got['hand'][1]} tokens)", flush=True)
            finally:
                if cluster is not None:
                    await cluster.stop()
                if launch is not None:
                    os.killpg(launch.pid, signal.SIGTERM)  # the ranks share mlx.launch's group here (no wrapper)
                    launch.wait()
        print(f"\nsplit {args.split}, 2 ranks on 127.0.0.1 (ring), {args.rounds} rounds x {args.requests} request pairs, "
              f"{args.tokens} greedy tokens")
        print(f"generation tok/s  mlxtui {statistics.median(ours):.1f}  by hand {statistics.median(theirs):.1f}  "
              f"ratio of medians {statistics.median(ours) / statistics.median(theirs):.3f}  median pair ratio "
              f"{statistics.median(pairs):.3f} (goal >= 0.97)")
        print(f"launch to first token  mlxtui {statistics.median(launch_ours):.2f} s (checks, plan, supervisor, "
              f"launch, warm-up, first token)  by hand {statistics.median(launch_theirs):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["pipeline", "tensor"], default="pipeline")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=200)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

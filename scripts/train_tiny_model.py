"""Train the lab's test model: a tiny Llama (float32, about 1M parameters) on mlxtui's built-in text.

    .venv/bin/python scripts/train_tiny_model.py [OUT_DIR] [--steps N]

Deterministic (fixed seeds, fixed data order) and a few minutes on a 2-core CPU; the result is committed as
mlxtui/devhub/trained/tiny-trained-llama (the tests' quality fixture, and the demo Hub's readable chat model). Quality figures on random weights mean nothing; on this model,
which has learned the built-in text's regularities, quantization costs measurable perplexity and KL
divergence. It learns the ``train`` split of mlxtui.services.lab_text; the lab's default evaluation text is
the held-out ``eval`` split.

For the one-off run, Debian's OpenBLAS makes MLX's CPU matmuls several times faster:
``LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libopenblas.so.0`` (apt-get install -y libopenblas0-pthread).
Neither the app nor the tests depend on it.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_OUT = ROOT / "mlxtui" / "devhub" / "trained" / "tiny-trained-llama"
#: the generator's card says its weights are random; these are not
RANDOM_LIMITATION = "The weights are random: this model is a fixture for tools, not for answers."
TRAINED_LIMITATION = ("Trained for a few minutes on mlxtui's built-in simple English: it continues such text "
                      "(\"In the morning the baker …\") and knows nothing else.")
SEQ_LEN = 128
BATCH = 16
TRAIN_CHARS = 1_500_000


def spec():  # noqa: ANN201 - a ModelSpec
    """The architecture: widths are multiples of 128 so every group size (32, 64, 128) applies to every layer."""
    from mlxtui.devhub.models import ModelSpec

    return ModelSpec(
        repo_id="mlxtui/tiny-trained-llama",
        dtype="float32",
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=512,
        max_position_embeddings=1024,
        description="A tiny Llama trained by mlxtui's scripts/train_tiny_model.py on its built-in text (for tests).",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()

    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    import numpy as np
    from mlx.utils import tree_flatten

    from mlxtui.devhub.models import write_model
    from mlxtui.services.lab_text import builtin_text
    from mlx_lm.utils import load_model, load_tokenizer

    mx.random.seed(0)
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    write_model(spec(), out)  # tokenizer, config, card and random weights to start from
    model, _ = load_model(out)
    tokenizer = load_tokenizer(out)
    # Start from a fresh, seeded initialisation rather than the generator's scaled-normal weights.
    from mlx_lm.models import llama

    config = json.loads((out / "config.json").read_text())
    model = llama.Model(llama.ModelArgs.from_dict(config))
    mx.eval(model.parameters())

    ids = np.array(tokenizer.encode(builtin_text("train", TRAIN_CHARS)), dtype=np.int32)
    n_seq = len(ids) // (SEQ_LEN + 1)
    data = ids[: n_seq * (SEQ_LEN + 1)].reshape(n_seq, SEQ_LEN + 1)
    order = np.random.default_rng(0).permutation(n_seq)
    print(f"{len(ids)} training tokens, {n_seq} sequences of {SEQ_LEN + 1}", flush=True)

    def loss_fn(model: nn.Module, batch: mx.array) -> mx.array:
        logits = model(batch[:, :-1])
        return nn.losses.cross_entropy(logits, batch[:, 1:], reduction="mean")

    warmup = 50
    schedule = optim.join_schedules(
        [optim.linear_schedule(1e-4, 3e-3, warmup), optim.cosine_decay(3e-3, args.steps - warmup, 1e-4)], [warmup]
    )
    optimizer = optim.AdamW(learning_rate=schedule, weight_decay=0.01)
    step_fn = nn.value_and_grad(model, loss_fn)

    start = time.perf_counter()
    for step in range(args.steps):
        rows = [order[(step * BATCH + i) % n_seq] for i in range(BATCH)]
        loss, grads = step_fn(model, mx.array(data[rows]))
        optimizer.update(model, grads)
        mx.eval(loss, model.parameters(), optimizer.state)
        if step % 50 == 0 or step == args.steps - 1:
            elapsed = time.perf_counter() - start
            print(f"step {step:5d}  loss {loss.item():.3f}  ppl {math.exp(loss.item()):7.2f}  {elapsed:6.0f} s", flush=True)

    weights = dict(tree_flatten(model.parameters()))
    weights = {k: v.astype(mx.float32) for k, v in weights.items()}
    mx.save_safetensors(str(out / "model.safetensors"), weights, metadata={"format": "pt"})
    card = (out / "README.md").read_text()
    (out / "README.md").write_text(card.replace(RANDOM_LIMITATION, TRAINED_LIMITATION))
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()

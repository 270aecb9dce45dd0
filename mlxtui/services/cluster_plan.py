"""Plan a cluster run before launching it: does the model fit on one Mac, which split, memory per host.

Sizes come from `mlxtui.services.sizes` (the estimator Inspect uses): parameters from the safetensors headers
(else the config), bytes for the model's own quantization label, a 4k-token KV cache, and a budget of 75% of
each host's memory (what Apple silicon lets the GPU wire by default). Which splits an architecture has is
asked of mlx-lm itself, with the test `sharded_load` makes: `model.model.pipeline` for pipeline parallelism,
`model.shard` for tensor parallelism.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxtui.format import human_bytes
from mlxtui.services import sizes
from mlxtui.services.cluster_checks import HostCheck
from mlxtui.services.cluster_hosts import ClusterError, Hosts
from mlxtui.services.errors import NotFoundError
from mlxtui.services.modelfolder import config_architectures, config_str, is_repo_id, quant_label, read_config, safetensors_totals, text_config

__all__ = ["SPLITS", "Plan", "RankShare", "resolve_model", "split_support", "model_size", "make_plan", "BUDGET_SHARE"]

SPLITS = ("pipeline", "tensor")
#: the share of a Mac's memory a model may use (Metal's default wired limit, as Inspect budgets)
BUDGET_SHARE = 0.75
_KV_TOKENS = sizes.KV_CONTEXTS[0]


@dataclass(frozen=True)
class RankShare:
    """One rank's part of the model: host, layers (pipeline) and the bytes it needs."""

    rank: int
    host: str
    layers: tuple[int, int]  # [start, end) model layers held
    bytes: int
    budget: int | None
    free: int | None


@dataclass(frozen=True)
class Plan:
    """What a launch will do, or why it cannot."""

    model: str
    path: Path
    split: str | None
    ranks: tuple[RankShare, ...]
    total_bytes: int
    supported: tuple[str, ...]
    fits_one: bool | None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems and self.split is not None

    def lines(self) -> list[str]:
        """The plan as a person reads it: one line for the model, one per rank, then problems."""
        one = {True: "fits on one Mac", False: "does not fit on one Mac", None: "one-Mac fit unknown"}[self.fits_one]
        out = [f"{self.model}: {human_bytes(self.total_bytes)} with a {_KV_TOKENS // 1024}k cache, {one}; "
               f"mlx-lm splits it by {' or '.join(self.supported) or 'neither pipeline nor tensor'}"]
        if self.split:
            out.append(f"split: {self.split} over {len(self.ranks)} ranks")
        for share in self.ranks:
            held = f"layers {share.layers[0]}-{share.layers[1] - 1}" if self.split == "pipeline" else "1/" + str(len(self.ranks)) + " of each layer"
            budget = f" of {human_bytes(share.budget)}" if share.budget else ""
            out.append(f"  rank {share.rank} on {share.host}: {held}, {human_bytes(share.bytes)}{budget}")
        out += [f"  note: {n}" for n in self.notes]
        out += [f"refused: {p}" for p in self.problems]
        return out


def resolve_model(model: str) -> Path:
    """A model folder, or a repo id already in the Hugging Face cache (every host needs the files locally)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    if is_repo_id(model) and not path.exists():
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(snapshot_download(model, local_files_only=True))
        except (LocalEntryNotFoundError, OSError, ValueError):
            pass
    raise NotFoundError(f"{model} is neither a model folder nor a repo in the local Hugging Face cache.",
                        hint="Download or convert it first (mlxtui convert, or hf download).")


def split_support(config: dict[str, Any]) -> tuple[str, ...]:
    """The splits mlx-lm has for this architecture, asked as sharded_load asks (a lazily built model)."""
    from mlx_lm.utils import _get_classes

    if config_str(config, "model_type") is None:  # mlx-lm would index its tables with a list or a number
        return ()
    config = {**config, "architectures": config_architectures(config)}
    try:
        model_class, args_class = _get_classes(config)
    except (ValueError, KeyError):
        return ()
    try:
        model = model_class(args_class.from_dict(config))  # lazy: builds the module tree, allocates nothing
        pipeline = hasattr(model, "model") and hasattr(model.model, "pipeline")
        tensor = hasattr(model, "shard")
    except Exception:  # an odd config mlx-lm cannot build: fall back to the class alone
        pipeline, tensor = False, hasattr(model_class, "shard")
    return tuple(s for s, has in (("pipeline", pipeline), ("tensor", tensor)) if has)


def model_size(path: Path, config: dict[str, Any]) -> tuple[int, int, int]:
    """(weight bytes, bytes every rank keeps whole: embeddings and head, KV cache bytes) as Inspect sizes them."""
    totals = safetensors_totals(path)
    parameters = totals[0] if totals else sizes.estimate_parameters(config)
    if not parameters:
        raise ClusterError(f"{path} has neither weights nor a config with sizes: its size cannot be estimated.")
    label = quant_label(config)
    label = "bf16" if label == "?" else label
    total = sizes.estimate_bytes(parameters, label, config=config)
    c = text_config(config)
    vocab, hidden = c.get("vocab_size"), c.get("hidden_size")
    whole = 0
    if isinstance(vocab, int) and isinstance(hidden, int):
        tied = c.get("tie_word_embeddings", config.get("tie_word_embeddings", False)) is True
        whole = min(total, int(total * (vocab * hidden * (1 if tied else 2)) / parameters))
    kv = sizes.kv_cache_bytes(config, _KV_TOKENS) or 0
    return total, whole, kv


def _layers(config: dict[str, Any]) -> int:
    value = text_config(config).get("num_hidden_layers")
    return value if isinstance(value, int) and value > 0 else 0


def _tensor_problem(config: dict[str, Any], n: int) -> str | None:
    c = text_config(config)
    for key in ("num_attention_heads", "num_key_value_heads", "intermediate_size"):
        value = c.get(key)
        if isinstance(value, int) and value % n:
            return f"tensor parallelism over {n} ranks needs {key} ({value}) divisible by {n}"
    return None


def _pipeline_problem(path: Path, layers: int, n: int) -> str | None:
    if layers and layers < n:
        return f"pipeline over {n} ranks needs at least {n} layers; the model has {layers}"
    if not (path / "model.safetensors.index.json").is_file():
        return ("pipeline needs model.safetensors.index.json (mlx-lm reads it to fetch each rank's layers); "
                "convert the model with mlx_lm.convert, which writes one")
    return None


def make_plan(model: str, hosts: Hosts, checks: list[HostCheck] | None = None, split: str | None = None, *,
              supported: tuple[str, ...] | None = None) -> Plan:
    """Plan `model` over `hosts` (with their checks, for memory). Refusals are in Plan.problems, in words."""
    path = resolve_model(model)
    config = read_config(path)
    supported = split_support(config) if supported is None else supported
    total, whole, kv = model_size(path, config)
    n = len(hosts.hosts)
    checks = checks or []
    local_total = sizes.machine_memory_bytes()
    fits_one = (total + kv <= local_total * BUDGET_SHARE) if local_total else None
    problems: list[str] = []
    notes: list[str] = []
    model_type = config_str(config, "model_type") or "?"
    if split is not None and split not in SPLITS:
        raise ClusterError(f"Unknown split {split!r}: use pipeline or tensor.")
    if not supported:
        problems.append(f"mlx-lm has no pipeline or tensor split for the {model_type} architecture")
    elif split is not None and split not in supported:
        problems.append(f"mlx-lm has no {split} split for the {model_type} architecture "
                        f"(it has {' and '.join(supported)})")
    layers = _layers(config)
    why = {"pipeline": _pipeline_problem(path, layers, n), "tensor": _tensor_problem(config, n)}
    if split is None and supported:
        # Prefer what mlx_lm.server --pipeline is for; fall back to tensor when pipeline cannot work here.
        workable = [s for s in supported if why[s] is None]
        split = (workable or list(supported))[0]
    if split in supported and why.get(split or ""):
        problems.append(why[split])  # type: ignore[index]
    if n < 2:
        problems.append("a cluster needs at least two ranks in the hosts file")
    shares = _shares(split, hosts, checks, total, whole, kv, layers) if split in supported else []
    for share in shares:
        if share.budget and share.bytes > share.budget:
            problems.append(f"rank {share.rank} on {share.host} needs {human_bytes(share.bytes)} but has "
                            f"{human_bytes(share.budget)} to give ({BUDGET_SHARE:.0%} of its memory)")
        elif share.free is not None and share.bytes > share.free:
            notes.append(f"{share.host} has only {human_bytes(share.free)} free now: close other apps first")
    for check in checks:
        for problem in check.problems:
            if problem not in problems:
                problems.append(problem)
    if fits_one and not problems:
        notes.append("the model fits on this Mac alone; a cluster only adds network time")
    return Plan(model, path, split if not problems or split in supported else None, tuple(shares), total + kv,
                supported, fits_one, tuple(problems), tuple(notes))


def _shares(split: str, hosts: Hosts, checks: list[HostCheck], total: int, whole: int, kv: int,
            layers: int) -> list[RankShare]:
    n = len(hosts.hosts)
    by_rank = {i: c for i, c in enumerate(checks)}
    shares = []
    per_layer = (total - whole) / layers if layers else (total - whole)
    base, extra = divmod(layers, n) if layers else (0, 0)
    counts = [base + (1 if r < extra else 0) for r in range(n)]  # mlx-lm's even split, low ranks get more
    for rank, host in enumerate(hosts.hosts):
        check = by_rank.get(rank)
        if split == "pipeline" and layers:
            # Rank r runs the layers after those of ranks r+1 .. n-1 (mlx-lm's PipelineMixin order).
            start = sum(counts[rank + 1:])
            held = (start, start + counts[rank])
            need = whole + per_layer * counts[rank] + kv * counts[rank] / layers
        else:
            held = (0, layers)
            need = whole + (total - whole) / n + kv / n
        memory = check.memory_total if check else None
        shares.append(RankShare(rank, host.ssh, held, int(math.ceil(need)),
                                int(memory * BUDGET_SHARE) if memory else None, check.memory_free if check else None))
    return shares

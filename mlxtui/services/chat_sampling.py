"""Sampling settings for a reply, the model's defaults for them, and when a token rate means something."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlxtui.services.bounded import BadFileError
from mlxtui.services.errors import InvalidInputError
from mlxtui.services.modelfolder import read_small_json

__all__ = ["SamplingSettings", "sampling_defaults", "MAX_SEED", "MIN_RATE_TOKENS", "MIN_RATE_SECONDS", "rate_or_none"]

#: mx.random.seed takes an unsigned 64-bit integer
MAX_SEED = 2**64 - 1
#: a token rate is shown only when it rests on at least this many tokens ...
MIN_RATE_TOKENS = 8
#: ... produced over at least this many seconds (docs/chat.md, "Honest rates")
MIN_RATE_SECONDS = 0.1


@dataclass
class SamplingSettings:
    """What mlx-lm's make_sampler / make_logits_processors get, plus max tokens and seed."""

    temperature: float = 0.0
    top_p: float = 1.0
    min_p: float = 0.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    max_tokens: int = 512
    seed: int | None = None

    def validate(self) -> SamplingSettings:
        """Raise InvalidInputError naming every setting out of range; return self."""
        problems = []
        numbers = (self.temperature, self.top_p, self.min_p, self.repetition_penalty)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
            problems.append("temperature, top_p, min_p and repetition penalty must be finite numbers")
        else:
            if not self.temperature >= 0:
                problems.append(f"temperature must be 0 or more (got {self.temperature})")
            if not 0 < self.top_p <= 1:
                problems.append(f"top_p must be in (0, 1] (got {self.top_p})")
            if not 0 <= self.min_p < 1:
                problems.append(f"min_p must be in [0, 1) (got {self.min_p})")
            if not self.repetition_penalty > 0:
                problems.append(f"repetition penalty must be above 0 (got {self.repetition_penalty})")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            problems.append(f"top_k must be 0 (off) or more (got {self.top_k})")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            problems.append(f"max tokens must be at least 1 (got {self.max_tokens})")
        if self.seed is not None and (not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED):
            problems.append(f"seed must be a whole number from 0 to {MAX_SEED} (got {self.seed})")
        if problems:
            raise InvalidInputError("Sampling settings: " + "; ".join(problems) + ".")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def sampling_defaults(folder: Path, max_tokens: int = 512) -> SamplingSettings:
    """Defaults from the model's generation_config.json (greedy when it does not sample).

    A value out of range there is ignored (the neutral default stays), so a strange file never makes the
    first reply fail.
    """
    settings = SamplingSettings(max_tokens=max_tokens)
    try:
        gen = read_small_json(Path(folder), "generation_config.json")
    except BadFileError:
        return settings
    if not gen or gen.get("do_sample") is False:
        return settings
    if gen.get("do_sample") or "temperature" in gen:
        temperature = gen.get("temperature", 1.0)
        if _number(temperature):
            settings.temperature = float(temperature)
    for key, kind in [("top_p", float), ("min_p", float), ("top_k", int), ("repetition_penalty", float)]:
        if _number(gen.get(key)):
            setattr(settings, key, kind(gen[key]))
    if settings.top_k >= 50 and settings.temperature == 0:
        settings.top_k = 0  # transformers' default top_k=50 means nothing for greedy decoding
    try:
        return settings.validate()
    except InvalidInputError:
        return SamplingSettings(max_tokens=max_tokens)


def rate_or_none(tokens: int, tps: float) -> float | None:
    """`tps` when it rests on enough tokens and time to mean something, else None (shown as "—")."""
    if tokens < MIN_RATE_TOKENS or not tps or tps <= 0 or not math.isfinite(tps):
        return None
    if tokens / tps < MIN_RATE_SECONDS:
        return None
    return tps

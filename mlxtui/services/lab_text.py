"""The lab's built-in text: a seeded generator of simple English, so evaluation works offline.

The trained test model (scripts/train_tiny_model.py) learns from the ``train`` split; the default evaluation
and calibration text is the ``eval`` split, drawn with another seed, so it is held out from training while
following the same distribution (perplexity on it means something). Pure Python, no network, no data set:
``random.Random`` with a fixed seed gives the same text on every machine and Python version.
"""

from __future__ import annotations

import random

__all__ = ["BUILTIN_NAME", "builtin_text", "describe_builtin"]

#: how results name this text
BUILTIN_NAME = "builtin"
_SEEDS = {"train": 1, "eval": 2, "calib": 3}
#: characters of the default evaluation text: about 12k tokens with the fixture's tokenizer
_EVAL_CHARS = 40_000

_PEOPLE = ("the baker", "the old man", "a student", "the librarian", "a young girl", "her brother", "the teacher",
           "a sailor", "the farmer", "my friend", "the doctor", "a child")
_PLACES = ("the market", "the river", "the library", "the village", "the forest", "the bridge", "the school",
           "the station", "the garden", "the harbour", "the valley", "the kitchen")
_THINGS = ("bread", "apples", "cheese", "fresh fish", "a map", "a book", "the newspapers", "a letter",
           "some flowers", "a small boat", "a warm coat", "the keys")
_VERBS = ("bought", "found", "carried", "wanted", "lost", "read", "painted", "sold", "opened", "forgot")
_ADJ = ("cold", "clear", "quiet", "bright", "grey", "warm", "wet", "calm", "long", "short")
_TIMES = ("In the morning", "In the afternoon", "In the evening", "At night", "On Monday", "On Friday",
          "Every day", "Last winter", "In spring", "After lunch")
_WEATHER = ("it was raining hard", "the sun was shining", "the wind was blowing through the trees",
            "the snow was deep", "the clouds came in from the sea", "the sky was blue")
_NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_COLOURS = ("red", "green", "blue", "yellow", "black", "white", "purple", "brown")
_QUESTIONS = (
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many days are there in a week?", "There are seven days in a week."),
    ("What colour is the sky?", "The sky is blue on a clear day."),
    ("What do you call a baby cat?", "A baby cat is called a kitten."),
    ("Which month comes after March?", "April comes after March."),
    ("How many legs does a horse have?", "A horse has four legs."),
)


def _sentence(rng: random.Random) -> str:
    kind = rng.randrange(8)
    person, place, thing = rng.choice(_PEOPLE), rng.choice(_PLACES), rng.choice(_THINGS)
    if kind == 0:
        return f"{rng.choice(_TIMES)} {person} went to {place} and {rng.choice(_VERBS)} {thing}."
    if kind == 1:
        return f"The {rng.choice(_ADJ)} morning was quiet, and {rng.choice(_WEATHER)} over {place}."
    if kind == 2:
        start = rng.randrange(len(_NUMBERS) - 4)
        return "Numbers: " + ", ".join(_NUMBERS[start : start + rng.randrange(3, 5)]) + "."
    if kind == 3:
        start = rng.randrange(len(_DAYS) - 3)
        return f"After {_DAYS[start]} comes {_DAYS[start + 1]}, and then {_DAYS[start + 2]}."
    if kind == 4:
        start = rng.randrange(len(_MONTHS) - 2)
        return f"The months {_MONTHS[start]}, {_MONTHS[start + 1]} and {_MONTHS[start + 2]} follow each other."
    if kind == 5:
        question, answer = rng.choice(_QUESTIONS)
        return f"User: {question}\nAssistant: {answer}"
    if kind == 6:
        return f"{person.capitalize()} said that {thing} at {place} was {rng.choice(_COLOURS)}."
    return f"When {rng.choice(_WEATHER)}, {person} stayed at {place} and {rng.choice(_VERBS)} {thing}."


def builtin_text(split: str = "eval", chars: int | None = None) -> str:
    """`chars` characters (about) of the built-in text's `split`, always the same: "train" (the test model
    learned it), "eval" (the default evaluation text) or "calib" (calibration for the learned methods)."""
    rng = random.Random(_SEEDS[split])
    limit = chars if chars is not None else _EVAL_CHARS
    lines: list[str] = []
    size = 0
    while size < limit:
        paragraph = " ".join(_sentence(rng) for _ in range(rng.randrange(2, 6)))
        lines.append(paragraph)
        size += len(paragraph) + 1
    return "\n".join(lines) + "\n"


def describe_builtin() -> str:
    """How results name the default text."""
    return f"{BUILTIN_NAME}: mlxtui's built-in English text (eval split, {_EVAL_CHARS} characters, held out from training)"

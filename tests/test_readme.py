"""The README's subcommand examples run on the demo as written (issue 14): every repo id they name is in the
demo Hub's catalogue (or is the target of the example's own upload), and every command parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from mlxtui.devhub.catalogue import DEMO_MODELS, MLX_COMMUNITY_CONVERSIONS
from mlxtui.devhub.trained import TRAINED_DEMO_REPO

README = Path(__file__).resolve().parent.parent / "README.md"


def _examples() -> list[str]:
    return [line for line in README.read_text().splitlines() if line.startswith("mlxtui --demo ")]


def test_the_demo_examples_name_only_demo_repos() -> None:
    examples = _examples()
    assert len(examples) >= 6
    demo = {spec.repo_id for spec in DEMO_MODELS} | {conversion[0] for conversion in MLX_COMMUNITY_CONVERSIONS} | {
        TRAINED_DEMO_REPO}
    uploaded = {shlex.split(line)[-2] for line in examples if " upload " in line and line.endswith("--yes")} | {
        shlex.split(line)[shlex.split(line).index("--repo") + 1] for line in examples if "--repo" in line}
    for line in examples:
        for repo_id in re.findall(r"(?<![\w/.~-])([A-Za-z][\w.-]*/[\w.-]+)(?![\w/])", line):
            assert repo_id in demo or repo_id in uploaded, f"{repo_id} (in `{line}`) is not in the demo"


def test_every_example_parses() -> None:
    from mlxtui.cli import build_parser

    parser = build_parser()
    for line in _examples():
        args = shlex.split(line)[1:]
        parser.parse_args(args)  # argparse exits (SystemExit) on an unknown flag or a missing argument

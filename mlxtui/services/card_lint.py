"""The model-card linter: what the editor lists and `mlxtui card --check` prints; errors block an upload.

Front matter is read through `card_frontmatter` (huggingface_hub's ModelCard), values quoted from the card
are made terminal-safe with `mlxtui.format.printable`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlxtui.format import printable
from mlxtui.services.card_frontmatter import base_models, parse_front_matter
from mlxtui.services.modelfolder import is_repo_id

__all__ = ["LintProblem", "lint_card"]


@dataclass(frozen=True)
class LintProblem:
    """One finding of the card linter. `line` is 1-based in the whole README when known."""

    code: str
    message: str
    severity: str = "error"  # "error" | "warning"
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{self.severity}: {where}{self.message}"



def _key_line(text: str, key: str) -> int | None:
    match = re.search(rf"^{re.escape(key)}\s*:", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def lint_card(
    text: str,
    *,
    source_license: str | None = None,
    base_model_known: bool | None = None,
) -> list[LintProblem]:
    """The editor's lint list. `source_license` and `base_model_known` come from the Hub when it answered
    (None: not checked). Errors block an upload; warnings don't."""
    problems: list[LintProblem] = []
    parsed = parse_front_matter(text)
    if parsed.meta is None:
        problems.append(LintProblem("invalid-yaml", parsed.error or "The YAML front matter is invalid.", "error", parsed.error_line))
        meta: dict[str, Any] = {}
    else:
        meta = parsed.meta
        if not parsed.present:
            problems.append(LintProblem("no-metadata", "The card has no YAML front matter (license, tags, base_model…).", "error", 1))
    if parsed.meta is not None:
        if not meta.get("license"):
            problems.append(LintProblem("missing-license", "No license: add `license:` (copy the original model's).", "error"))
        elif source_license and str(meta["license"]) != str(source_license):
            problems.append(
                LintProblem(
                    "license-differs",
                    f"License {printable(meta['license'], newlines=False)!r} differs from the original model's "
                    f"{printable(source_license, newlines=False)!r}.",
                    "error",
                    _key_line(text, "license"),
                )
            )
        if meta.get("license") == "other" and not meta.get("license_name"):
            problems.append(LintProblem("missing-license-name", "license: other needs license_name and license_link.", "warning"))
        if not meta.get("pipeline_tag"):
            problems.append(LintProblem("missing-pipeline-tag", "No pipeline_tag: add e.g. `pipeline_tag: text-generation`.", "error"))
        base = meta.get("base_model")
        not_ids = [b for b in base_models(meta) if not is_repo_id(b)]
        if not base:
            problems.append(
                LintProblem("missing-base-model", "No base_model: the Hub won't link this model to the original.", "warning")
            )
        elif not_ids:
            # a path (../../etc/passwd, /home/me/model) is not a model on the Hub, and shows the user's files
            problems.append(
                LintProblem(
                    "base-model-not-repo-id",
                    f"base_model {printable(not_ids[0][:80], newlines=False)!r} is not a Hub repo id (owner/name): "
                    "name the original model on the Hub, never a local path.",
                    "error",
                    _key_line(text, "base_model"),
                )
            )
        elif base_model_known is False:
            problems.append(
                LintProblem(
                    "unknown-base-model",
                    f"base_model {printable(base, newlines=False)!r} was not found on the Hub: check the repo id.",
                    "error",
                    _key_line(text, "base_model"),
                )
            )
        if meta.get("library_name") not in (None, "mlx"):
            problems.append(LintProblem("library-name", f"library_name is {printable(meta['library_name'], newlines=False)!r}; MLX models use `mlx`.", "warning"))
    if not parsed.body.strip():
        problems.append(LintProblem("empty-body", "The card has no text: say what the model is and how to use it.", "error"))
    return problems

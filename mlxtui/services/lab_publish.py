"""Publish several lab variants at once: each to its own repo named the mlx-community way
(``<owner>/<source name>-<variant>``, the variant's folder name), each card with the "Quantization quality"
table linking its siblings.

It only strings together what exists: the repo ids go into the lab's results file (so services/card_build's
section links them), the card service builds and saves each README, the upload service checks (preflight) and
sends each folder. Every preflight runs before the first byte is sent: one variant with a problem stops all.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxtui.atomic import write_text_atomic
from mlxtui.services import Context
from mlxtui.services.errors import InvalidInputError, UploadError
from mlxtui.services.lab_report import RESULTS_FILE

__all__ = ["PublishPlanned", "PublishEvent", "repo_ids", "publish"]


@dataclass(frozen=True)
class PublishPlanned:
    """Every variant passed its preflight: name -> repo id, about to be sent in this order."""

    repos: dict[str, str]


@dataclass(frozen=True)
class PublishEvent:
    """An upload event of one variant (the upload service's own event, unchanged)."""

    variant: str
    event: Any


def repo_ids(result: dict[str, Any], owner: str, names: list[str] | None = None) -> dict[str, str]:
    """name -> owner/<folder name> for the chosen variants (all when `names` is None), in the result's order."""
    rows = [r for r in result["variants"] if names is None or r["name"] in names]
    missing = sorted(set(names or []) - {r["name"] for r in rows})
    if missing:
        raise InvalidInputError(f"The lab measured no variant named {', '.join(missing)}.")
    return {r["name"]: f"{owner.strip('/')}/{Path(r['path']).name}" for r in rows}


async def publish(ctx: Context, out_dir: Path, owner: str, names: list[str] | None = None,
                  *, private: bool | None = None) -> AsyncIterator[object]:
    """Cards with sibling links, every preflight, then the uploads one by one."""
    from mlxtui.services.card import CardService
    from mlxtui.services.upload import UploadService

    path = Path(out_dir) / RESULTS_FILE
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InvalidInputError(f"{out_dir} holds no lab results; run the lab first.") from None
    repos = repo_ids(result, owner, names)
    result["repos"] = {**result.get("repos", {}), **repos}
    result["repos_endpoint"] = ctx.endpoint
    write_text_atomic(path, json.dumps(result, indent=2) + "\n")

    cards, uploads = CardService(ctx), UploadService(ctx)
    rows = {r["name"]: r for r in result["variants"]}
    plans = []
    for name, repo in repos.items():
        folder = Path(rows[name]["path"])
        text, _ = await cards.build(folder, source=result["reference"]["name"], existing=cards.read_card(folder),
                                    repo_id=repo, regenerate_body=True)
        cards.save(folder, text)
        plan = await uploads.preflight(folder, repo, private=private)
        if not plan.ok:
            problems = "; ".join(f"{c.name}: {c.detail}" for c in plan.errors)
            raise UploadError(f"{name} ({repo}) did not pass its check, so nothing was sent: {problems}")
        plans.append((name, plan))
    yield PublishPlanned(repos)
    for name, plan in plans:
        async for event in uploads.upload(plan):
            yield PublishEvent(name, event)

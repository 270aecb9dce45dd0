"""The offline demo: a local Hub seeded with the generated models, for `mlxtui --demo` and the tests.

Seeding writes every model of ``mlxtui.devhub.models.DEMO_MODELS`` (random weights), the trained tiny Llama
of ``mlxtui.devhub.trained`` (replies that read as text), plus real mlx-lm conversions for the
mlx-community repos, and imports each into a ``HubStore``. It is cached: a root already seeded by the same
generator version is left alone, so only the first start pays the few seconds it costs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from mlxtui.devhub.models import DEMO_MODELS, GENERATOR_VERSION, MLX_COMMUNITY_CONVERSIONS
from mlxtui.devhub.trained import TRAINED_DEMO_REPO, TRAINED_MODEL

if TYPE_CHECKING:
    from mlxtui.devhub.server import DevHub

__all__ = [
    "DEMO_WRITE_TOKEN",
    "DEMO_READ_TOKEN",
    "DEMO_OTHER_TOKEN",
    "DEMO_USER",
    "DEMO_ORG",
    "DEMO_DATASET",
    "SEED_VERSION",
    "default_demo_root",
    "is_seeded",
    "seed_demo",
    "start_demo_hub",
]

#: user "alice", write role, member of the "mlx-community" org (may push there)
DEMO_WRITE_TOKEN = "hf_writerAliceDemoTokenForMlxtui0001"
#: user "alice", read-only: every write answers 403
DEMO_READ_TOKEN = "hf_readerAliceDemoTokenForMlxtui0002"
#: user "bob", write role in his own namespace only: alice's private repo is invisible to him
DEMO_OTHER_TOKEN = "hf_writerBobDemoTokenForMlxtui000003"
DEMO_USER = "alice"
DEMO_ORG = "mlx-community"

# Bump the suffix when the seeding itself (not the generated files) changes.
SEED_VERSION = f"{GENERATOR_VERSION}.3"
#: the demo's one dataset repo: the lab's held-out text as eval.txt, the training split as train.jsonl
DEMO_DATASET = "mlxtui/simple-english"
_MARKER = "demo-seed.json"


def default_demo_root() -> Path:
    """Where `mlxtui --demo` keeps its Hub: <XDG data>/mlxtui/demo-hub."""
    from mlxtui.paths import data_dir

    return data_dir() / "demo-hub"


def is_seeded(root: Path) -> bool:
    """True when ``root`` holds a complete seed made by this generator version."""
    try:
        marker = json.loads((Path(root) / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("version") == SEED_VERSION


def _seed_lock(root: Path) -> contextlib.AbstractContextManager[None]:
    """Serialise seeding between processes (two test sessions, or the app and a test)."""
    return root_lock(root, ".seed.lock")


@contextlib.contextmanager
def root_lock(root: Path, name: str) -> Iterator[None]:
    """An exclusive lock between processes on the file `name` in `root` (flock; a no-op where there is none)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / name, "w") as handle:
        try:
            import fcntl
        except ImportError:  # no flock on this platform: races are then the caller's problem
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def seed_demo(root: Path, *, conversions: bool = True) -> None:
    """Seed a Hub store at ``root`` with the demo models and tokens, unless it already is.

    ``conversions=False`` skips the mlx-community repos (they need mlx-lm and take a few seconds).
    """
    from mlxtui.devhub.models import write_demo_models
    from mlxtui.devhub.store import HubStore

    root = Path(root)
    with _seed_lock(root):
        if is_seeded(root):
            return
        store = HubStore(root)
        _seed_tokens(store)
        # Build next to the store (same file system), import, then throw the build away.
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            # Conversions run in a child process unless mlx-lm is already loaded here (tests).
            isolated = "mlx_lm" not in sys.modules
            folders = write_demo_models(build, conversions=conversions, isolated=isolated)
            for spec in DEMO_MODELS:
                store.import_folder(
                    spec.repo_id,
                    folders[spec.repo_id],
                    private=spec.private,
                    gated=spec.gated,
                    downloads=spec.downloads,
                    likes=spec.likes,
                    created_at=spec.created_at,
                    message="Upload folder using huggingface_hub",
                )
            # the one model whose replies read as text (trained, not random): the demo's chat works with it
            store.import_folder(TRAINED_DEMO_REPO, TRAINED_MODEL, downloads=1204, likes=17,
                                created_at="2026-11-28T09:00:00Z", message="Upload the trained tiny Llama")
            store.import_folder(DEMO_DATASET, _write_demo_dataset(build / "dataset"), repo_type="dataset",
                                downloads=312, likes=4, created_at="2026-11-29T09:00:00Z",
                                message="Upload the simple English text")
            for target, source, bits, downloads, likes in MLX_COMMUNITY_CONVERSIONS:
                if target not in folders:
                    continue
                store.import_folder(
                    target,
                    folders[target],
                    downloads=downloads,
                    likes=likes,
                    created_at=_after(DEMO_MODELS, source),
                    message=f"Upload {bits}-bit MLX conversion of {source}",
                )
        finally:
            shutil.rmtree(build, ignore_errors=True)
        marker: dict[str, Any] = {"version": SEED_VERSION, "conversions": conversions}
        tmp = root / (_MARKER + ".tmp")
        tmp.write_text(json.dumps(marker) + "\n")
        os.replace(tmp, root / _MARKER)


def _write_demo_dataset(folder: Path) -> Path:
    """The files of DEMO_DATASET: the lab's eval text (eval.txt), its train split as {"text"} rows, a card."""
    from mlxtui.services.lab_text import builtin_text

    folder.mkdir(parents=True)
    (folder / "eval.txt").write_text(builtin_text("eval"), encoding="utf-8")
    rows = [json.dumps({"text": line}) for line in builtin_text("train", chars=20_000).splitlines() if line]
    (folder / "train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(
        "---\nlicense: mit\nlanguage: [en]\npretty_name: Simple English\n---\n# Simple English\n\n"
        "Generated simple English (mlxtui's built-in text): `eval.txt` is the held-out evaluation split the "
        "lab uses by default, `train.jsonl` the split the tiny trained Llama learned from, one "
        "`{\"text\": ...}` row per paragraph.\n",
        encoding="utf-8",
    )
    return folder


def _after(specs: list[Any], source: str) -> str:
    """A creation date a couple of days after the source repo's, as community conversions follow."""
    from datetime import datetime, timedelta

    for spec in specs:
        if spec.repo_id == source:
            when = datetime.fromisoformat(spec.created_at.replace("Z", "+00:00")) + timedelta(days=2, hours=3)
            return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return "2024-06-01T00:00:00Z"


def _seed_tokens(store: Any) -> None:
    store.add_token(DEMO_WRITE_TOKEN, DEMO_USER, orgs=[DEMO_ORG], role="write")
    store.add_token(DEMO_READ_TOKEN, DEMO_USER, orgs=[DEMO_ORG], role="read")
    store.add_token(DEMO_OTHER_TOKEN, "bob", orgs=[], role="write")


def start_demo_hub(root: Path | None = None) -> "DevHub":
    """Seed (if needed) and serve the demo Hub on a free 127.0.0.1 port in a background thread.

    The returned server has ``.url``; stop it with ``.stop()``.
    """
    from mlxtui.devhub.server import DevHub

    root = Path(root) if root is not None else default_demo_root()
    seed_demo(root)
    hub = DevHub(root, host="127.0.0.1", port=0)
    hub.start()
    return hub

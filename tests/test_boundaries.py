"""The layer rules of STYLE.md, checked on the source: services never touch Textual, the UI never touches MLX or the Hub client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mlxtui"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for name in imported_modules(path):
            if name.split(".")[0] in forbidden or any(name.startswith(f + ".") or name == f for f in forbidden):
                found.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    return found


def test_services_never_import_textual_or_the_ui() -> None:
    assert offenders("services", ("textual", "mlxtui.ui")) == []


@pytest.mark.parametrize("forbidden", ["mlx", "mlx_lm", "huggingface_hub", "transformers"])
def test_ui_never_imports_mlx_or_the_hub_client(forbidden: str) -> None:
    assert offenders("ui", (forbidden,)) == []

"""The layer rules of STYLE.md, checked on the source: services never touch Textual, the UI never touches MLX or the Hub client."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mlxtui"


def parse(path: Path) -> ast.Module:
    """`ast.parse` with the collector held off: on CPython 3.11.7 a finalizer that runs while the tree is built
    (an asyncio transport an earlier test on this worker left behind) fails the parse with "SystemError: AST
    constructor recursion depth mismatch" (seen in a full run; fixed in later CPythons)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    finally:
        if enabled:
            gc.enable()


def imported_modules(path: Path) -> set[str]:
    tree = parse(path)
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


def test_ui_never_imports_the_devhub() -> None:
    """The demo Hub is started through mlxtui.services.demo; the UI knows only services."""
    assert offenders("ui", ("mlxtui.devhub",)) == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path) -> set[str]:
    """Modules imported when the code runs (at import or in a call); `if TYPE_CHECKING:` blocks do not count."""
    tree = parse(path)
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _graph() -> dict[str, set[str]]:
    """mlxtui module -> the mlxtui modules it imports at module level or inside functions."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _runtime_imports(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported.startswith("mlxtui"):
                targets.add(imported)
        graph[name] = targets
    return graph


def test_no_import_cycles_between_modules() -> None:
    """A package's __init__ importing its own children is not a cycle worth failing on; any other is."""
    graph = _graph()
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start and len(trail) > 1:
                    if not all(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(trail, trail[1:] + [start])):
                        cycles.append(" -> ".join(trail + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))
    assert sorted(set(cycles))[:5] == []


def test_no_module_holds_more_than_600_lines() -> None:
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}


def test_pyflakes_is_clean() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "pyflakes", str(PACKAGE), str(PACKAGE.parent / "tests"),
                             str(PACKAGE.parent / "bench"), str(PACKAGE.parent / "scripts")],
                            capture_output=True, text=True)
    assert result.stdout == ""

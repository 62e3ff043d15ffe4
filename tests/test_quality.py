"""Code standards that a machine checks: lint, the core/Qt boundary, lazy heavy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_ruff_is_clean() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "."],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_core_never_imports_qt() -> None:
    result = subprocess.run([str(BIN / "lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_the_engine_loads_no_qt_at_run_time() -> None:
    code = ("import sys, tlstudio.core.training.engine, tlstudio.cli; "
            "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_command_line_starts_without_torch() -> None:
    """`tlstudio --help` must be instant: torch loads only when work needs it."""
    code = "import sys, tlstudio.cli as c; c.build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


MAX_MODULE_LINES = 500


def test_no_module_is_longer_than_it_can_be_read() -> None:
    """Small modules with one job: none over 500 lines (the seams issue split the 756-line engine, the 981-line
    command line and the window's two largest files)."""
    long = {str(path.relative_to(ROOT)): n for path in (ROOT / "tlstudio").rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def _imports_of(path: Path, modules: set[str]) -> set[str]:
    """The tlstudio modules `path` imports anywhere (inside functions too), except for type checking only."""
    import ast

    found: set[str] = set()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [f"{child.module}.{alias.name}" for alias in child.names]
            found.update(m for m in map(owner, (n for n in names if n.startswith("tlstudio"))) if m)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                other = stack.pop()
                group.append(other)
                if other == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_inside_the_package() -> None:
    """Not even through imports inside functions: a circle is two modules that cannot be understood apart."""
    files = {}
    for path in (ROOT / "tlstudio").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    modules = set(files)
    graph = {name: _imports_of(path, modules) - {name} for name, path in files.items()}
    assert _cycles(graph) == []
    graph["tlstudio.core.models.weights"].add("tlstudio.core.models.catalogue")  # the check sees a circle
    assert ["tlstudio.core.models.catalogue", "tlstudio.core.models.weights"] in _cycles(graph)

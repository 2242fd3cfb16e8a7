"""The package's shape: no import cycles, no long functions (what loads accelerate: test_package.py)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "byol_pytorch"
MAX_BODY_LINES = 50  # a function's body, its signature and docstring aside


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports anywhere in its file (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from .pkg import module` imports the module; `from .module import name` the module itself.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def _is_ancestor(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def test_no_module_imports_back_into_one_that_imports_it() -> None:
    modules = _modules()
    known = set(modules)
    # Importing a package's own parent is how Python imports anything below it, not a cycle.
    graph = {name: {t for t in _imports(name, path, known) if not _is_ancestor(t, name)}
             for name, path in modules.items()}
    cycles = []

    def visit(node: str, trail: list[str], done: set[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in trail:
                cycles.append(" -> ".join([*trail[trail.index(nxt):], nxt]))
            elif nxt not in done:
                visit(nxt, [*trail, nxt], done)
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [start], done)
    assert cycles == []
    assert "byol_pytorch.training" in graph["byol_pytorch.cli.train"]  # the graph sees imports inside functions


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of ``node``'s body after its docstring (nested functions count in their parent)."""
    body = node.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return node.end_lineno - body[0].lineno + 1  # type: ignore[operator]


def test_no_function_body_is_longer_than_a_screen() -> None:
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(node) > MAX_BODY_LINES:
                long.append(f"{name}.{node.name}: {_body_lines(node)} lines")
    assert long == []


def test_the_measure_counts_the_body_alone() -> None:
    source = 'def f(\n    a,\n    b,\n):\n    """Doc.\n\n    More.\n    """\n    x = a\n    return x + b\n'
    (node,) = ast.parse(source).body
    assert _body_lines(node) == 2  # type: ignore[arg-type]

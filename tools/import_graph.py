"""The project's import graph from the source files alone (no import-linter, nothing imported): cycles and the
imports made inside functions.

    python tools/import_graph.py            # "no cycle"; exit 1 and the cycles otherwise
    python tools/import_graph.py --inner    # also list the in-function imports of project modules, per module

Every ``import`` statement counts, at module level or inside a function, so a cycle held together by an
import inside a function is found too. A cycle is a strongly connected component of more than one module.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "baselines")


def project_modules(root: Path = REPO) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _targets(module: str, node: ast.AST, modules: dict[str, Path]) -> list[str]:
    """The project modules an import statement of ``module`` names (``from a import b`` may name module a.b)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        assert isinstance(node, ast.ImportFrom)
        base = node.module or ""
        if node.level:
            parts = module.split(".")
            parts = parts if modules[module].name == "__init__.py" else parts[:-1]
            base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = []
    for name in names:
        while name and name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in modules and name != module:
            found.append(name)
    return found


def import_graph(root: Path = REPO) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(every import edge, the edges made by imports inside functions), module -> imported project modules."""
    modules = project_modules(root)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    inner: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        in_functions = {
            id(node)
            for fn in ast.walk(tree)
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(fn)
        }
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = _targets(module, node, modules)
                edges[module].update(targets)
                if id(node) in in_functions:
                    inner[module].update(targets)
    return edges, inner


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inner", action="store_true", help="list the in-function imports of project modules")
    args = parser.parse_args()
    edges, inner = import_graph()
    if args.inner:
        total = sum(len(v) for k, v in inner.items() if k != "bench.cli")
        print(f"in-function imports of project modules outside bench.cli: {total}")
        for module in sorted(m for m in inner if inner[m]):
            print(f"  {module}: {', '.join(sorted(inner[module]))}")
    found = cycles(edges)
    print("no cycle" if not found else "\n".join("cycle: " + " <-> ".join(c) for c in found))
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())

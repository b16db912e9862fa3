"""The source files of a plugin: its module and every project-local module it imports, found by reading the import
statements, never by running them (torch-free; nothing is imported, so a missing or broken plugin costs nothing).

    from bench.run.plugin_files import plugin_files, imported_modules
    plugin_files("temporal_mean")        # [("temporal_mean.py", Path(".../examples/temporal_mean.py")), ...]
    imported_modules("temporal_mean")    # {"temporal_mean", "my_helpers", ...}: the same walk, by module name

**Project-local** means a Python source file that is neither the standard library nor an installed package
(site-packages) nor the suite itself (``bench``, ``baselines``: the suite's own fingerprint covers what of it
computes a number, ``bench.run.fingerprint``). A plugin that imports ``helpers.py`` from its own folder, or a
package of the user's installed in editable mode, depends on those files; a change to any of them is a change of
the plugin. The walk follows ``import a.b`` (and the packages ``a`` and ``a.b`` whose ``__init__`` it runs),
``from a import b`` (``b`` may be a submodule) and relative imports, in every function body too, transitively
through project-local files only. Imports built at run time (``importlib.import_module(name)``) are not seen:
list such a module under ``plugins:`` as well.

Labels (what ``plugin_files`` pairs each file with) are the ones the hash has always used for the plugin itself
(``temporal_mean.py``; a package: ``pkg/x.py`` for every file below it) and the dotted module name for each
further module, so a plugin that imports nothing project-local keeps its fingerprint.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import site
import sys
import sysconfig
from functools import cache
from pathlib import Path

from bench.run import git

SUITE_PACKAGES: tuple[Path, ...] = (git.REPO_ROOT / "bench", git.REPO_ROOT / "baselines")


@cache
def _installed_roots() -> tuple[Path, ...]:
    """Folders of the standard library and of installed packages (never project-local)."""
    paths = sysconfig.get_paths()
    roots = {paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= set(site.getsitepackages()) | {site.getusersitepackages()}
    return tuple(Path(r).resolve() for r in roots if r)


def is_project_local(path: Path) -> bool:
    """A ``.py`` file outside the standard library, installed packages and the suite's own packages."""
    path = path.resolve()
    if path.suffix != ".py":
        return False
    return not any(path.is_relative_to(root) for root in (*_installed_roots(), *SUITE_PACKAGES))


def module_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """Where module ``name`` would be loaded from, without importing it or its parent packages (None when it cannot
    be found: not installed, a broken parent, or a built-in module)."""
    if name in sys.modules:  # None there means "not importable" to the import system too
        return getattr(sys.modules[name], "__spec__", None)
    parent, _, child = name.rpartition(".")
    try:
        if not parent:
            return importlib.util.find_spec(name)  # a top-level name imports nothing
        outer = module_spec(parent)
        locations = outer.submodule_search_locations if outer is not None else None
        return importlib.machinery.PathFinder.find_spec(name, list(locations)) if locations else None
    except (ImportError, ValueError):
        return None


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` (a package: its ``__init__.py``), None when it has none."""
    spec = module_spec(name)
    origin = spec.origin if spec is not None else None
    return Path(origin).resolve() if origin and origin.endswith(".py") and Path(origin).is_file() else None


def _parents(name: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b", "a.b.c"]``: importing a module runs every package above it."""
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str | None:
    """The absolute name of ``from {'.' * level}{target} import ...`` inside ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    if not package:
        return None
    return f"{package}.{target}" if target else package


def imports_of(module: str, path: Path) -> set[str]:
    """Every module name the source of ``module`` (at ``path``) may import, with the packages above each."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(p for alias in node.names for p in _parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(module, path.name == "__init__.py", node.level, node.module)
                if node.level
                else node.module
            )
            if base:
                found.update(_parents(base))
                found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def imported_modules(plugin: str) -> frozenset[str]:
    """``plugin`` and every project-local module it imports, directly or through other project-local modules
    (read afresh on every call: an edited plugin may import other modules)."""
    seen: dict[str, Path] = {}
    todo = [plugin]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name)
        if path is None or (name != plugin and not is_project_local(path)):
            continue
        seen[name] = path
        todo.extend(sorted(imports_of(name, path) - set(seen)))
    return frozenset(seen)


def _own_files(path: Path) -> list[tuple[str, Path]]:
    """The plugin's own files with their labels: the module file, or every ``.py`` file of its package."""
    if path.name == "__init__.py":
        root = path.parent.parent
        return [(f.relative_to(root).as_posix(), f) for f in sorted(path.parent.rglob("*.py"))]
    return [(path.name, path)]


def plugin_files(plugin: str) -> list[tuple[str, Path]]:
    """(label, file) of every source file ``plugin`` depends on (module docstring); [] when it cannot be found."""
    path = module_file(plugin)
    if path is None:
        return []
    own = _own_files(path)
    files = {f for _, f in own}
    extra = []
    for name in sorted(imported_modules(plugin) - {plugin}):
        file = module_file(name)
        if file is not None and file not in files:
            files.add(file)
            extra.append((name, file))
    return own + extra

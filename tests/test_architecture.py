"""The architecture's rules (docs/architecture.md), enforced: import contracts, no cycles, one owner per concept.

A new upward import, cycle or second owner fails here with the offending module and line.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from import_graph import cycles, import_graph  # noqa: E402  (tools/ is not a package)

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "bench").rglob("*.py"), *(REPO / "baselines").rglob("*.py")])
RUN_DIR_FILES = (
    "config.yaml",
    "checkpoint.pt",
    "log.jsonl",
    "record.json",
    "claim.json",
    "error.json",
    "latency.json",
    "eval.json",
    "tensorboard",
)
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """(line, value) of every string constant of ``path`` that is not a docstring."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _references(path: Path, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of every use of one of ``names`` (a call, an attribute or an import) in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Name) and node.id in names:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr in names:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom):
            found += [(node.lineno, a.name) for a in node.names if a.name in names]
    return found


def test_import_contracts_hold():
    """pyproject.toml's [tool.importlinter] contracts: layers, forbidden imports, acyclic siblings."""
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        pytest.fail(f"{lint} is missing: import-linter is a dev dependency (pip install -e '.[dev]')")
    result = subprocess.run(
        [str(lint), "--no-cache", "--config", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_plain_import_graph_has_no_cycle_and_few_inner_imports():
    edges, inner = import_graph(REPO)
    assert cycles(edges) == []
    # in-function imports only where start-up time needs them (each carries a comment saying so)
    allowed = {
        "bench.cli", "bench.cli.commands", "bench.grid.slurm", "bench.grid.sweep", "bench.report.figures",
        "bench.run.rundir",
    }  # fmt: skip
    assert {module for module, targets in inner.items() if targets} <= allowed


def test_only_rundir_names_run_directory_files():
    owner = REPO / "bench" / "run" / "rundir.py"
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {value!r}"
        for path in SOURCES
        if path != owner
        for line, value in _code_strings(path)
        if value in RUN_DIR_FILES
    ]
    assert not offenders, "name run-dir files through bench.run.rundir only:\n" + "\n".join(offenders)


def test_a_trained_model_is_loaded_in_one_place():
    """``bench.weights.load_weights`` puts checkpoint weights into a model, called by bench/run/model.py only
    (``model.checkpoint`` in ``model_builder``, a run's checkpoint in ``load_run_model``)."""
    allowed = {REPO / "bench" / "run" / "model.py", *(REPO / "bench" / "weights").glob("*.py")}
    names = {"load_weights", "built_with_weights"}
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {name}"
        for path in SOURCES
        if path not in allowed
        for line, name in _references(path, names)
    ]
    assert not offenders, "use bench.run.model.load_run_model:\n" + "\n".join(offenders)


def test_models_are_built_in_one_place():
    """``registry.create`` (a model from plain arguments) is called by ``bench.run.model.build_model`` only."""
    allowed = {REPO / "bench" / "run" / "model.py", REPO / "bench" / "models" / "registry.py"}
    offenders = [
        f"{path.relative_to(REPO)}:{line}"
        for path in SOURCES
        if path not in allowed
        for line, _ in _references(path, {"create"})
        if "registry" in path.read_text()
    ]
    assert not offenders, "build models with bench.run.model.build_model:\n" + "\n".join(offenders)


def test_functions_are_short():
    long = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "split these functions:\n" + "\n".join(long)


def test_modules_are_short():
    """One job per module: at most 400 lines (docs/architecture.md, the map)."""
    long = [
        f"{path.relative_to(REPO)} ({lines} lines)"
        for path in SOURCES
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, "split these modules by job:\n" + "\n".join(long)


def test_the_trainer_writes_only_its_checkpoint_and_log(tmp_path, tiny_cfg):
    from bench.run.execute import train_and_evaluate

    cfg = tiny_cfg(tmp_path / "run", "train.iters=1", "eval.temporal_consistency=false")
    train_and_evaluate(cfg, tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt", "log.jsonl"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_the_tree_passes_ruff(command):
    """``ruff check`` and ``ruff format --check`` (configured in pyproject.toml) are clean on the whole tree."""
    ruff = Path(sys.executable).with_name("ruff")
    assert ruff.exists(), 'ruff is a dev dependency: pip install -e ".[dev]" (make setup does)'
    done = subprocess.run([str(ruff), *command, str(REPO)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout[-4000:]}{done.stderr[-2000:]}"

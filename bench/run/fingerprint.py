"""The fingerprint of the code that computes a run's numbers, stored in its record and checked on every reuse.

    from bench.run.fingerprint import code_fingerprint, code_changes
    code = code_fingerprint(["examples.temporal_mean"])
    # {"suite": "3f9c...", "plugins": {...}, "commit": ..., "dirty": ...}
    code_changes(record["code"], code)                    # [] or ["plugin examples.temporal_mean", "suite sources"]
    unchecked_plugins(code)                               # plugins not found here: their code is not checked

What is hashed (SHA-1 of the file contents, not of their timestamps):

* ``suite``: the suite's modules that compute a record (``COMPUTING``: models, baselines, data, flow, metrics,
  seeding, distributed, the computing modules of ``bench.engine`` and ``bench.evaluation``, and how ``bench.run``
  builds a model). Editing the reports, the grids
  or the CLI leaves it unchanged: they never change a number a run produces.
* ``plugins``: each plugin module the run's model depends on (``RunIdentity.plugins``: the plugin that
  registers it; a built-in model depends on none, whatever ``plugins:`` lists), hashed with every
  project-local module it imports (``bench.run.plugin_files``: read from the import statements, never by
  importing); a plugin that is a package is hashed with every ``.py`` file below it. A plugin that cannot be
  found here hashes to ``"unavailable"``: its code cannot be checked (``unchecked_plugins``), which is not a
  change (``bench status`` and ``bench report`` work without the plugin and say so).

``commit`` and ``dirty`` (``git status --porcelain`` of the sources is not empty) are provenance only: two
checkouts at the same commit with the same edits give the same ``suite`` hash, and the hash, not the commit,
decides reuse.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from bench.run import git
from bench.run.plugin_files import plugin_files

REPO_ROOT = git.REPO_ROOT
UNAVAILABLE = "unavailable"  # the hash of a plugin that cannot be found here
COMPUTING: tuple[str, ...] = (
    "bench/models",
    "bench/data",
    "bench/flow",
    "bench/weights",
    "baselines",
    "bench/metrics",
    "bench/seeding.py",
    "bench/distributed.py",
    "bench/constants.py",
    "bench/engine/trainer.py",
    "bench/engine/state.py",
    "bench/engine/finite.py",
    "bench/engine/batches.py",
    "bench/engine/recipe.py",
    "bench/engine/optimizer.py",
    "bench/engine/checkpoint.py",
    "bench/engine/temporal_loss.py",
    "bench/evaluation/evaluate.py",
    "bench/evaluation/inference.py",
    "bench/evaluation/tta.py",
    "bench/evaluation/protocols.py",
    "bench/evaluation/temporal.py",
    "bench/evaluation/videos.py",
    "bench/run/model.py",
    "bench/run/arguments.py",
)
# the modules of the engine and evaluation, and the bench.run modules they or a run's training use, that never
# change a metric of the record (tests/test_sweep.py checks that every such module is in one of the two lists)
NOT_COMPUTING_RUN: tuple[str, ...] = (
    "bench/engine/__init__.py",
    "bench/engine/job.py",
    "bench/engine/hooks.py",
    "bench/engine/loggers.py",
    "bench/engine/log_writer.py",
    "bench/engine/train_log.py",
    "bench/engine/tensorboard.py",
    "bench/engine/trackers.py",
    "bench/engine/signals.py",
    "bench/engine/divergence.py",
    "bench/evaluation/__init__.py",
    "bench/evaluation/latency.py",
    "bench/evaluation/latency_input.py",
    "bench/evaluation/fps.py",
    "bench/evaluation/latency_stats.py",
    "bench/evaluation/flops.py",
    "bench/evaluation/measure.py",
    "bench/evaluation/predictions.py",
    "bench/evaluation/scoring.py",
    "bench/run/rundir.py",
    "bench/run/records.py",
    "bench/run/identity.py",
    "bench/run/reads.py",
    "bench/run/claims.py",
)


def _python_files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else []


def hash_labelled(files: list[tuple[str, Path]]) -> str:
    """SHA-1 over (label, contents) of ``files``, in the given order."""
    digest = hashlib.sha1()
    for label, file in files:
        digest.update(label.encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def hash_files(files: list[Path], root: Path) -> str:
    """SHA-1 over (path relative to ``root``, contents) of ``files``, in the given order."""
    return hash_labelled([(file.relative_to(root).as_posix(), file) for file in files])


@functools.lru_cache(maxsize=1)
def suite_hash() -> str:
    """The hash of the suite's computing modules (``COMPUTING``), once per process."""
    files = [f for entry in COMPUTING for f in _python_files(REPO_ROOT / entry)]
    return hash_files(files, REPO_ROOT)


def plugin_hash(module_name: str) -> str:
    """The hash of a plugin's source files (``bench.run.plugin_files``: the module, or every .py file of its
    package, and every project-local module it imports), found without running them; ``UNAVAILABLE`` when the
    module cannot be found."""
    files = plugin_files(module_name)
    return hash_labelled(files) if files else UNAVAILABLE


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the suite's checkout; (None, None) outside git or without git."""
    commit = git.commit()
    if commit is None:
        return None, None
    return commit, git.dirty(paths=COMPUTING, untracked=False)


def code_fingerprint(plugins: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """What a record stores under ``"code"`` (module docstring)."""
    commit, dirty = git_state()
    return {
        "suite": suite_hash(),
        "plugins": {name: plugin_hash(name) for name in plugins},
        "commit": commit,
        "dirty": dirty,
    }


def code_changes(stored: Any, current: dict[str, Any]) -> list[str]:
    """What differs between a stored fingerprint and the current one: [] when the same code made the record.

    Only the plugins of ``current`` count (the ones the run depends on now: a plugin that a record made by an
    older version also hashed cannot change this run); one whose code cannot be found here is not compared
    (``unchecked_plugins``). A record without a fingerprint (made before fingerprints existed) is one change that
    says so.
    """
    if not isinstance(stored, dict) or "suite" not in stored:
        return ["the record has no code fingerprint (made by an older version of the suite)"]
    before = stored.get("plugins") if isinstance(stored.get("plugins"), dict) else {}
    changes = [
        f"plugin {name}"
        for name, digest in sorted(current["plugins"].items())
        if digest != UNAVAILABLE and before.get(name) != digest
    ]
    if stored["suite"] != current["suite"]:
        was = f" (made at commit {str(stored['commit'])[:10]}{', dirty' if stored.get('dirty') else ''})"
        changes.append("suite sources" + (was if stored.get("commit") else ""))
    return changes


def unchecked_plugins(current: dict[str, Any]) -> list[str]:
    """The plugins of a fingerprint whose code cannot be found here (``UNAVAILABLE``): not checked, not changed."""
    return sorted(name for name, digest in current["plugins"].items() if digest == UNAVAILABLE)

"""THE reuse decision: can a run folder hold a given run, and is what it holds finished, stale or another run's?

    from bench.run.rundir import RunDir
    found = RunDir(path).inspect_reuse(ident)     # calls inspect(run_dir, ident); a Reuse (bench.run.reads)
    found.done, found.problem, found.mismatch, found.stale

Reused only when nothing says otherwise: a folder that is not a run of this suite (``reads.foreign_folder``),
a record or ``config.yaml`` of another config (``identity.differences`` not empty), a finished record made by
other code (``bench.run.fingerprint``: stale; a plugin not found here is not checked, ``Reuse.unchecked``), an
unfinished run's checkpoint of another run or of other code (``bench.run.resume``). A missing folder may hold
its run under an older id (``bench.run.moved``: the mv that adopts it, never importing another run's plugin).
``bench.run.rundir.RunDir`` is the only caller and names the files; this module reads them through it (it never
imports it: ``run`` is a ``RunDir``).
"""

from __future__ import annotations

from typing import Any

from bench.errors import BenchError, one_line
from bench.run.fingerprint import code_changes, code_fingerprint, unchecked_plugins
from bench.run.identity import RunIdentity, differences
from bench.run.moved import moved_run
from bench.run.reads import RecordRead, RecordState, Reuse, RunDirError, mismatch_text, stale_text


def _stored_configs(run: Any, read: RecordRead) -> list[tuple[str, dict[str, Any]]]:
    """(file name, stored config) of the record and ``config.yaml``."""
    stored = []
    if read.record is not None and isinstance(read.record.get("config"), dict):
        stored.append((run.record_file.name, read.record["config"]))
    config_yaml = run.stored_yaml()
    if config_yaml is not None:
        stored.append((run.config_file.name, config_yaml))
    return stored


def inspect(run: Any, ident: RunIdentity) -> Reuse:
    """The reuse decision for the folder ``run`` (a ``RunDir``) and the run ``ident`` (module docstring)."""
    if not run.path.exists():
        moved = "" if ident.config.run_dir else moved_run(run.path, ident, run.sibling_config)
        return Reuse(RecordRead(RecordState.MISSING), moved, mismatch=bool(moved))
    read = run.read_record()
    if read.state is RecordState.CORRUPT:
        return Reuse(read, f"{read.reason}; delete it to recompute the record (the checkpoint is resumed)")
    foreign = run.foreign()
    if foreign:
        return Reuse(read, foreign, mismatch=True)
    try:
        stored = _stored_configs(run, read)
    except RunDirError as err:
        return Reuse(read, str(err))
    for name, values in stored:
        diffs = differences(values, ident)
        if diffs:
            return Reuse(read, mismatch_text(run.path, name, diffs), mismatch=True)
    if read.done and read.record is not None:
        code = code_fingerprint(ident.plugins)  # the model's own plugins (none for a built-in model)
        changes = code_changes(read.record.get("code"), code)
        if changes:
            return Reuse(read, stale_text(run.record_file, run.stale_mark, changes), stale=tuple(changes))
        return Reuse(read, unchecked=tuple(unchecked_plugins(code)))
    try:
        verdict = run.checkpoint_verdict(ident)
    except BenchError as err:  # an unreadable checkpoint: the engine's message says what to do
        return Reuse(read, one_line(err).removeprefix("bench: "))
    return Reuse(read, verdict.problem, mismatch=verdict.mismatch, stale=verdict.stale)

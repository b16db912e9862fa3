"""May this run resume that checkpoint? Its stamp (config, config hash, run id, code fingerprint) against the
run's identity and the code running now.

    from bench.run.resume import checkpoint_verdict
    verdict = checkpoint_verdict(path, stamp, ident)   # stamp: bench.engine.checkpoint.read_stamp(path)
    verdict.problem, verdict.mismatch, verdict.stale    # "" / False / () when it may be resumed

A checkpoint of another config (copied into the folder, or left by another run) is a mismatch naming the keys;
one saved by other code (an edited model, a ``git pull`` before a SLURM requeue, an edited plugin) is stale: one
run trained half by each code would be recorded under the new code's fingerprint. Both are refused in one line;
``--rerun-stale`` restarts a stale run from scratch (``bench.run.execute``). ``bench.run.rundir.RunDir`` reads the
stamp and asks here; torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.run.fingerprint import code_changes, code_fingerprint
from bench.run.identity import RunIdentity, differences
from bench.run.reads import mismatch_text


@dataclass(frozen=True)
class Verdict:
    """Why a checkpoint may not be resumed ("" when it may): another run's (``mismatch``) or other code's
    (``stale``: what changed)."""

    problem: str = ""
    mismatch: bool = False
    stale: tuple[str, ...] = ()


def checkpoint_verdict(path: Path, stamp: dict[str, Any], ident: RunIdentity, stale_mark: str) -> Verdict:
    """The verdict on the checkpoint ``path`` whose non-tensor entries are ``stamp``, for the run ``ident``
    (``stale_mark``: how a folder moved aside is named, for the message)."""
    config = stamp.get("config")
    if not isinstance(config, dict) and "code" not in stamp and "run_id" not in stamp:
        return Verdict()  # no stamp at all: not a checkpoint of bench train (the engine says so, in one line)
    if isinstance(config, dict):
        diffs = differences(config, ident)
        if diffs:
            return Verdict(mismatch_text(path.parent, path.name, diffs), mismatch=True)
    elif stamp.get("run_id") not in (None, ident.run_id):
        return Verdict(mismatch_text(path.parent, path.name, [f"run id {stamp['run_id']}"]), mismatch=True)
    code = stamp.get("code")
    if isinstance(code, dict):
        changes = code_changes(code, code_fingerprint(ident.plugins))  # the model's own plugins only
    else:
        changes = ["the checkpoint has no code fingerprint (saved by an older version of the suite)"]
    if not changes:
        return Verdict()
    at = stamp.get("iteration")
    return Verdict(
        f"stale checkpoint: code changed ({'; '.join(changes)}) since {path} was saved"
        f"{f' at iteration {at}' if at is not None else ''}; resuming it would train one run with two codes. "
        f"--rerun-stale restarts the run from scratch (the old folder is kept as {path.parent.name}{stale_mark}1), "
        f"or go back to the code that saved it to finish the run",
        stale=tuple(changes),
    )

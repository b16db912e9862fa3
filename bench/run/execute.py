"""The one way a run is executed: ``bench train``, each local-launcher subprocess and each SLURM job call it.

    from bench.run.execute import execute, Outcome
    result = execute(cfg)                    # Result(outcome=DONE, record=...) or Result(outcome=BUSY, ...)

    python -m bench.run.execute RUN_DIR [--take-over]   # runs RUN_DIR/config.yaml (what the local launcher starts)

Steps: ``rundir.inspect_reuse`` (a finished, matching run returns its record; a mismatch raises
``RunMismatchError``) -> claim the run (owned by another live process: outcome BUSY) -> remove temporary files
of killed writes -> write ``config.yaml`` -> ``trainer.train_and_evaluate(cfg, run_dir)`` -> ``record.json``
(rank 0) -> release the claim. A launcher (``bench.grid``) makes the reuse decision and writes ``config.yaml``
itself before it starts ``python -m bench.run.execute RUN_DIR``, which then skips those two steps. Any
exception (training, evaluation, latency) writes ``error.json``, releases the claim and is re-raised; a SLURM
preemption (``preempted()`` true) keeps the claim for the requeued job.
"""

from __future__ import annotations

import enum
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.atomic import write_problem
from bench.config import Config, ConfigError, validate
from bench.constants import EXIT_BUSY
from bench.data.errors import DatasetError
from bench.engine import trainer
from bench.engine.checkpoint import CheckpointError
from bench.engine.hooks import TrainHook
from bench.models.backbone import PretrainedWeightsError
from bench.models.registry import RegistryError
from bench.progress import configure_logging
from bench.run import rundir
from bench.run.liveness import current_job_id


class Outcome(enum.Enum):
    DONE = "done"
    BUSY = "busy"


@dataclass(frozen=True)
class Result:
    """How an execution ended: DONE with the record, or BUSY with the owner and why."""

    outcome: Outcome
    run_dir: Path
    record: dict[str, Any] | None = None
    reason: str = ""

    def summary(self) -> dict[str, Any]:
        record = self.record or {}
        return {
            "run_id": record.get("run_id", self.run_dir.name),
            "status": self.outcome.value,
            "metrics": record.get("metrics", {}),
            **({"reason": self.reason} if self.reason else {}),
        }


class RunBusyError(RuntimeError):
    """Another live process owns the run; the message names it."""


def global_rank() -> int:
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def _claims(job_id: str | None) -> bool:
    """Rank 0 claims; other ranks share a SLURM job's claim (same job id) or follow rank 0 (torchrun)."""
    return global_rank() == 0 or job_id is not None


def execute(
    cfg: Config,
    run_dir: str | Path | None = None,
    *,
    take_over: bool = False,
    preempted: Callable[[], bool] = lambda: False,
    hooks: Sequence[TrainHook] = (),
    launched: bool = False,
    stale: str = "stop",
) -> Result:
    """Execute ``cfg`` in ``run_dir`` (default ``rundir.path_for(cfg)``); see the module docstring.

    ``launched``: a launcher made the reuse decision and wrote ``config.yaml`` (``cfg`` was read from it), so
    neither is repeated. ``hooks``: training hooks (``bench.engine.hooks.TrainHook``, ``bench.TrainHook``), e.g. a
    logger. ``cfg`` is validated again first (assignments are checked one by one; this checks them together).
    ``stale``: a record made by other code (``bench.run.fingerprint``) is an error ("stop"), reused ("accept")
    or moved aside and trained again ("rerun").
    """
    validate(cfg)
    run_dir = Path(run_dir) if run_dir is not None else rundir.path_for(cfg)
    if not launched:
        reuse = rundir.inspect_reuse(run_dir, cfg)
        if reuse.stale and stale == "accept":
            return Result(Outcome.DONE, run_dir, reuse.read.record)
        if reuse.stale and stale == "rerun":
            rundir.move_aside(run_dir)
        else:
            reuse.raise_problem()
            if reuse.read.done:
                return Result(Outcome.DONE, run_dir, reuse.read.record)
    job_id = current_job_id()
    if _claims(job_id):
        got = rundir.acquire_claim(run_dir, job_id, take_over=take_over)
        if not got.ok:
            return Result(Outcome.BUSY, run_dir, reason=got.busy_message(run_dir))
        read = rundir.read_record(run_dir)  # finished by its previous owner meanwhile (under this config)?
        if read.done:
            rundir.release_claim(run_dir, job_id)
            return Result(Outcome.DONE, run_dir, read.record)
    try:
        record = _train(cfg, run_dir, job_id, hooks, write_config=not launched)
    except SystemExit:
        if not preempted():  # a requeued SLURM job keeps its claim (its job id stays the same)
            _fail(run_dir, RuntimeError("the run exited (SystemExit) before finishing"), job_id)
        raise
    except BaseException as err:
        _fail(run_dir, err, job_id)
        raise
    if global_rank() == 0:
        rundir.release_claim(run_dir, job_id)
    return Result(Outcome.DONE, run_dir, record)


def _train(
    cfg: Config, run_dir: Path, job_id: str | None, hooks: Sequence[TrainHook], write_config: bool
) -> dict[str, Any]:
    if global_rank() == 0:
        rundir.remove_temp_files(run_dir, job_id)
        rundir.clear_error(run_dir)
        if write_config:
            rundir.write_config(run_dir, cfg)
    record = trainer.train_and_evaluate(cfg, run_dir, hooks=hooks)
    if global_rank() == 0:
        rundir.write_record(run_dir, record)
    return record


def _fail(run_dir: Path, err: BaseException, job_id: str | None) -> None:
    rundir.write_error(run_dir, err, job_id)
    if global_rank() == 0:
        rundir.release_claim(run_dir, job_id)


def train_command(cfg: Config, take_over: bool = False, stale: str = "stop") -> dict[str, Any]:
    """``bench train``: execute and return the record; a run owned by another process is ``RunBusyError``.
    ``take_over``: also take a claim whose owner cannot be checked (``bench train ... --take-over``);
    ``stale``: see ``execute``."""
    result = execute(cfg, take_over=take_over, stale=stale)
    if result.outcome is Outcome.BUSY:
        raise RunBusyError(f"{result.reason}; wait for it to finish (bench status) instead of training twice")
    assert result.record is not None
    return result.record


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.run.execute RUN_DIR [--take-over]``: execute the run stored in ``RUN_DIR/config.yaml``
    (written by the launcher after its reuse check)."""
    configure_logging()  # status lines into the run's log (this process's stderr)
    args = sys.argv[1:] if argv is None else list(argv)
    take_over = "--take-over" in args
    args = [a for a in args if a != "--take-over"]
    if len(args) != 1:
        print("usage: python -m bench.run.execute RUN_DIR [--take-over]", file=sys.stderr)
        return 2
    try:
        result = execute(rundir.read_config(args[0]), args[0], take_over=take_over, launched=True)
    except (ConfigError, CheckpointError, RegistryError, DatasetError, PretrainedWeightsError, OSError) as err:
        problem = write_problem(err)
        if problem is None and isinstance(err, OSError):
            raise
        print(f"bench: {problem or type(err).__name__ + ': ' + ' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(json.dumps(result.summary(), default=str), flush=True)
    return EXIT_BUSY if result.outcome is Outcome.BUSY else 0


if __name__ == "__main__":
    raise SystemExit(main())

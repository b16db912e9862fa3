"""The one way a run is executed: ``bench train``, each local-launcher subprocess and each SLURM job call it.

    from bench.run.execute import execute, Outcome
    result = execute(cfg)                    # Result(outcome=DONE, record=...) or Result(outcome=BUSY, ...)

    python -m bench.run.execute RUN_DIR [--take-over] [--defer-latency]   # RUN_DIR/config.yaml (the local launcher)

Steps: the run's identity, computed once (``RunIdentity``: model arguments, hash, run id) -> its folder
(``RunDir``) -> ``RunDir.inspect_reuse`` (a finished, matching run returns its record; a mismatch raises
``RunMismatchError``) -> claim the run (owned by another live process: outcome BUSY) -> remove temporary files
of killed writes -> write ``config.yaml`` -> ``train_and_evaluate``: a ``TrainJob`` for the engine
(``bench.engine.trainer.train``), its ``TrainResult`` made into ``record.json`` (rank 0) -> release the claim.
A launcher (``bench.grid``) makes the reuse decision and writes ``config.yaml`` itself before it starts
``python -m bench.run.execute RUN_DIR``, which then skips those two steps. Any
exception (training, evaluation, latency) writes ``error.json``, releases the claim and is re-raised; a SLURM
preemption (``preempted()`` true) keeps the claim for the requeued job.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.atomic import write_problem
from bench.config import Config, validate
from bench.constants import EXIT_BUSY
from bench.distributed import global_rank
from bench.engine.hooks import TrainHook
from bench.engine.job import TrainJob
from bench.engine.trainer import train
from bench.errors import BenchError, one_line
from bench.progress import configure_logging
from bench.run.identity import RunIdentity
from bench.run.liveness import current_job_id
from bench.run.model import model_builder
from bench.run.records import RunStamp, make_record
from bench.run.rundir import RunDir, RunMismatchError, RunStaleError


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


class RunBusyError(BenchError, RuntimeError):
    """Another live process owns the run; the message names it."""


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
    defer_latency: bool = False,
) -> Result:
    """Execute ``cfg`` in ``run_dir`` (default ``RunDir.of(cfg)``); see the module docstring.

    ``launched``: a launcher made the reuse decision and wrote ``config.yaml`` (``cfg`` was read from it), so
    neither is repeated. ``hooks``: training hooks (``bench.engine.hooks.TrainHook``, ``bench.TrainHook``), e.g. a
    logger. ``cfg`` is validated again first (assignments are checked one by one; this checks them together).
    ``stale``: a record made by other code (``bench.run.fingerprint``) is an error ("stop"), reused ("accept")
    or moved aside and trained again ("rerun"). ``defer_latency``: no latency after training (``launch.latency``
    is left to the caller: the local launcher measures once per architecture when the sweep is over).
    """
    validate(cfg)
    ident = RunIdentity.of(cfg)
    folder = RunDir(run_dir) if run_dir is not None else RunDir.of(cfg, ident.run_id)
    if not launched:
        reuse = folder.inspect_reuse(ident)
        if reuse.stale and stale == "accept" and reuse.read.done:  # a stale checkpoint is never resumed
            return Result(Outcome.DONE, folder.path, reuse.read.record)
        if reuse.stale and stale == "rerun":
            folder.move_aside()
        else:
            reuse.raise_problem()
            if reuse.read.done:
                return Result(Outcome.DONE, folder.path, reuse.read.record)
    job_id = current_job_id()
    if _claims(job_id):
        got = folder.acquire_claim(job_id, take_over=take_over)
        if not got.ok:
            return Result(Outcome.BUSY, folder.path, reason=got.busy_message(folder))
        read = folder.read_record()  # finished by its previous owner meanwhile (under this config)?
        if read.done:
            folder.release_claim(job_id)
            return Result(Outcome.DONE, folder.path, read.record)
    try:
        if launched:  # a requeued SLURM job or a launched process: its checkpoint, saved by this run and code?
            verdict = folder.checkpoint_verdict(ident)
            if verdict.problem:
                raise (RunMismatchError if verdict.mismatch else RunStaleError)(verdict.problem)
        record = _train(ident, folder, job_id, hooks, write_config=not launched, latency=not defer_latency)
    except SystemExit:
        if not preempted():  # a requeued SLURM job keeps its claim (its job id stays the same)
            _fail(folder, RuntimeError("the run exited (SystemExit) before finishing"), job_id)
        raise
    except BaseException as err:
        _fail(folder, err, job_id)
        raise
    if global_rank() == 0:
        folder.release_claim(job_id)
    return Result(Outcome.DONE, folder.path, record)


def _train(
    ident: RunIdentity,
    folder: RunDir,
    job_id: str | None,
    hooks: Sequence[TrainHook],
    write_config: bool,
    latency: bool = True,
) -> dict[str, Any]:
    if global_rank() == 0:
        folder.remove_temp_files(job_id)
        folder.clear_error()
        if write_config:
            folder.write_config(ident.config)
    record = train_and_evaluate(ident.config, folder.path, hooks=hooks, identity=ident, latency=latency)
    if global_rank() == 0:
        folder.write_record(record)
    return record


def _fail(folder: RunDir, err: BaseException, job_id: str | None) -> None:
    folder.write_error(err, job_id)
    if global_rank() == 0:
        folder.release_claim(job_id)


def train_job(
    cfg: Config, run_dir: str | Path, identity: RunIdentity | None = None, latency: bool = True
) -> tuple[TrainJob, RunStamp]:
    """The engine's job for ``cfg`` in ``run_dir`` and the run's stamp (``identity``: computed once per run, else
    here): the paths ``RunDir`` names, the model builder with the factory's arguments, the checkpoint stamp;
    ``latency`` False: none after training (``TrainJob.latency``)."""
    ident = identity if identity is not None else RunIdentity.of(cfg)
    stamp = RunStamp.of(ident)
    job = TrainJob(
        cfg,
        RunDir(run_dir).train_paths(),
        model_builder(cfg, ident.model_args),
        memory_length=int(ident.model_args.get("memory_length", 0)),
        stamp={
            "config": stamp.config,
            "config_hash": stamp.config_hash,
            "classes": list(stamp.classes),
            "run_id": stamp.run_id,
            "code": stamp.code,
        },
        model_name=cfg.model.name,
        latency=latency,
    )
    return job, stamp


def train_and_evaluate(
    cfg: Config,
    run_dir: str | Path,
    *,
    hooks: Sequence[TrainHook] = (),
    identity: RunIdentity | None = None,
    latency: bool = True,
) -> dict[str, Any]:
    """Train ``cfg`` in ``run_dir`` (resuming its checkpoint) with the engine, evaluate, return the record dict on
    every rank. Writes only the checkpoint and ``log.jsonl`` (and the loggers asked for); the record, config
    and claim are ``execute``'s."""
    job, stamp = train_job(cfg, run_dir, identity, latency)
    result = train(job, hooks)
    record = make_record(
        stamp,
        metrics=result.metrics,
        device=result.device,
        iters=result.iters,
        wall_time_s=result.wall_time_s,
        checkpoint=result.checkpoint,
        batch_size=result.batch_size,
        batch_size_per_rank=result.batch_size_per_rank,
        world_size=result.world_size,
    )
    if result.latency is not None:
        record["latency"] = result.latency
    return record


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
    """``python -m bench.run.execute RUN_DIR [--take-over] [--defer-latency]``: execute the run stored in
    ``RUN_DIR/config.yaml`` (written by the launcher after its reuse check)."""
    configure_logging()  # status lines into the run's log (this process's stderr)
    args = sys.argv[1:] if argv is None else list(argv)
    flags = {"--take-over", "--defer-latency"}
    take_over, defer = "--take-over" in args, "--defer-latency" in args
    args = [a for a in args if a not in flags]
    if len(args) != 1:
        print("usage: python -m bench.run.execute RUN_DIR [--take-over] [--defer-latency]", file=sys.stderr)
        return 2
    try:
        folder = RunDir(args[0])
        result = execute(folder.read_config(), args[0], take_over=take_over, launched=True, defer_latency=defer)
    except (BenchError, OSError) as err:
        problem = write_problem(err)
        if problem is None and not isinstance(err, BenchError):
            raise
        print(f"bench: {problem}" if problem else one_line(err), file=sys.stderr)
        return 2
    print(json.dumps(result.summary(), default=str), flush=True)
    return EXIT_BUSY if result.outcome is Outcome.BUSY else 0


if __name__ == "__main__":
    raise SystemExit(main())

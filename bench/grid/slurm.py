"""The SLURM launcher: a grid's runs as one submitit job array; each task calls ``bench.run.execute``.

    jobs = submit_slurm(grid.runs, grid.launch, grid.sweep_dir, name=grid.name)

Each task runs ``Job(run_dir, cwd)()``: it reads ``run_dir/config.yaml`` (stored at submission by
``RunDir.write_config``, the only copy) and executes it (``bench.run.execute``: reuse check, claim under the
SLURM job id, train, record, release). On preemption or a time limit submitit calls ``Job.checkpoint()``, which
returns a fresh ``Job`` as a ``DelayedSubmission``: the task is requeued, keeps its claim, and resumes from
``run_dir/checkpoint.pt``.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.config import LaunchConfig
from bench.errors import BenchError
from bench.grid import manifest as manifest_file
from bench.grid.spec import Run
from bench.progress import configure_logging
from bench.run.liveness import slurm_reachable
from bench.run.rundir import RunDir


class LaunchError(BenchError, RuntimeError):
    """The launcher cannot be used (e.g. no ``sbatch`` on PATH) or a submission failed."""


# A job reaching its time limit is requeued only if submitit's USR2 handler is in place when the signal comes.
SIGNAL_DELAY_S = 90  # submitit's default: sbatch --signal=USR2@90
SIGNAL_RESOLUTION_S = 60  # sbatch --signal: "the signal may be sent up to 60 seconds earlier than specified"
STARTUP_MARGIN_S = 90  # from the job's start to the handler (python start-up, unpickling the Job)
MIN_REQUEUE_TIME_MIN = math.ceil((SIGNAL_DELAY_S + SIGNAL_RESOLUTION_S + STARTUP_MARGIN_S) / 60)


def check_time_min(launch: LaunchConfig) -> None:
    """Refuse a ``launch.time_min`` so short that the time-limit signal can come before the job can catch it
    (the job then dies of "User defined signal 2" instead of being requeued)."""
    if launch.time_min < MIN_REQUEUE_TIME_MIN:
        raise LaunchError(
            f"launch.time_min={launch.time_min} is below {MIN_REQUEUE_TIME_MIN} minutes: SLURM sends "
            f"the time-limit signal {SIGNAL_DELAY_S}-{SIGNAL_DELAY_S + SIGNAL_RESOLUTION_S} s before "
            f"the limit, and a job needs up to {STARTUP_MARGIN_S} s to catch it, so it would be "
            f"killed instead of requeued; give launch.time_min={MIN_REQUEUE_TIME_MIN} or more"
        )


class Job:
    """One run as a picklable callable: ``Job(run_dir, cwd)()`` executes it and returns a summary dict.

    It holds only paths, so the pickle submitit ships holds no tensors or modules; heavy imports happen
    inside ``__call__``.
    """

    def __init__(self, run_dir: str, cwd: str | None = None, take_over: bool = False) -> None:
        self.cwd = cwd or os.getcwd()
        self.run_dir = str(Path(self.cwd, run_dir))
        self.take_over = take_over
        self._preempted = False

    def __call__(self) -> dict[str, Any]:
        previous = os.getcwd()
        os.chdir(self.cwd)  # relative paths in the config (output_root, data.root) mean the submit dir
        try:
            _limit_threads_to_allocation()
            # the job's process trains (torch); the submitting process must not import it (start-up time)
            from bench.run.execute import execute

            configure_logging()  # status lines into the job's log

            self._preempted = False
            result = execute(
                RunDir(self.run_dir).read_config(),
                self.run_dir,
                take_over=self.take_over,
                preempted=lambda: self._preempted,
                launched=True,
            )
            return result.summary()
        finally:
            os.chdir(previous)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on preemption / time limit: requeue a fresh Job; the trainer resumes from
        ``run_dir/checkpoint.pt`` (it saves one when signalled)."""
        import submitit

        self._preempted = True
        return submitit.helpers.DelayedSubmission(type(self)(self.run_dir, self.cwd, self.take_over))


def _limit_threads_to_allocation() -> None:
    """Inside SLURM, use as many intra-op threads as CPUs were allocated (torch would take every core of
    the node; oversubscribed CPU threads slow a small model down by 10x)."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if cpus.isdigit() and "OMP_NUM_THREADS" not in os.environ and os.environ.get("BENCH_LAUNCHER") != "local":
        os.environ["OMP_NUM_THREADS"] = cpus
        import torch

        torch.set_num_threads(int(cpus))


def slurm_parameters(launch: LaunchConfig, name: str) -> dict[str, Any]:
    """submitit ``update_parameters`` keywords for a ``LaunchConfig`` (empty strings are left out).

    One task per GPU (``tasks_per_node = gpus_per_node``) unless ``launch.tasks_per_node`` says otherwise (e.g.
    several CPU ranks with gloo); ``bench.distributed`` builds DDP from the SLURM environment of each task.
    """
    params: dict[str, Any] = {
        "name": name,
        "timeout_min": launch.time_min,
        "nodes": launch.nodes,
        "tasks_per_node": launch.tasks_per_node or max(1, launch.gpus_per_node),
        "cpus_per_task": launch.cpus_per_task,
        "mem_gb": launch.mem_gb,
        "slurm_array_parallelism": launch.array_parallelism,
    }
    if launch.gpus_per_node:
        params["gpus_per_node"] = launch.gpus_per_node
    for key, value in (
        ("slurm_partition", launch.partition),
        ("slurm_account", launch.account),
        ("slurm_qos", launch.qos),
        ("slurm_constraint", launch.constraint),
    ):
        if value:
            params[key] = value
    if launch.sbatch_extra:
        params["slurm_additional_parameters"] = dict(launch.sbatch_extra)
    return params


def _submit_array(executor: Any, jobs: list[Job]) -> list[Any]:
    # sbatch exports this environment to the job: make `bench` importable there even when it is not installed
    repo_root = str(Path(__file__).resolve().parents[2])
    saved_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([repo_root] + ([saved_path] if saved_path else []))
    try:
        with executor.batch():
            return [executor.submit(job) for job in jobs]
    except Exception as err:  # submitit raises on sbatch errors (bad partition, resources...)
        raise LaunchError(f"SLURM submission failed: {err}") from err
    finally:
        if saved_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_path


def _files_below(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.is_dir() else set()


def _remove_new(configs: list[Path], before: set[Path], folder: Path) -> None:
    """Undo a refused submission: the ``config.yaml`` files it wrote (their run folders too when left empty) and
    the files submitit made under ``folder``."""
    for config in configs:
        config.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            config.parent.rmdir()  # only when empty: a folder holding anything else stays
    for path in sorted(_files_below(folder) - before, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            path.rmdir() if path.is_dir() else path.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def submit_slurm(
    runs: Sequence[Run],
    launch: LaunchConfig,
    sweep_dir: Path,
    name: str,
    manifest: Path | None = None,
    take_over: bool = False,
) -> list[Any]:
    """Submit ``runs`` as one SLURM job array (submitit ``executor.batch()``); returns the submitit jobs.

    The runs come from ``bench.grid.status`` (launchable: the reuse decision is made); each run's config is stored
    (``config.yaml``, the only copy the job reads) before anything is submitted.
    Does not wait: job ids go to the sweep manifest, and ``bench status`` reads run dirs, claims,
    ``error.json`` and ``sacct``. Logs land in ``<sweep_dir>/slurm/<job>/<job>_0_log.{out,err}`` (with
    ``launch.folder`` set: ``launch.folder/<name>/<job>/...``). A submission that sbatch refuses leaves nothing:
    the configs it wrote and submitit's files are removed again (``LaunchError``).
    """
    check_time_min(launch)
    ok, why = slurm_reachable()
    if not ok:
        raise LaunchError(f"cannot submit to SLURM: {why}")
    import submitit

    folder = Path(launch.folder) / name if launch.folder else Path(sweep_dir) / "slurm"
    before = _files_below(folder)
    new = [not RunDir(run.run_dir).has_config() for run in runs]
    written = [RunDir(run.run_dir).write_config(run.config) for run in runs]
    written = [path for path, fresh in zip(written, new) if fresh]
    manifest = manifest or Path(sweep_dir) / "manifest.jsonl"
    # many timeouts allowed: long runs chain through time limits, resuming from checkpoint.pt each time
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm", slurm_max_num_timeout=20)
    executor.update_parameters(**slurm_parameters(launch, f"bench-{name}"))
    cwd = os.getcwd()
    try:
        jobs = _submit_array(executor, [Job(str(run.run_dir), cwd, take_over) for run in runs])
    except LaunchError:  # a refused sbatch leaves nothing: the configs and job files it made go again
        _remove_new(written, before, folder)
        raise
    for run, job in zip(runs, jobs):
        manifest_file.append(
            manifest,
            {
                "event": "submit",
                "run_id": run.run_id,
                "run_dir": str(run.run_dir),
                "launcher": "slurm",
                "job_id": str(job.job_id),
                "host": socket.gethostname(),
                "log": str(job.paths.stdout),
                "time": time.time(),
            },
        )
    return jobs

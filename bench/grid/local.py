"""The local launcher: each run in its own process running ``bench.run.execute RUN_DIR``, N at a time.

    results = run_local(grid.runs, max_parallel=2, sweep_dir=grid.sweep_dir)
    results = run_local(queue, 2, first.sweep_dir, homes={run.run_id: grid.sweep_dir, ...})  # several grids

The processes are forked from a fork server that imported torch and the suite once (``bench.grid.forked``:
imports are paid once per sweep, not once per run), or are subprocesses where that is not available.
``defer_latency`` asks each run to leave its latency to the caller (``bench.run.latency_run.share_latency``:
measured once per architecture after every run has finished, never beside a training run). ``homes`` gives
each run the bookkeeping folder (logs, manifest) of its own grid when one queue holds the runs of several grids
(``make demo``); the queue runs in the order given.

Before a run starts, ``RunDir.check_reuse`` checks its folder and ``RunDir.write_config`` stores its config
(``RUN_DIR/config.yaml``, the only copy); the subprocess executes that file (``bench.run.execute``). Logs go to
``sweep_dir/logs/<run_id>.log``; the manifest gets a ``submit`` and an ``end`` line per run.

Progress: an overall bar (runs finished of N, with an ETA) on a terminal. Elsewhere (a log file, ``nohup``,
SLURM, CI) one line per run state change ("run k of N: started ...", "...: done in 12.3s") and, every
``BENCH_STATUS_EVERY`` seconds (30), a summary even while nothing changes: ``sweep 3/9 done (33%), elapsed
5:02, ETA 10:04, running=2, queued=4`` (``bench.progress``; the ETA extrapolates the rate at which runs
have finished so far).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.constants import EXIT_BUSY
from bench.grid import manifest as manifest_file
from bench.grid.forked import EXECUTE, LATENCY, RunStarter
from bench.grid.spec import Run, format_varied, manifest_path
from bench.progress import Progress
from bench.run.identity import RunIdentity
from bench.run.rundir import RunDir, RunDirError

EXIT_REFUSED = 2  # the run dir cannot take the run (its config.yaml could not be written): not started
log = logging.getLogger("bench.grid.local")


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a local sweep: the running children were sent SIGTERM and have ended (a child in its
    training loop saves a checkpoint first, bench.engine.signals)."""

    def __init__(self, stopped: int, not_started: int) -> None:
        super().__init__(
            f"stopped {stopped} running run{'s' * (stopped != 1)} (a run in training saved its "
            f"checkpoint), {not_started} not started"
        )
        self.stopped, self.not_started = stopped, not_started


@dataclass(frozen=True)
class LocalResult:
    """How one local run ended: returncode 0 = done, EXIT_BUSY = owned by another process."""

    run_id: str
    returncode: int
    wall_time_s: float
    log: Path
    last_line: str
    user_error: tuple[str, str] | None = None  # (class, message) of a user error (BenchError) it failed with


@dataclass
class _Active:
    run: Run
    proc: Any  # subprocess.Popen or bench.grid.forked.ForkedRun
    log: Path
    start: float
    manifest: Path


def _last_error_line(run_dir: Path, log: Path) -> str:
    err = RunDir(run_dir).read_error()
    if err:
        return str(err.get("last_line", ""))
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _child_env(max_parallel: int) -> dict[str, str]:
    env = {**os.environ, "BENCH_LAUNCHER": "local"}
    if "OMP_NUM_THREADS" not in env and max_parallel > 1:
        # share the cores: N runs each taking every core slow each other down several-fold
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max_parallel))
    return env


def _start(
    run: Run, sweep_dir: Path, env: dict[str, str], flags: list[str], starter: RunStarter, manifest: Path | None
) -> _Active | LocalResult:
    """Store the run's config (the only copy: the executor reads it) and start its process. The reuse decision
    was made by ``bench.grid.status`` (only launchable runs come here); a folder that cannot be written is not
    started."""
    log_path = sweep_dir / "logs" / f"{run.run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    manifest = manifest or manifest_path(sweep_dir)
    try:
        RunDir(run.run_dir).write_config(run.config)
    except (RunDirError, OSError) as err:
        log_path.write_text(f"{type(err).__name__}: {err}\n")
        return LocalResult(run.run_id, EXIT_REFUSED, 0.0, log_path, f"{type(err).__name__}: {err}")
    log_path.write_text("")
    proc = starter.start(EXECUTE, [str(run.run_dir), *flags], log_path, env)
    manifest_file.append(
        manifest,
        {
            "event": "submit",
            "run_id": run.run_id,
            "run_dir": str(run.run_dir),
            "launcher": "local",
            "job_id": f"local-{proc.pid}",
            "host": socket.gethostname(),
            "log": str(log_path),
            "time": time.time(),
        },
    )
    return _Active(run, proc, log_path, time.time(), manifest)


def _user_error(run_dir: Path) -> tuple[str, str] | None:
    """(class, message) of the user error (``BenchError``) the run's ``error.json`` records, else None."""
    err = RunDir(run_dir).read_error() or {}
    return (str(err.get("error")), str(err.get("message"))) if err.get("user_error") else None


def _finish(active: _Active, code: int) -> LocalResult:
    last = "" if code == 0 else _last_error_line(active.run.run_dir, active.log)
    user_error = None if code in (0, EXIT_BUSY) else _user_error(active.run.run_dir)
    manifest_file.append(
        active.manifest,
        {
            "event": "end",
            "run_id": active.run.run_id,
            "job_id": f"local-{active.proc.pid}",
            "returncode": code,
            "reason": last,
            "time": time.time(),
        },
    )
    return LocalResult(active.run.run_id, code, time.time() - active.start, active.log, last, user_error)


STOP_AFTER_SAME_ERROR = 2  # the first runs that failed alike: the next ones would fail the same way


def same_user_error(results: Sequence[LocalResult]) -> str:
    """The last line of the user error every run so far failed with, when at least ``STOP_AFTER_SAME_ERROR``
    ended and all alike (bad input or files: a missing dataset, a malformed file...); "" otherwise."""
    errors = {r.user_error for r in results}
    if len(results) < STOP_AFTER_SAME_ERROR or len(errors) != 1 or None in errors:
        return ""
    return results[-1].last_line


def _end_line(result: LocalResult) -> str:
    word = {0: "done", EXIT_BUSY: "skipped (owned by another process)"}.get(
        result.returncode, f"FAILED ({result.returncode})"
    )
    tail = f": {result.last_line}" if result.last_line else ""
    return f"{result.run_id}: {word} in {result.wall_time_s:.1f}s{tail}"


def _describe(run: Run) -> str:
    """``"model.memory_length=2 seed 0"``: what this run varies in its grid."""
    return " ".join(filter(None, [format_varied(run.varied), f"seed {run.seed}"]))


def _stop_all(active: dict[str, _Active]) -> None:
    """Ctrl-C: terminate the children (the trainer checkpoints on SIGTERM) and wait for them."""
    for item in active.values():
        item.proc.terminate()
    for item in active.values():
        try:
            item.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            item.proc.kill()


def _starter(
    sweep_dir: Path, manifest: Path | None, homes: Mapping[str, Path], env: dict[str, str], flags: list[str]
) -> Callable[[Run], _Active | LocalResult]:
    """``start(run)``: ``_start`` with the run's bookkeeping folder (its home, else ``sweep_dir`` and
    ``manifest``), the environment and the executor's flags."""
    starter = RunStarter()

    def start(run: Run) -> _Active | LocalResult:
        home = Path(homes.get(run.run_id, sweep_dir))
        return _start(run, home, env, flags, starter, manifest if home == sweep_dir else None)

    return start


def _started_text(started: _Active) -> str:
    return f"{started.run.run_id} [{_describe(started.run)}] (pid {started.proc.pid}, log {started.log.name})"


def _stop_if_alike(results: list[LocalResult], queue: list[Run], say: Any) -> None:
    """Empty ``queue`` (and say so) when the runs so far all failed with the same user error."""
    alike = same_user_error(results) if queue else ""
    if alike:
        say(
            f"stopping: the first {len(results)} runs all failed with the same error ({alike}); the other "
            f"{len(queue)} run{'s' * (len(queue) != 1)} are not started (fix it, then sweep again)"
        )
        queue.clear()


def run_local(
    runs: Sequence[Run],
    max_parallel: int,
    sweep_dir: Path,
    manifest: Path | None = None,
    echo: bool = True,
    take_over: bool = False,
    defer_latency: bool = False,
    homes: Mapping[str, Path] | None = None,
) -> list[LocalResult]:
    """Run each ``Run`` in its own process, ``max_parallel`` at once, in order; a failing run stops no other,
    except that when the first runs all fail with the same user error (``same_user_error``) no further run is
    started (those running finish).

    Ctrl-C sends SIGTERM to the children, waits for them and raises ``SweepInterrupted``. Unless
    ``OMP_NUM_THREADS`` is set, parallel runs split the CPU cores between them. ``take_over`` passes
    ``--take-over`` (claims whose owner cannot be checked), ``defer_latency`` ``--defer-latency`` (the caller
    measures latency afterwards). ``homes``: run id -> bookkeeping folder of the run's grid (default
    ``sweep_dir``, whose manifest is ``manifest``).
    """
    sweep_dir = Path(sweep_dir)
    queue, total = list(runs), len(runs)
    flags = ["--take-over"] * take_over + ["--defer-latency"] * defer_latency
    start = _starter(sweep_dir, manifest, homes or {}, _child_env(max_parallel), flags)
    active: dict[str, _Active] = {}
    results: list[LocalResult] = []
    bar = Progress(total, f"sweep {sweep_dir.name}", enabled=echo, unit="run", done="done")
    say = bar.write if echo else log.debug

    def ended(result: LocalResult) -> None:
        results.append(result)
        say(_end_line(result))
        bar.update(1)
        _stop_if_alike(results, queue, say)

    try:
        while queue or active:
            while queue and len(active) < max(1, max_parallel):
                started = start(queue.pop(0))
                if isinstance(started, LocalResult):
                    ended(started)
                    continue
                active[started.run.run_id] = started
                say(f"run {total - len(queue)} of {total}: started {_started_text(started)}")
            for rid, item in list(active.items()):
                code = item.proc.poll()
                if code is not None:
                    del active[rid]
                    ended(_finish(item, code))
            bar.tick(running=len(active), queued=len(queue))
            time.sleep(0.1)
    except KeyboardInterrupt:
        _stop_all(active)
        raise SweepInterrupted(len(active), len(queue)) from None
    except BaseException:
        _stop_all(active)
        raise
    finally:
        bar.close()
    return results


def share_latency_after(runs: Sequence[Run], sweep_dir: Path, echo: bool = True) -> int:
    """Latency once per architecture of the finished ``runs`` (``bench.run.latency_run.share_latency``), in a
    process of its own started when no run trains any more; its lines are echoed. Returns its exit status."""
    log_path = Path(sweep_dir) / "logs" / "latency.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    proc = RunStarter().start(LATENCY, [str(run.run_dir) for run in runs], log_path, _child_env(1))
    try:
        code = proc.wait()
    except BaseException:
        _stop_all({"latency": _Active(runs[0], proc, log_path, time.time(), manifest_path(sweep_dir))})
        raise
    say = print if echo else log.debug
    for line in log_path.read_text(errors="replace").splitlines():
        if line.strip() and " INFO bench.progress: " not in line:
            say(line)
    return code


def estimated_cost(run: Run) -> float:
    """A run's training work in frame-pixels: iterations x batch x frames per clip (the T + 1 the model reads)
    x crop pixels; orders a queue (``longest_first``), not a prediction of seconds."""
    cfg = run.config
    frames = 1 + int(RunIdentity.of(cfg).model_args.get("memory_length", 0) or 0)
    crop = int(cfg.data.crop_size[0]) * int(cfg.data.crop_size[1])
    return float(cfg.train.iters) * cfg.train.batch_size * frames * crop


def longest_first(runs: Sequence[Run]) -> list[Run]:
    """``runs`` with the most work first (ties keep their order): with N at a time, the last runs to start are
    short ones, so no core idles long at the end while one long run finishes."""
    return sorted(runs, key=estimated_cost, reverse=True)

"""The local launcher: each run in its own ``python -m bench.run.execute RUN_DIR`` subprocess, N at a time.

    results = run_local(grid.runs, max_parallel=2, sweep_dir=grid.sweep_dir)

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
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.constants import EXIT_BUSY
from bench.grid import manifest as manifest_file
from bench.grid.spec import Run, format_varied
from bench.progress import Progress
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
    proc: subprocess.Popen
    log: Any
    start: float


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


def _start(run: Run, sweep_dir: Path, manifest: Path, env: dict[str, str], take_over: bool) -> _Active | LocalResult:
    """Store the run's config (the only copy: the executor reads it) and start its subprocess. The reuse decision
    was made by ``bench.grid.status`` (only launchable runs come here); a folder that cannot be written is not
    started."""
    log_path = sweep_dir / "logs" / f"{run.run_id}.log"
    try:
        RunDir(run.run_dir).write_config(run.config)
    except (RunDirError, OSError) as err:
        log_path.write_text(f"{type(err).__name__}: {err}\n")
        return LocalResult(run.run_id, EXIT_REFUSED, 0.0, log_path, f"{type(err).__name__}: {err}")
    log = open(log_path, "w")
    command = [sys.executable, "-m", "bench.run.execute", str(run.run_dir)] + (["--take-over"] if take_over else [])
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd(), env=env)
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
    return _Active(run, proc, log, time.time())


def _user_error(run_dir: Path) -> tuple[str, str] | None:
    """(class, message) of the user error (``BenchError``) the run's ``error.json`` records, else None."""
    err = RunDir(run_dir).read_error() or {}
    return (str(err.get("error")), str(err.get("message"))) if err.get("user_error") else None


def _finish(active: _Active, code: int, manifest: Path) -> LocalResult:
    active.log.close()
    log_path = Path(active.log.name)
    last = "" if code == 0 else _last_error_line(active.run.run_dir, log_path)
    user_error = None if code in (0, EXIT_BUSY) else _user_error(active.run.run_dir)
    manifest_file.append(
        manifest,
        {
            "event": "end",
            "run_id": active.run.run_id,
            "job_id": f"local-{active.proc.pid}",
            "returncode": code,
            "reason": last,
            "time": time.time(),
        },
    )
    return LocalResult(active.run.run_id, code, time.time() - active.start, log_path, last, user_error)


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
        item.log.close()


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
) -> list[LocalResult]:
    """Run each ``Run`` in its own subprocess, ``max_parallel`` at once; a failing run does not stop the others,
    except that when the first runs all fail with the same user error (``same_user_error``) no further run is
    started (those running finish).

    Ctrl-C sends SIGTERM to the children, waits for them and raises ``SweepInterrupted``. Unless
    ``OMP_NUM_THREADS`` is set, parallel runs split the CPU cores between them. ``take_over`` passes
    ``--take-over`` (claims whose owner cannot be checked).
    """
    sweep_dir = Path(sweep_dir)
    manifest = manifest or sweep_dir / "manifest.jsonl"
    (sweep_dir / "logs").mkdir(parents=True, exist_ok=True)
    queue, total = list(runs), len(runs)
    env = _child_env(max_parallel)
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
                started = _start(queue.pop(0), sweep_dir, manifest, env, take_over)
                if isinstance(started, LocalResult):
                    ended(started)
                    continue
                active[started.run.run_id] = started
                say(
                    f"run {total - len(queue)} of {total}: started {started.run.run_id} [{_describe(started.run)}] "
                    f"(pid {started.proc.pid}, log {started.log.name})"
                )
            for rid, item in list(active.items()):
                code = item.proc.poll()
                if code is not None:
                    del active[rid]
                    ended(_finish(item, code, manifest))
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

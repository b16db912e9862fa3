"""The ``bench sweep`` and ``bench status`` commands.

    bench sweep ablations/synthetic_memory_length.yaml --dry-run          # run table, nothing submitted
    bench sweep ablations/synthetic_memory_length.yaml --launcher local --max-parallel 2
    bench sweep ablations/cityscapes_memory_length.yaml --launcher slurm train.iters=40000
    bench sweep SPEC --take-over      # also launch runs whose owner cannot be checked (state "unknown")
    bench sweep SPEC --check          # every dataset folder, split list, weights file and device the runs need
    bench status ablations/synthetic_memory_length.yaml                   # the state of every run

Spec files and their expansion: ``bench.grid.spec``; states: ``bench.grid.status``; launchers:
``bench.grid.local`` and ``bench.grid.slurm``. Only pending and failed runs are launched (and unknown ones
with ``--take-over``); done, running, queued and corrupt runs are left alone. A stale run (its record made by
other code) stops the sweep before anything starts, with the way out: ``--rerun-stale`` moves its folder
aside (``<run>.stale-<n>``) and trains it again, ``--accept-stale`` keeps its record as it is.

    bench sweep SPEC --rerun-stale     # after editing a model: train the runs it made again
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.atomic import ensure_writable
from bench.constants import EXIT_BUSY
from bench.grid import local, manifest, slurm
from bench.grid.spec import Grid, SweepError, build_grid, model_signatures
from bench.grid.status import LAUNCHABLE, RunState, RunStatus, counts, format_table, run_statuses
from bench.run.arguments import model_plugins
from bench.run.identity import RunIdentity
from bench.run.liveness import slurm_reachable
from bench.run.preflight import Preflight, check
from bench.run.rundir import RunDir

# submitit treats every USR2 as a time-out (at most 20 requeues) when the time limit is this short
MIN_PREEMPTIBLE_TIME_MIN = 11


def _launch_overrides(launcher: str | None, max_parallel: int | None) -> dict[str, Any]:
    launch: dict[str, Any] = {"launcher": launcher}
    if max_parallel is not None:
        if max_parallel < 1:
            raise SweepError(f"--max-parallel must be >= 1, got {max_parallel}")
        launch["max_parallel"] = max_parallel
        launch["array_parallelism"] = max_parallel
    return launch


STALE_POLICIES: tuple[str, ...] = ("stop", "accept", "rerun")


def _todo(statuses: list[RunStatus], take_over: bool, stale: str) -> list[Any]:
    launchable = LAUNCHABLE | ({RunState.UNKNOWN} if take_over else set())
    todo = [s.run for s in statuses if s.state in launchable]
    if stale == "rerun":
        for s in statuses:
            if s.state is RunState.STALE:
                print(f"{s.run.run_id}: {s.reason}; kept as {RunDir(s.run.run_dir).move_aside()}, training it again")
                todo.append(s.run)
    return todo


def _stale_stop(statuses: list[RunStatus], spec: str) -> str:
    """The message that stops a sweep with stale runs ("" when there are none)."""
    stale = [s for s in statuses if s.state is RunState.STALE]
    if not stale:
        return ""
    return (
        f"{len(stale)} run(s) were made by code that has changed since ({stale[0].reason}, ...); nothing was "
        f"started. Train them again with `bench sweep {spec} --rerun-stale` (their folders are kept as "
        f"<run>.stale-<n>), or use their records as they are with --accept-stale"
    )


def _clean_leftovers(statuses: list[RunStatus]) -> None:
    """Remove the temporary files that killed runs left (a checkpoint ``.tmp`` of tens of MB) in every run folder
    nobody is at work on (``RunDir.clean_leftovers``: only under the run's claim, only a gone writer's files)."""
    removed = [
        tmp
        for s in statuses
        if s.state not in (RunState.RUNNING, RunState.QUEUED, RunState.UNKNOWN, RunState.CORRUPT)
        and Path(s.run.run_dir).is_dir()
        for tmp in RunDir(s.run.run_dir).clean_leftovers()
    ]
    if removed:
        print(f"removed {len(removed)} temporary file(s) that killed runs left behind (e.g. {removed[0]})")


def _check_writable(grid: Grid, todo: list[Any]) -> None:
    """The bookkeeping folder and every run's parent folder take files (a full disk or a read-only results
    folder fails here, once, before anything is launched)."""
    for folder in dict.fromkeys([grid.sweep_dir] + [Path(run.run_dir).parent for run in todo]):
        ensure_writable(folder)


def _prepare(grid: Grid, todo: list[Any]) -> None:
    """Once the launcher is known to work (so a refused sweep leaves no trace): check the folders take files,
    and record the models' argument names."""
    _check_writable(grid, todo)
    record_signatures(grid)


def model_plugins_of(grid: Grid) -> dict[str, list[str]]:
    """The plugins each plugin model of ``grid`` depends on (``bench.run.arguments.model_plugins``)."""
    found: dict[str, list[str]] = {}
    for run in grid.runs:
        plugins = model_plugins(run.config)
        if plugins:
            found.setdefault(run.config.model.name, list(plugins))
    return found


def record_signatures(grid: Grid) -> None:
    """The models' argument names and plugins into the manifest, so `bench status` and `bench report` name these
    runs even where a plugin is not importable."""
    manifest.append(
        grid.manifest,
        {
            "event": "signatures",
            "models": model_signatures(grid),
            "plugins": model_plugins_of(grid),
            "time": time.time(),
        },
    )


def _submit(grid: Grid, todo: list[Any], spec: str, take_over: bool) -> int:
    slurm.check_time_min(grid.launch)
    ok, why = slurm_reachable()
    if not ok:
        raise slurm.LaunchError(f"cannot use the slurm launcher: {why}")
    _check_writable(grid, todo)
    if grid.launch.time_min < MIN_PREEMPTIBLE_TIME_MIN:
        print(
            f"warning: launch.time_min={grid.launch.time_min} < {MIN_PREEMPTIBLE_TIME_MIN}: submitit treats every "
            f"USR2 as a time-out (at most 20 requeues) instead of a preemption",
            file=sys.stderr,
        )
    jobs = slurm.submit_slurm(todo, grid.launch, grid.sweep_dir, grid.name, grid.manifest, take_over=take_over)
    record_signatures(grid)  # after sbatch accepted the jobs: a refused submission leaves no trace
    array = str(jobs[0].job_id).split("_")[0] if jobs else "?"
    print(f"submitted {len(jobs)} runs as SLURM array {array}; follow with: bench status {spec}")
    return 0


def _run_locally(grid: Grid, todo: list[Any], take_over: bool) -> int:
    _prepare(grid, todo)
    print(f"running {len(todo)} runs locally, {grid.launch.max_parallel} at a time")
    start = time.time()
    results = local.run_local(
        todo, grid.launch.max_parallel, grid.sweep_dir, grid.manifest, take_over=take_over, defer_latency=True
    )
    failed = [r for r in results if r.returncode != 0]
    print(
        f"\nsweep {grid.name} finished in {time.time() - start:.1f}s: "
        f"{len(results) - len(failed)} ok, {len(failed)} not ok"
    )
    if grid.launch.latency:  # once per architecture, now that no run trains beside the measurement
        local.share_latency_after(grid.runs, grid.sweep_dir)
    final = run_statuses(grid.runs, grid.manifest)
    print(format_table(final))
    not_ok = [r for r in failed if r.returncode != EXIT_BUSY]  # a busy run is someone else's, not a failure
    return 1 if not_ok or any(s.state is RunState.FAILED for s in final) else 0


def sweep_command(
    spec: str,
    launcher: str | None = None,
    dry_run: bool = False,
    max_parallel: int | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    take_over: bool = False,
    stale: str = "stop",
    check_only: bool = False,
    preflight: bool = True,
) -> int:
    """``bench sweep``: validate everything, then print the table (dry run), check what the runs need
    (``check_only``) or launch the runs to do after the preflight.

    Returns 0 when every launched run succeeded (local) or was submitted (SLURM), 1 otherwise, 2 when the
    launcher cannot be used or the preflight finds something missing.
    """
    grid = build_grid(spec, overrides, _launch_overrides(launcher, max_parallel))
    return sweep_grid(grid, spec, dry_run, take_over, stale, check_only, preflight)


def _preflight(grid: Grid, runs: list[Any], deep: bool) -> Preflight:
    """The needs of ``runs`` checked once each (``bench.run.preflight``); ``deep``: also every dataset index, the
    backbone caches and the local devices (``bench.run.preflight_deep``, which imports torch)."""
    idents = [RunIdentity.of(run.config) for run in runs]
    found = check(idents, grid.launch.launcher, grid.launch.gpus_per_node)
    if not deep:
        return found
    from bench.run.preflight_deep import deep_check  # torch: only where files are checked (start-up time)

    return deep_check(found, idents, grid.launch.launcher)


def _candidates(statuses: list[RunStatus], take_over: bool, stale: str) -> list[Any]:
    """The runs a sweep would launch (``_todo`` without its side effects)."""
    launchable = LAUNCHABLE | ({RunState.UNKNOWN} if take_over else set())
    return [s.run for s in statuses if s.state in launchable or (stale == "rerun" and s.state is RunState.STALE)]


def _preflight_says(found: Preflight, spec: str, mode: str) -> int:
    """Print the preflight for ``mode`` ("check": every need; "dry-run" / "launch": what is missing); 0 if ok."""
    if mode == "check":
        print(f"preflight of {len(found.findings)} distinct needs{' (all there)' if found.ok else ''}:")
        print(found.text(every=True) or "  nothing to read: no dataset folder or weights file")
        return 0 if found.ok else 2
    if found.ok:
        return 0
    missing = len(found.missing) + len(found.problems)
    how = "the sweep would stop here" if mode == "dry-run" else "nothing was started"
    print(
        f"bench: preflight: {missing} missing ({how}; `bench sweep {spec} --check` lists every need):", file=sys.stderr
    )
    print(found.text(), file=sys.stderr)
    return 2


def sweep_grid(
    grid: Grid,
    spec: str,
    dry_run: bool = False,
    take_over: bool = False,
    stale: str = "stop",
    check_only: bool = False,
    preflight: bool = True,
) -> int:
    """``bench sweep`` on an expanded grid (``spec``: its file, for the follow-up command); see ``sweep_command``.

    ``stale``: what to do with runs whose record other code made: "stop" (exit 2 with the way out), "accept"
    (leave them), "rerun" (move their folders aside and train them again). Before anything starts, the preflight
    checks what the runs to launch need (``bench.run.preflight``: data, weights, devices) and stops with each
    missing piece (exit 2); ``check_only`` (``--check``) prints every need and launches nothing; a dry run checks
    the paths (not the files inside); ``preflight=False`` (``--no-check``) skips it."""
    if stale not in STALE_POLICIES:
        raise SweepError(f"unknown stale policy {stale!r}; choose one of {', '.join(STALE_POLICIES)}")
    statuses = run_statuses(grid.runs, grid.manifest)
    print(
        f"sweep {grid.name}: {len(grid.runs)} runs ({counts(statuses)}); launcher {grid.launch.launcher}; "
        f"bookkeeping in {grid.sweep_dir}"
    )
    print(format_table(statuses))
    if dry_run or check_only:
        mode = "check" if check_only else "dry-run"
        return _preflight_says(_preflight(grid, _candidates(statuses, take_over, stale), check_only), spec, mode)
    _clean_leftovers(statuses)
    stop = _stale_stop(statuses, spec) if stale == "stop" else ""
    if stop:
        print(f"bench: {stop}", file=sys.stderr)
        return 2
    if preflight and _preflight_says(_preflight(grid, _candidates(statuses, take_over, stale), True), spec, "launch"):
        return 2
    todo = _todo(statuses, take_over, stale)
    if not todo:
        print("nothing to do: every run is done, running, queued, corrupt or unknown (see the reasons)")
        return 0
    try:
        if grid.launch.launcher == "slurm":
            return _submit(grid, todo, spec, take_over)
        return _run_locally(grid, todo, take_over)
    except slurm.LaunchError as err:
        print(f"bench: launch error: {err}", file=sys.stderr)
        return 2


def sweep_grids_locally(grids: Sequence[Grid], stale: str = "rerun", max_parallel: int | None = None) -> int:
    """Several grids in one local queue (``make demo``): the runs to do of every grid, each run once (its home is
    the first grid that lists it), longest first (``local.longest_first``), ``max_parallel`` at a time (default:
    the first grid's); then latency once per architecture when any grid asks for it. Returns 1 when a run
    failed, 2 when a stale run stops the queue (``stale="stop"``), else 0."""
    queue: dict[str, Any] = {}
    homes: dict[str, Path] = {}
    for grid in grids:  # one grid after another: a stale run shared by two grids is moved aside once
        statuses = run_statuses(grid.runs, grid.manifest)
        print(f"sweep {grid.name}: {len(grid.runs)} runs ({counts(statuses)}); bookkeeping in {grid.sweep_dir}")
        stop = _stale_stop(statuses, grid.spec.path.name) if stale == "stop" else ""
        if stop:
            print(f"bench: {stop}", file=sys.stderr)
            return 2
        todo = [run for run in _todo(statuses, False, stale) if run.run_id not in queue]
        if todo:
            _prepare(grid, todo)
        for run in todo:
            queue[run.run_id], homes[run.run_id] = run, grid.sweep_dir
    parallel = max_parallel or grids[0].launch.max_parallel
    ordered = local.longest_first(list(queue.values()))
    print(f"\nrunning {len(ordered)} runs of {len(grids)} grids in one queue, longest first, {parallel} at a time")
    start = time.time()
    results = local.run_local(ordered, parallel, grids[0].sweep_dir, defer_latency=True, homes=homes) if ordered else []
    not_ok = [r for r in results if r.returncode not in (0, EXIT_BUSY)]  # a busy run is someone else's
    print(f"\nqueue finished in {time.time() - start:.1f}s: {len(results) - len(not_ok)} ok, {len(not_ok)} not ok")
    if any(grid.launch.latency for grid in grids):
        runs = {run.run_id: run for grid in grids for run in grid.runs}
        local.share_latency_after(list(runs.values()), grids[0].sweep_dir)
    failed = any(s.state is RunState.FAILED for grid in grids for s in run_statuses(grid.runs, grid.manifest))
    return 1 if not_ok or failed else 0


def status_command(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> int:
    """``bench status``: print every run's state and reason; returns 0.

    Pass the same dotted overrides as to ``bench sweep`` (they change the run ids). A plugin that cannot be
    imported here is described by the argument names the last sweep recorded (``build_grid(recorded=True)``).
    """
    grid = build_grid(spec, overrides, recorded=True)
    statuses = run_statuses(grid.runs, grid.manifest)
    print(f"sweep {grid.name}: {len(grid.runs)} runs ({counts(statuses)})")
    print(format_table(statuses))
    return 0

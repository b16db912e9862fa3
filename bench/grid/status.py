"""The state of every run of a grid, from the run directories (``bench.run.rundir``) and the sweep manifest.

    statuses = run_statuses(grid.runs, grid.manifest)
    statuses[0].state            # RunState.DONE / STALE / RUNNING / QUEUED / FAILED / CORRUPT / PENDING / UNKNOWN
    print(format_table(statuses))

Order of evidence: ``record.json`` (done; stale when made by other code, ``bench.run.fingerprint``; corrupt
when unreadable or written by another config); a live
``claim.json`` (running, or queued for a requeued SLURM job); a claim whose owner cannot be checked (unknown:
left alone, the reason says how to take it over); an active SLURM job in the manifest (running / queued);
``error.json`` (failed, its last traceback line); a manifest job that ended without a record (failed);
otherwise pending. Only pending and failed runs are launched again (``LAUNCHABLE``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.grid import manifest as manifest_file
from bench.grid.spec import Run, format_varied
from bench.run.claims import claim_liveness
from bench.run.liveness import JobStatus, Liveness, query_slurm_jobs
from bench.run.reads import RecordState
from bench.run.rundir import RunDir


class RunState(enum.Enum):
    DONE = "done"
    RUNNING = "running"
    QUEUED = "queued"
    FAILED = "failed"
    CORRUPT = "corrupt"
    PENDING = "pending"
    UNKNOWN = "unknown"
    STALE = "stale"


LAUNCHABLE = frozenset({RunState.PENDING, RunState.FAILED})


@dataclass(frozen=True)
class RunStatus:
    run: Run
    state: RunState
    reason: str = ""
    job_id: str = ""


def _slurm_ids(runs: Sequence[Run], submissions: dict[str, dict[str, Any]]) -> list[str]:
    ids = [str(s["job_id"]) for s in submissions.values() if s.get("launcher") == "slurm"]
    for run in runs:
        claim = RunDir(run.run_dir).read_claim().claim
        if claim is not None and claim.job_id:
            ids.append(str(claim.job_id))
    return ids


def run_statuses(runs: Sequence[Run], manifest: Path) -> list[RunStatus]:
    """The state and reason of each run (module docstring); SLURM is queried once for all job ids."""
    submissions = manifest_file.latest_submissions(manifest)
    ids = _slurm_ids(runs, submissions)
    jobs = query_slurm_jobs(ids) if ids else {}
    return [run_status(run, submissions.get(run.run_id, {}), jobs) for run in runs]


def _record_status(run: Run, job_id: str) -> RunStatus | None:
    """DONE for a finished record of this config and code; STALE for one made by other code; CORRUPT when the
    folder cannot hold the run (``rundir``'s reuse decision: another run's files, or a corrupt
    record); None otherwise."""
    reuse = RunDir(run.run_dir).inspect_reuse(run.config)
    if reuse.stale and not reuse.read.done:  # a stale checkpoint: a live owner still trains under its code
        return None
    if reuse.stale:
        return RunStatus(run, RunState.STALE, f"code changed ({'; '.join(reuse.stale)})", job_id)
    if reuse.problem:
        return RunStatus(run, RunState.CORRUPT, reuse.problem, job_id)
    if reuse.done and reuse.read.record is not None:
        unchecked = (
            f"; plugin {', '.join(reuse.unchecked)} not importable here: its code is not checked"
            if reuse.unchecked
            else ""
        )
        return RunStatus(run, RunState.DONE, _metric_text(reuse.read.record) + unchecked, job_id)
    return None


def _stale_checkpoint_status(run: Run, job_id: str) -> RunStatus | None:
    """STALE for an unfinished run nobody is at work on whose checkpoint other code saved
    (``bench.run.resume``): resuming it is refused, ``--rerun-stale`` restarts it."""
    reuse = RunDir(run.run_dir).inspect_reuse(run.config)
    if reuse.stale and not reuse.read.done:
        return RunStatus(run, RunState.STALE, f"checkpoint saved by other code ({'; '.join(reuse.stale)})", job_id)
    return None


def _claim_status(run: Run, jobs: dict[str, JobStatus], job_id: str) -> tuple[RunStatus | None, str]:
    """(status from a live or uncheckable claim, or None; a note on a dead claim)."""
    held = RunDir(run.run_dir).read_claim()
    if held.claim is None:
        return None, ""
    check = claim_liveness(held.claim, jobs)
    owner = str(held.claim.job_id or job_id)
    if check.liveness is Liveness.ALIVE:
        queued = check.job is not None and not check.job.running
        if queued:
            return RunStatus(run, RunState.QUEUED, f"{check.reason} (holds the claim)", owner), ""
        return RunStatus(run, RunState.RUNNING, check.reason, owner), ""
    if check.liveness is Liveness.UNKNOWN:
        return RunStatus(run, RunState.UNKNOWN, f"{check.reason}; {RunDir(run.run_dir).take_over_hint()}", owner), ""
    return None, check.reason


def run_status(run: Run, sub: dict[str, Any], jobs: dict[str, JobStatus]) -> RunStatus:
    """The state of one run given its latest manifest submission and SLURM's answers."""
    job_id = str(sub.get("job_id", ""))
    dead_claim = ""
    found = _record_status(run, job_id)
    if found is None:
        found, dead_claim = _claim_status(run, jobs, job_id)
    if found is None:
        found = _stale_checkpoint_status(run, job_id)
    if found is not None:
        return found
    job = jobs.get(job_id) if sub.get("launcher") == "slurm" else None
    if job is not None and job.liveness is Liveness.ALIVE:
        return RunStatus(run, RunState.RUNNING if job.running else RunState.QUEUED, job.reason, job_id)
    if job is not None and job.liveness is Liveness.UNKNOWN:
        return RunStatus(run, RunState.UNKNOWN, f"{job.reason}; {RunDir(run.run_dir).take_over_hint()}", job_id)
    error = RunDir(run.run_dir).read_error()
    if error is not None:
        where = f" (job {error.get('job_id')})" if error.get("job_id") else ""
        return RunStatus(run, RunState.FAILED, f"{error.get('last_line', error.get('error', ''))}{where}", job_id)
    return _ended_status(run, sub, job, dead_claim, job_id)


def _ended_status(run: Run, sub: dict[str, Any], job: JobStatus | None, dead_claim: str, job_id: str) -> RunStatus:
    if job is not None:
        reason = f"{job.reason}, no record" + (" (left a stale claim)" if dead_claim else "")
        return RunStatus(run, RunState.FAILED, reason, job_id)
    if sub.get("launcher") == "local" and sub.get("returncode") not in (None, 0):
        return RunStatus(run, RunState.FAILED, f"exit code {sub['returncode']}: {sub.get('end_reason', '')}", job_id)
    if dead_claim:
        return RunStatus(run, RunState.FAILED, f"its process died ({dead_claim})", job_id)
    not_done = RunDir(run.run_dir).read_record()
    reason = (
        not_done.reason if not_done.state is RecordState.NOT_DONE else ("not submitted" if not sub else "no record yet")
    )
    return RunStatus(run, RunState.PENDING, reason, job_id)


def _metric_text(record: dict[str, Any]) -> str:
    miou = (record.get("metrics") or {}).get("miou")
    return f"mIoU {100 * miou:.2f}" if isinstance(miou, (int, float)) else ""


def format_table(statuses: Sequence[RunStatus]) -> str:
    """The run table: id, varied overrides, seed, status, reason."""
    from tabulate import tabulate

    rows = [
        (s.run.run_id, format_varied(s.run.varied) or "(base)", s.run.seed, s.state.value, s.reason) for s in statuses
    ]
    return tabulate(rows, headers=("run id", "varied", "seed", "status", "reason"), tablefmt="simple")


def counts(statuses: Sequence[RunStatus]) -> str:
    """``"2 done, 0 running, ..."`` over every state, in ``RunState`` order."""
    return ", ".join(f"{sum(s.state is k for s in statuses)} {k.value}" for k in RunState)

"""Is a run's owner still at work? Typed answers for local processes and SLURM jobs.

    from bench.run.liveness import Liveness, query_slurm_jobs, pid_liveness
    jobs = query_slurm_jobs(["41", "12_3"])      # one squeue (+ sacct) call for many ids
    jobs["12_3"].liveness                        # Liveness.ALIVE / DEAD / UNKNOWN, with .state and .reason

A failed, timed-out, empty or unreadable ``squeue``/``sacct`` answer (or a missing command) gives ``UNKNOWN``,
never ``DEAD``: a claim whose owner cannot be checked is left alone, and the user is told how to take it over on
purpose. A job is ``DEAD`` only on positive evidence: a final state (``squeue`` or ``sacct``), or SLURM
knowing nothing of it (squeue says "Invalid job id", or lists other jobs while sacct answers without it) still
when asked again ``grace_s()`` seconds later (``BENCH_SLURM_GRACE_S``, default 20: a restarted controller or a
federation view can miss a live job for a moment). A squeue listing only other jobs while sacct fails is no
evidence (another user's view): UNKNOWN.

A local process is identified by its pid, its start time in clock ticks since boot and the boot id
(``bench.process``): a clock step cannot make a live owner look like a reused pid.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass

from bench import process
from bench.process import current_job_id

__all__ = ["Liveness", "JobStatus", "current_job_id", "query_slurm_jobs", "pid_liveness", "slurm_reachable"]

QUERY_TIMEOUT_S = 30
GRACE_S = 20.0  # default of BENCH_SLURM_GRACE_S
# SLURM states in which a job still holds (or will hold) its run
ACTIVE_SLURM_STATES = frozenset(
    {
        "PENDING",
        "RUNNING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "SUSPENDED",
        "CONFIGURING",
        "COMPLETING",
        "STAGE_OUT",
        "SIGNALING",
        "STOPPED",
    }
)
RUNNING_SLURM_STATES = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING"})


class Liveness(enum.Enum):
    ALIVE = "alive"  # the owner is at work (or queued to resume)
    DEAD = "dead"  # the owner is gone: its claim may be taken over
    UNKNOWN = "unknown"  # cannot tell (SLURM query failed, another host): leave the run alone


@dataclass(frozen=True)
class JobStatus:
    """What SLURM says about one job id: liveness, the state word (``RUNNING``, ``CANCELLED``...) and why."""

    job_id: str
    liveness: Liveness
    state: str = ""
    reason: str = ""

    @property
    def running(self) -> bool:
        """Executing now (not waiting in the queue)."""
        return self.state in RUNNING_SLURM_STATES


def expand_job_ids(text: str) -> list[str]:
    """``"12_[0-2,5%2]"`` -> ``["12_0", "12_1", "12_2", "12_5"]``; plain ids are returned as they are."""
    match = re.fullmatch(r"(\d+)_\[([^\]]+)\]", text)
    if not match:
        return [text]
    base, spec = match.groups()
    ids: list[str] = []
    for part in spec.split("%")[0].split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            ids += [f"{base}_{i}" for i in range(int(lo), int(hi) + 1)]
        elif part:
            ids.append(f"{base}_{part}")
    return ids


def grace_s() -> float:
    """Seconds between the two ``squeue`` answers that must both omit a job before it counts as gone."""
    try:
        return max(0.0, float(os.environ.get("BENCH_SLURM_GRACE_S", GRACE_S)))
    except ValueError:
        return GRACE_S


INVALID_ID = "squeue: invalid job id (the controller does not know it)"


def run_query(command: list[str]) -> tuple[dict[str, str] | None, str]:
    """``({job id: state}, "")`` from a ``squeue``/``sacct`` call printing ``id|state`` lines, or
    ``(None, why it is no answer)``: a failure, a timeout, or (``squeue``) an empty or unreadable output.
    squeue's "Invalid job id" (the controller does not know the job) is the empty answer ``({}, INVALID_ID)``."""
    if shutil.which(command[0]) is None:
        return None, f"{command[0]} is not on PATH"
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"{command[0]} timed out after {QUERY_TIMEOUT_S}s"
    except (OSError, subprocess.SubprocessError) as err:
        return None, f"{command[0]} failed: {err}"
    if result.returncode != 0:
        if command[0] == "squeue" and "Invalid job id" in result.stderr:
            return {}, INVALID_ID
        answer = " ".join((result.stderr.strip() or result.stdout.strip()).split())[:200]
        return None, f"{command[0]} exited with {result.returncode}: {answer}"
    states: dict[str, str] = {}
    for line in result.stdout.splitlines():
        job, bar, state = line.strip().partition("|")
        if not bar or not job:
            continue  # a banner or a warning, not an ``id|state`` line
        for jid in expand_job_ids(job):
            states.setdefault(jid, state.split()[0] if state.split() else "UNKNOWN")
    if not states and command[0] == "squeue":
        return None, "squeue answered nothing (exit 0, no job line: a restarting controller or a partial view)"
    return states, ""


def _squeue(job_ids: Iterable[str]) -> tuple[dict[str, str] | None, str]:
    bases = ",".join(sorted({j.split("_")[0] for j in job_ids}))
    return run_query(["squeue", "-h", "-r", "-o", "%i|%T", "-j", bases])


def _typed(jid: str, state: str) -> JobStatus:
    alive = state in ACTIVE_SLURM_STATES
    return JobStatus(jid, Liveness.ALIVE if alive else Liveness.DEAD, state, f"SLURM job {jid} {state}")


def _unknown(jid: str, why: str) -> JobStatus:
    return JobStatus(jid, Liveness.UNKNOWN, "", f"SLURM job {jid}: cannot query SLURM ({why})")


def _unlisted(
    jids: list[str], queued: dict[str, str] | None, queue_error: str, accounted: bool, why: str
) -> dict[str, JobStatus]:
    """Jobs neither queue nor accounting lists, asked again ``grace_s()`` later. DEAD only on evidence that SLURM
    knows nothing of them, both times: squeue's "Invalid job id", or a squeue that lists other jobs *and* a
    sacct that answers without them. A squeue that lists only other jobs (another user's view, a federation)
    while sacct cannot be asked is no evidence: UNKNOWN."""
    if queued is None:
        return {j: _unknown(j, why) for j in jids}
    time.sleep(grace_s())
    again, again_error = _squeue(jids)
    evidence = queue_error == INVALID_ID or accounted
    out: dict[str, JobStatus] = {}
    for jid in jids:
        if again is not None and jid in again:
            out[jid] = _typed(jid, again[jid])
        elif again is None:
            out[jid] = _unknown(jid, again_error)
        elif evidence:
            out[jid] = JobStatus(
                jid,
                Liveness.DEAD,
                "",
                f"SLURM job {jid} is no longer queued (squeue has not "
                f"listed it for {grace_s():g}s; {why or 'unknown to sacct'})",
            )
        else:
            out[jid] = _unknown(
                jid, f"squeue lists other jobs but not this one, and sacct cannot tell whether it ended ({why})"
            )
    return out


def query_slurm_jobs(job_ids: Iterable[str]) -> dict[str, JobStatus]:
    """A typed answer for every id: ``squeue`` (queued and running jobs) and then ``sacct`` (finished ones).

    A final state from either is DEAD; a job neither lists is DEAD only when SLURM positively knows nothing of
    it, still after the grace period (``_unlisted``); any other case is UNKNOWN.
    """
    wanted = sorted({str(j) for j in job_ids if j})
    if not wanted:
        return {}
    bases = ",".join(sorted({j.split("_")[0] for j in wanted}))
    queued, queue_error = _squeue(wanted)
    missing = [j for j in wanted if queued is None or j not in queued]
    finished, acct_error = (
        run_query(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", bases]) if missing else ({}, "")
    )
    out: dict[str, JobStatus] = {}
    unlisted: list[str] = []
    for jid in wanted:
        state = (queued or {}).get(jid) or (finished or {}).get(jid, "")
        if state:
            out[jid] = _typed(jid, state)
        else:
            unlisted.append(jid)
    if unlisted:
        why = "; ".join(e for e in (queue_error, acct_error) if e)
        out.update(_unlisted(unlisted, queued, queue_error, finished is not None, why))
    return out


def slurm_reachable() -> tuple[bool, str]:
    """Whether jobs can be submitted from here: ``sbatch`` on PATH and the controller answering."""
    if shutil.which("sbatch") is None:
        return False, "sbatch is not on PATH (is SLURM installed here? in CI run .ci/slurm-up.sh first)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as err:
        return False, f"scontrol ping failed: {err}"
    if ping.returncode != 0 or "UP" not in ping.stdout:
        answer = ping.stdout.strip() or ping.stderr.strip()
        return False, f"the SLURM controller does not answer (scontrol ping: {answer})"
    return True, ""


def process_start_time(pid: int | None = None) -> float | None:
    """Creation time of ``pid`` (default: this process) by the wall clock, or None when it cannot be read;
    provenance only (it moves with the clock: identity uses ``bench.process.start_ticks``)."""
    try:
        import psutil

        return psutil.Process(pid or os.getpid()).create_time()
    except Exception:  # psutil missing, process gone or /proc unreadable
        return None


def _same_start(pid: int, started: float | None, ticks: int | None, boot: str | None) -> tuple[Liveness, str]:
    """Whether the live process ``pid`` is the one that made a claim: by start ticks and boot id (exact,
    immune to clock steps) when the claim has them, else by the wall-clock start (a difference is UNKNOWN:
    a clock step and a reused pid look alike)."""
    now_boot = process.boot_id()
    if boot and now_boot and boot != now_boot:
        return Liveness.DEAD, "is gone (the machine rebooted since the claim)"
    now_ticks = process.start_ticks(pid)
    if ticks is not None and now_ticks is not None:
        if now_ticks != ticks:
            return Liveness.DEAD, f"is gone (pid reused: started at tick {now_ticks}, the owner at {ticks})"
        return Liveness.ALIVE, ""
    if started is None:  # a live pid, but nothing tells the claim's owner from a later process on that pid
        return Liveness.UNKNOWN, "is alive but the claim has no start time (cannot tell it is the owner)"
    created = process_start_time(pid)
    if created is not None and abs(created - started) >= 1.0:
        return Liveness.UNKNOWN, (
            f"is alive but started {created - started:+.0f}s from the claim's wall-clock start time "
            f"(a reused pid or a clock step: cannot tell)"
        )
    return Liveness.ALIVE, ""


def pid_liveness(
    host: str | None, pid: int | None, started: float | None, ticks: int | None = None, boot: str | None = None
) -> tuple[Liveness, str]:
    """(liveness, why) of a local process; a pid on another host cannot be checked (UNKNOWN). ``ticks`` and
    ``boot``: the owner's start in clock ticks since boot and the boot id (``bench.process``)."""
    import psutil

    where = f"pid {pid} on {host}"
    if host != socket.gethostname():
        return Liveness.UNKNOWN, f"{where} (another host: cannot check from here)"
    if not isinstance(pid, int):
        return Liveness.DEAD, f"{where}: no valid pid"
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return Liveness.DEAD, f"{where} is gone"
    except psutil.NoSuchProcess:
        return Liveness.DEAD, f"{where} is gone"
    except psutil.AccessDenied:
        pass
    liveness, why = _same_start(pid, started, ticks, boot)
    return liveness, f"{where} {why}" if why else where

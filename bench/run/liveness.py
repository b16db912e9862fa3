"""Is a run's owner still at work? Typed answers for local processes and SLURM jobs.

    from bench.run.liveness import Liveness, query_slurm_jobs, pid_liveness
    jobs = query_slurm_jobs(["41", "12_3"])      # one squeue (+ sacct) call for many ids
    jobs["12_3"].liveness                        # Liveness.ALIVE / DEAD / UNKNOWN, with .state and .reason

A failed, timed-out, empty or unreadable ``squeue``/``sacct`` answer (or a missing command) gives ``UNKNOWN``,
never ``DEAD``: a claim whose owner cannot be checked is left alone, and the user is told how to take it over on
purpose. A job is ``DEAD`` only on positive evidence: a final state (``squeue`` or ``sacct``), or a controller
that answers (lists other jobs, or says "Invalid job id") and still does not list the job when asked again
``grace_s()`` seconds later (``BENCH_SLURM_GRACE_S``, default 20: a restarted controller or a federation view
can miss a live job for a moment).
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


def current_job_id() -> str | None:
    """This process's SLURM job id (``<array>_<task>`` inside an array), or None outside SLURM.

    None for runs started by the local launcher even inside an allocation (``BENCH_LAUNCHER=local``): they
    claim by pid, so two local runs never mistake each other's claim for their own.
    """
    if os.environ.get("BENCH_LAUNCHER") == "local":
        return None
    array_id, task_id = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_id and task_id:
        return f"{array_id}_{task_id}"
    return os.environ.get("SLURM_JOB_ID")


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


def run_query(command: list[str]) -> tuple[dict[str, str] | None, str]:
    """``({job id: state}, "")`` from a ``squeue``/``sacct`` call printing ``id|state`` lines, or
    ``(None, why it is no answer)``: a failure, a timeout, or (``squeue``) an empty or unreadable output.
    squeue's "Invalid job id" (the controller does not know the job) is an empty answer ``{}``."""
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
            return {}, ""
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


def _unlisted(jids: list[str], queued: dict[str, str] | None, why: str) -> dict[str, JobStatus]:
    """Jobs neither queue nor accounting lists: DEAD only when the controller answered and, asked again
    ``grace_s()`` later, still does not list them; UNKNOWN otherwise."""
    if queued is None:
        return {j: JobStatus(j, Liveness.UNKNOWN, "", f"SLURM job {j}: cannot query SLURM ({why})") for j in jids}
    time.sleep(grace_s())
    again, again_error = _squeue(jids)
    out: dict[str, JobStatus] = {}
    for jid in jids:
        if again is not None and jid in again:
            out[jid] = _typed(jid, again[jid])
        elif again is not None:
            out[jid] = JobStatus(
                jid,
                Liveness.DEAD,
                "",
                f"SLURM job {jid} is no longer queued (squeue has not "
                f"listed it for {grace_s():g}s; {why or 'unknown to sacct'})",
            )
        else:
            out[jid] = JobStatus(jid, Liveness.UNKNOWN, "", f"SLURM job {jid}: cannot query SLURM ({again_error})")
    return out


def query_slurm_jobs(job_ids: Iterable[str]) -> dict[str, JobStatus]:
    """A typed answer for every id: ``squeue`` (queued and running jobs) and then ``sacct`` (finished ones).

    A final state from either is DEAD; a job neither lists is DEAD only if the controller answered and still
    omits it after the grace period (``_unlisted``); any other case is UNKNOWN.
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
        out.update(_unlisted(unlisted, queued, why))
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
    """Creation time of ``pid`` (default: this process), or None when it cannot be read."""
    try:
        import psutil

        return psutil.Process(pid or os.getpid()).create_time()
    except Exception:  # psutil missing, process gone or /proc unreadable
        return None


def pid_liveness(host: str | None, pid: int | None, started: float | None) -> tuple[Liveness, str]:
    """(liveness, why) of a local process; a pid on another host cannot be checked (UNKNOWN)."""
    import psutil

    where = f"pid {pid} on {host}"
    if host != socket.gethostname():
        return Liveness.UNKNOWN, f"{where} (another host: cannot check from here)"
    if not isinstance(pid, int):
        return Liveness.DEAD, f"{where}: no valid pid"
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return Liveness.DEAD, f"{where} is gone"
        # a reused pid belongs to a process created after the claim's owner
        if started is not None and abs(proc.create_time() - started) >= 1.0:
            return Liveness.DEAD, f"{where} is gone (pid reused)"
    except psutil.NoSuchProcess:
        return Liveness.DEAD, f"{where} is gone"
    except psutil.AccessDenied:
        pass
    if started is None:  # a live pid, but nothing tells the claim's owner from a later process on that pid
        return Liveness.UNKNOWN, f"{where} is alive but the claim has no start time (cannot tell it is the owner)"
    return Liveness.ALIVE, where

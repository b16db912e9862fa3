"""Who owns a run: the claim file (``claim.json``, named by ``bench.run.rundir``), created complete, judged by
its owner's liveness, taken over only when the owner is gone.

    from bench.run.rundir import RunDir
    got = RunDir(path).acquire_claim(job_id)     # Acquired(ok, claim, check): check.liveness says why busy
    RunDir(path).release_claim(job_id)

The functions here take the claim file's path; ``RunDir`` is their only caller. A claim is created complete: its
content goes to a temporary file that is then ``os.link``-ed to the name (fails if the name exists), so of
several processes exactly one wins and an empty or unreadable claim can only come from a broken disk; such a
claim is taken over with a warning. A claim whose owner is gone (dead pid, ended SLURM job) is taken over; one
whose owner cannot be checked (SLURM not answering, another host) is left alone unless ``take_over=True`` is
passed on purpose.
"""

from __future__ import annotations

import enum
import json
import os
import socket
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import process
from bench.run.liveness import JobStatus, Liveness, pid_liveness, process_start_time, query_slurm_jobs


@dataclass(frozen=True)
class Claim:
    """Who owns a run: a SLURM job id, or a pid (with its start time) on a host."""

    host: str | None
    pid: int | None
    pid_start: float | None = None
    job_id: str | None = None
    time: float = 0.0
    pid_ticks: int | None = None  # start in clock ticks since boot (bench.process): what identifies the pid
    boot_id: str | None = None

    def describe(self) -> str:
        return f"SLURM job {self.job_id}" if self.job_id else f"pid {self.pid} on {self.host}"

    def is_mine(self, job_id: str | None) -> bool:
        """Held by this SLURM job (a requeued task, another rank) or by this very process."""
        if job_id and self.job_id == job_id:
            return True
        same_start = self.pid_ticks is None or self.pid_ticks == process.start_ticks()
        return (
            self.pid == os.getpid() and self.host == socket.gethostname() and same_start and not (self.job_id or job_id)
        )


class ClaimState(enum.Enum):
    MISSING = "missing"
    CORRUPT = "corrupt"
    PRESENT = "present"


@dataclass(frozen=True)
class ClaimRead:
    state: ClaimState
    claim: Claim | None = None
    reason: str = ""
    raw: bytes = b""


def read_claim(path: Path) -> ClaimRead:
    """Read the claim file ``path``: missing, corrupt (empty / unreadable, with the reason) or present."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ClaimRead(ClaimState.MISSING)
    except OSError as err:
        return ClaimRead(ClaimState.CORRUPT, reason=f"{path} is unreadable ({err})")
    try:
        data = json.loads(raw)
        claim = Claim(
            host=data.get("host"),
            pid=data.get("pid"),
            pid_start=data.get("pid_start"),
            job_id=data.get("job_id"),
            time=float(data.get("time") or 0.0),
            pid_ticks=data.get("pid_ticks") if isinstance(data.get("pid_ticks"), int) else None,
            boot_id=data.get("boot_id") if isinstance(data.get("boot_id"), str) else None,
        )
    except (ValueError, TypeError, AttributeError):
        what = "empty" if not raw.strip() else "not a claim"
        return ClaimRead(ClaimState.CORRUPT, reason=f"{path} is {what} (a write cut short, e.g. a full disk)", raw=raw)
    if claim.pid is None and not claim.job_id:
        return ClaimRead(ClaimState.CORRUPT, reason=f"{path} names no owner", raw=raw)
    return ClaimRead(ClaimState.PRESENT, claim, raw=raw)


@dataclass(frozen=True)
class ClaimCheck:
    """Whether a claim's owner is at work; ``job`` is SLURM's answer for a SLURM claim."""

    liveness: Liveness
    reason: str
    job: JobStatus | None = None


def claim_liveness(claim: Claim, jobs: dict[str, JobStatus] | None = None) -> ClaimCheck:
    """A SLURM claim lives while its job is active (``jobs``: answers already fetched, else one query);
    a local claim while its pid does (only checkable on its own host)."""
    if claim.job_id:
        job = (jobs or {}).get(claim.job_id) or query_slurm_jobs([claim.job_id])[claim.job_id]
        return ClaimCheck(job.liveness, job.reason, job)
    liveness, why = pid_liveness(claim.host, claim.pid, claim.pid_start, claim.pid_ticks, claim.boot_id)
    return ClaimCheck(liveness, why)


def take_over_hint(path: Path) -> str:
    """How to take over the run whose claim file is ``path`` when its owner is known to be gone."""
    return (
        f"if you know it is gone, take the run over on purpose: `bench sweep SPEC --take-over` "
        f"(`bench train ... --take-over` for one run), or delete {path}"
    )


@dataclass(frozen=True)
class Acquired:
    """The outcome of ``acquire``: ``ok`` (this process owns the run), the claim in force, and for a refusal the
    owner's liveness and why."""

    ok: bool
    claim: Claim | None
    check: ClaimCheck | None = None
    path: Path | None = None  # the claim file

    def busy_message(self, run_dir: str | Path) -> str:
        owner = self.claim.describe() if self.claim else "another process"
        what = self.check.reason if self.check else (self.path.name if self.path else "its claim")
        text = f"{run_dir} is owned by {owner} ({what})"
        if self.check is not None and self.check.liveness is Liveness.UNKNOWN:
            text += f"; {take_over_hint(self.path or Path(run_dir))}"
        return text


def _link_new_claim(path: Path, claim: Claim) -> bool | None:
    """Create ``path`` with ``claim`` as its complete content; False if it exists already, None if the
    temporary file vanished before the link (removed by the holder's ``remove_temp_files``: try again)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{process.writer_tag()}", suffix=".tmp", dir=path.parent)
    except OSError as err:  # a full disk or a read-only folder: name the file the run could not write
        raise OSError(err.errno, err.strerror, str(path)) from err
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(claim), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError:
        return None
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from err
    finally:
        Path(tmp).unlink(missing_ok=True)


def _move_aside(path: Path, judged: bytes) -> None:
    """Take over the claim judged stale: rename it aside (atomic; of two takers one wins). If what was moved
    is not what was judged (another taker's fresh claim), put it back."""
    aside = path.parent / f".claim.stale.{process.writer_tag()}{time.time_ns()}.tmp"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    try:
        if aside.read_bytes() != judged:
            os.link(aside, path)
    except (OSError, FileExistsError):
        pass
    finally:
        aside.unlink(missing_ok=True)


def acquire(path: Path, job_id: str | None = None, take_over: bool = False) -> Acquired:
    """Claim the run whose claim file is ``path`` for this process (or SLURM job ``job_id``).

    An existing claim is ours (same job id / this process), alive (refused), dead (taken over), unknown
    (refused unless ``take_over``) or corrupt (taken over with a warning).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = Claim(
        socket.gethostname(),
        os.getpid(),
        process_start_time(),
        job_id,
        time.time(),
        process.start_ticks(),
        process.boot_id(),
    )
    held: ClaimRead = ClaimRead(ClaimState.MISSING)
    for _ in range(10):
        created = _link_new_claim(path, mine)
        if created:
            return Acquired(True, mine, path=path)
        if created is None:
            continue
        held = read_claim(path)
        if held.state is ClaimState.MISSING:
            continue  # released meanwhile
        if held.state is ClaimState.CORRUPT:
            warnings.warn(f"{held.reason}; taking the run over", RuntimeWarning, stacklevel=3)
            _move_aside(path, held.raw)
            continue
        assert held.claim is not None
        if held.claim.is_mine(job_id):
            return Acquired(True, held.claim, path=path)
        check = claim_liveness(held.claim)
        if check.liveness is Liveness.ALIVE or (check.liveness is Liveness.UNKNOWN and not take_over):
            return Acquired(False, held.claim, check, path)
        _move_aside(path, held.raw)
    return Acquired(False, held.claim, ClaimCheck(Liveness.UNKNOWN, "the claim kept changing; try again"), path)


def release(path: Path, job_id: str | None = None) -> None:
    """Remove the claim file ``path`` if this process (or this SLURM job) holds it."""
    held = read_claim(path)
    if held.claim is not None and held.claim.is_mine(job_id):
        path.unlink(missing_ok=True)


def holds(path: Path, job_id: str | None = None) -> bool:
    """Whether this process (or SLURM job ``job_id``) holds the claim file ``path``."""
    held = read_claim(path)
    return held.claim is not None and held.claim.is_mine(job_id)


def writer_gone(name: str, job_id: str | None = None, untagged: bool = True) -> bool:
    """Whether the process that made the temporary file ``name`` is known to be gone, so the claim's holder (SLURM
    job ``job_id``, or this process) may remove it: an earlier run of the holder's own SLURM job, a dead pid on
    this host, an ended SLURM job, or (``untagged``) a name without a writer (made by older code). A live or
    uncheckable writer keeps its file."""
    writer = process.writer_of(name)
    if writer is None:
        return untagged
    if writer.me:
        return False
    if writer.job_id:
        if writer.job_id == job_id:
            return True  # this job before a requeue (SLURM never runs one job twice at once)
        return query_slurm_jobs([writer.job_id])[writer.job_id].liveness is Liveness.DEAD
    if not writer.here:
        return False
    return pid_liveness(socket.gethostname(), writer.pid, None, writer.ticks)[0] is Liveness.DEAD

"""The one owner of a run directory: its file names, record, claim, error record, stored config and reuse rules.

    from bench.run import rundir
    read = rundir.read_record(run_dir)          # RecordRead: MISSING / CORRUPT (reason) / DONE / NOT_DONE
    read.done, read.record                      # "done" = status "done" and metrics present; nothing else
    rundir.check_reuse(run_dir, cfg)            # RunMismatchError if a stored config is another run
    got = rundir.acquire_claim(run_dir)         # Acquired(ok, claim, check): check.liveness says why busy
    rundir.remove_temp_files(run_dir)           # .*.tmp of killed atomic writes (only while holding the claim)
    rundir.write_record(run_dir, record); rundir.release_claim(run_dir)
    rundir.merge_into_record(run_dir, "latency", result)   # refuses to replace an existing section

A run directory holds ``config.yaml`` (the resolved config), ``checkpoint.pt``, ``log.jsonl``, ``record.json``
(written once when the run is done), ``claim.json`` (while a process owns the run), ``error.json`` (how the
last attempt failed), ``latency.json`` and ``eval.json``. Every write is atomic (``bench.run.records``).

``claim.json`` is created complete: its content goes to a temporary file that is then ``os.link``-ed to the
name (fails if the name exists), so of several processes exactly one wins and an empty or unreadable claim can
only come from a broken disk; such a claim is taken over with a warning. A claim whose owner is gone (dead pid,
ended SLURM job) is taken over; one whose owner cannot be checked (SLURM not answering, another host) is left
alone unless ``take_over=True`` is passed on purpose.
"""

from __future__ import annotations

import enum
import os
import socket
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.config import ConfigError
from bench.run.liveness import JobStatus, Liveness, current_job_id, pid_liveness, process_start_time, \
    query_slurm_jobs
from bench.run.records import read_json, write_json_atomic, write_text_atomic

CONFIG = "config.yaml"
CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
RECORD = "record.json"
CLAIM = "claim.json"
ERROR = "error.json"
LATENCY = "latency.json"
EVAL = "eval.json"
# a merge may add sections (latency, ...) but never replace what defines the run and its result
PROTECTED_SECTIONS = frozenset({"schema", "run_id", "status", "config", "config_hash", "metrics"})
SHOWN_DIFFERENCES = 3


class RunDirError(ConfigError):
    """A run directory cannot be used as asked (corrupt record, refused merge...); the message says what to do."""


class RunMismatchError(RunDirError):
    """The run directory holds another run (a stored config differs from the current one)."""


# --------------------------------------------------------------------------------------------------
# the record


class RecordState(enum.Enum):
    MISSING = "missing"
    CORRUPT = "corrupt"
    DONE = "done"
    NOT_DONE = "not-done"


@dataclass(frozen=True)
class RecordRead:
    """What ``record.json`` holds: its state, the dict (DONE / NOT_DONE) and why it is corrupt / not done."""

    state: RecordState
    record: dict[str, Any] | None = None
    reason: str = ""

    @property
    def done(self) -> bool:
        return self.state is RecordState.DONE


def is_done(record: dict[str, Any]) -> bool:
    """The one definition of a finished run: ``status == "done"`` and a non-empty ``metrics`` mapping."""
    metrics = record.get("metrics")
    return record.get("status") == "done" and isinstance(metrics, dict) and bool(metrics)


def read_record(run_dir: str | Path) -> RecordRead:
    """Read ``run_dir/record.json`` without raising: missing, corrupt (with the reason), done or not done."""
    path = Path(run_dir) / RECORD
    if not path.exists():
        return RecordRead(RecordState.MISSING)
    try:
        record = read_json(path)
    except (OSError, ValueError) as err:
        detail = err.__cause__ if err.__cause__ is not None else err  # read_json's ValueError names the path already
        reason = f"{path} is unreadable ({type(detail).__name__}: {' '.join(str(detail).split())[:200]})"
        return RecordRead(RecordState.CORRUPT, reason=reason)
    if not isinstance(record, dict):
        return RecordRead(RecordState.CORRUPT, reason=f"{path} holds a {type(record).__name__}, not a record")
    if is_done(record):
        return RecordRead(RecordState.DONE, record)
    why = f"status {record.get('status')!r}" if record.get("status") != "done" else "no metrics"
    return RecordRead(RecordState.NOT_DONE, record, f"{path} is not a finished record ({why})")


def write_record(run_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``run_dir/record.json`` atomically (readers see the old file or the complete new one)."""
    return write_json_atomic(Path(run_dir) / RECORD, record)


def merge_into_record(run_dir: str | Path, section: str, value: Any, overwrite: bool = False) -> dict[str, Any]:
    """Add ``section`` to the run's record and write it back; returns the new record.

    Refuses (``RunDirError``) when there is no readable record, when ``section`` exists and ``overwrite`` is
    False, and always for the sections that define the run (``PROTECTED_SECTIONS``).
    """
    read = read_record(run_dir)
    if read.record is None:
        raise RunDirError(read.reason or f"{Path(run_dir) / RECORD} does not exist: the run has not finished")
    if section in PROTECTED_SECTIONS:
        raise RunDirError(f"record section {section!r} defines the run and cannot be replaced by a merge")
    if section in read.record and not overwrite:
        raise RunDirError(f"{Path(run_dir) / RECORD} already has {section!r}; not replaced (pass overwrite=True "
                          f"to replace it on purpose)")
    record = {**read.record, section: value}
    write_record(run_dir, record)
    return record


# --------------------------------------------------------------------------------------------------
# the stored config and reuse


def write_config(run_dir: str | Path, cfg: Any) -> Path:
    """Write the resolved config to ``run_dir/config.yaml`` (atomic)."""
    from bench.config import to_yaml

    return write_text_atomic(Path(run_dir) / CONFIG, to_yaml(cfg))


def read_config(run_dir: str | Path) -> Any:
    """The ``Config`` stored in ``run_dir/config.yaml``; a missing file is a one-line ``RunDirError``."""
    from bench.config import load_config

    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunDirError(f"{path} does not exist; a launcher writes it before starting the run "
                          f"(or start it with `bench train CONFIG`)")
    return load_config(path)


def _stored_config_yaml(path: Path) -> dict[str, Any] | None:
    import yaml

    if not path.is_file():
        return None
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise RunDirError(f"{path} is unreadable ({type(err).__name__}); delete it (it is rewritten)") from err
    return values if isinstance(values, dict) else None


def _stored_configs(run_dir: Path, read: RecordRead) -> list[tuple[str, dict[str, Any]]]:
    """(file name, stored config) of record.json, config.yaml and (for an unfinished run) checkpoint.pt."""
    stored = []
    if read.record is not None and isinstance(read.record.get("config"), dict):
        stored.append((RECORD, read.record["config"]))
    config_yaml = _stored_config_yaml(run_dir / CONFIG)
    if config_yaml is not None:
        stored.append((CONFIG, config_yaml))
    if not read.done and (run_dir / CHECKPOINT).is_file():
        from bench.run.checkpoint import load_checkpoint

        state = load_checkpoint(run_dir / CHECKPOINT)
        if isinstance(state.get("config"), dict):
            stored.append((CHECKPOINT, state["config"]))
    return stored


def check_reuse(run_dir: str | Path, cfg: Any) -> RecordRead:
    """Check that what ``run_dir`` holds belongs to ``cfg``; returns its record read.

    record.json, config.yaml and checkpoint.pt are reused only if ``identity.differences(stored, cfg)`` is
    empty; otherwise ``RunMismatchError`` names the differing keys and the way out. A corrupt record is a
    ``RunDirError``. A new derived run dir whose run already exists under an older id is refused (``mv``).
    """
    from bench.run.identity import differences

    run_dir = Path(run_dir)
    if not run_dir.exists():
        if not getattr(cfg, "run_dir", ""):
            _refuse_moved_run(run_dir, cfg)
        return RecordRead(RecordState.MISSING)
    read = read_record(run_dir)
    if read.state is RecordState.CORRUPT:
        raise RunDirError(f"{read.reason}; delete it to recompute the record (the checkpoint is resumed)")
    for name, stored in _stored_configs(run_dir, read):
        diffs = differences(stored, cfg)
        if diffs:
            shown = "; ".join(diffs[:SHOWN_DIFFERENCES])
            more = f" (+{len(diffs) - SHOWN_DIFFERENCES} more)" if len(diffs) > SHOWN_DIFFERENCES else ""
            raise RunMismatchError(f"{run_dir} holds another run ({name}: {shown}{more}); use another run_dir "
                                   f"(or output_root), or delete {run_dir} to start over")
    return read


def _refuse_moved_run(run_dir: Path, cfg: Any) -> None:
    """Stop when a sibling folder holds this very run under an id of an older id scheme."""
    from bench.run.identity import differences

    parent = run_dir.parent
    if not parent.is_dir():
        return
    for sibling in sorted(parent.glob(f"{cfg.model.name}-*")):
        if sibling == run_dir or not sibling.is_dir():
            continue
        try:
            stored = _stored_config_yaml(sibling / CONFIG)
        except RunDirError:
            stored = None
        record = read_record(sibling).record
        stored = stored or (record or {}).get("config")
        if isinstance(stored, dict) and not differences(stored, cfg):
            raise RunMismatchError(f"this run already exists as {sibling} (an older run id); rename it so it is "
                                   f"reused instead of trained again: mv {sibling} {run_dir}")


# --------------------------------------------------------------------------------------------------
# claims


@dataclass(frozen=True)
class Claim:
    """Who owns a run: a SLURM job id, or a pid (with its start time) on a host."""

    host: str | None
    pid: int | None
    pid_start: float | None = None
    job_id: str | None = None
    time: float = 0.0

    def describe(self) -> str:
        return f"SLURM job {self.job_id}" if self.job_id else f"pid {self.pid} on {self.host}"

    def is_mine(self, job_id: str | None) -> bool:
        """Held by this SLURM job (a requeued task, another rank) or by this very process."""
        if job_id and self.job_id == job_id:
            return True
        return self.pid == os.getpid() and self.host == socket.gethostname() and not (self.job_id or job_id)


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


def read_claim(run_dir: str | Path) -> ClaimRead:
    """Read ``run_dir/claim.json``: missing, corrupt (empty / unreadable, with the reason) or present."""
    import json

    path = Path(run_dir) / CLAIM
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ClaimRead(ClaimState.MISSING)
    except OSError as err:
        return ClaimRead(ClaimState.CORRUPT, reason=f"{path} is unreadable ({err})")
    try:
        data = json.loads(raw)
        claim = Claim(host=data.get("host"), pid=data.get("pid"), pid_start=data.get("pid_start"),
                      job_id=data.get("job_id"), time=float(data.get("time") or 0.0))
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
    liveness, why = pid_liveness(claim.host, claim.pid, claim.pid_start)
    return ClaimCheck(liveness, why)


def take_over_hint(run_dir: str | Path) -> str:
    return (f"if you know it is gone, take the run over on purpose: `bench sweep SPEC --take-over`, "
            f"or delete {Path(run_dir) / CLAIM}")


@dataclass(frozen=True)
class Acquired:
    """The outcome of ``acquire_claim``: ``ok`` (this process owns the run), the claim in force, and for a
    refusal the owner's liveness and why."""

    ok: bool
    claim: Claim | None
    check: ClaimCheck | None = None

    def busy_message(self, run_dir: str | Path) -> str:
        owner = self.claim.describe() if self.claim else "another process"
        text = f"{run_dir} is owned by {owner} ({self.check.reason if self.check else 'claim.json'})"
        if self.check is not None and self.check.liveness is Liveness.UNKNOWN:
            text += f"; {take_over_hint(run_dir)}"
        return text


def _link_new_claim(path: Path, claim: Claim) -> bool | None:
    """Create ``path`` with ``claim`` as its complete content; False if it exists already, None if the
    temporary file vanished before the link (removed by the holder's ``remove_temp_files``: try again)."""
    import json

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    finally:
        Path(tmp).unlink(missing_ok=True)


def _move_aside(path: Path, judged: bytes) -> None:
    """Take over the claim judged stale: rename it aside (atomic; of two takers one wins). If what was moved
    is not what was judged (another taker's fresh claim), put it back."""
    aside = path.parent / f".claim.stale.{os.getpid()}.{time.time_ns()}.tmp"
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


def acquire_claim(run_dir: str | Path, job_id: str | None = None, take_over: bool = False) -> Acquired:
    """Claim ``run_dir`` for this process (or SLURM job ``job_id``).

    An existing claim is ours (same job id / this process), alive (refused), dead (taken over), unknown
    (refused unless ``take_over``) or corrupt (taken over with a warning).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CLAIM
    mine = Claim(socket.gethostname(), os.getpid(), process_start_time(), job_id, time.time())
    held: ClaimRead = ClaimRead(ClaimState.MISSING)
    for _ in range(10):
        created = _link_new_claim(path, mine)
        if created:
            return Acquired(True, mine)
        if created is None:
            continue
        held = read_claim(path.parent)
        if held.state is ClaimState.MISSING:
            continue  # released meanwhile
        if held.state is ClaimState.CORRUPT:
            warnings.warn(f"{held.reason}; taking the run over", RuntimeWarning, stacklevel=2)
            _move_aside(path, held.raw)
            continue
        assert held.claim is not None
        if held.claim.is_mine(job_id):
            return Acquired(True, held.claim)
        check = claim_liveness(held.claim)
        if check.liveness is Liveness.ALIVE or (check.liveness is Liveness.UNKNOWN and not take_over):
            return Acquired(False, held.claim, check)
        _move_aside(path, held.raw)
    return Acquired(False, held.claim, ClaimCheck(Liveness.UNKNOWN, "the claim kept changing; try again"))


def release_claim(run_dir: str | Path, job_id: str | None = None) -> None:
    """Remove ``run_dir/claim.json`` if this process (or this SLURM job) holds it."""
    held = read_claim(run_dir)
    if held.claim is not None and held.claim.is_mine(job_id):
        (Path(run_dir) / CLAIM).unlink(missing_ok=True)


def remove_temp_files(run_dir: str | Path, job_id: str | None = None) -> list[Path]:
    """Delete ``.*.tmp`` files (atomic writes cut short by a kill) in ``run_dir``; only while holding its claim.

    Returns the removed paths; raises ``RunDirError`` when this process does not hold the claim.
    """
    held = read_claim(run_dir)
    if held.claim is None or not held.claim.is_mine(job_id):
        raise RunDirError(f"{run_dir}: temporary files are only removed by the claim's holder")
    removed = []
    for tmp in Path(run_dir).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


# --------------------------------------------------------------------------------------------------
# error records


def write_error(run_dir: str | Path, err: BaseException, job_id: str | None = None) -> dict[str, Any]:
    """Write ``run_dir/error.json``: exception type, message, the traceback and its last line."""
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    # the traceback's last entry ("ValueError: message"), on one line even when the message has several
    last = " ".join("".join(traceback.format_exception_only(type(err), err)).split())
    payload = {"error": type(err).__name__, "message": str(err),
               "last_line": last if len(last) <= 400 else last[:397] + "...",
               "traceback": "".join(lines), "host": socket.gethostname(), "pid": os.getpid(),
               "job_id": job_id if job_id is not None else current_job_id(), "time": time.time()}
    write_json_atomic(Path(run_dir) / ERROR, payload)
    return payload


def read_error(run_dir: str | Path) -> dict[str, Any] | None:
    """The last attempt's ``error.json``, or None (missing or unreadable)."""
    try:
        value = read_json(Path(run_dir) / ERROR)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def clear_error(run_dir: str | Path) -> None:
    (Path(run_dir) / ERROR).unlink(missing_ok=True)

"""The one owner of a run directory: its file names, record, claim, error record, stored config and reuse rules.

    from bench.run import rundir
    read = rundir.read_record(run_dir)          # RecordRead: MISSING / CORRUPT (reason) / DONE / NOT_DONE
    read.done, read.record                      # "done" = status "done" and metrics present; nothing else
    rundir.check_reuse(run_dir, cfg)            # RunMismatchError if a stored config is another run
    got = rundir.acquire_claim(run_dir)         # Acquired(ok, claim, check): check.liveness says why busy
    rundir.remove_temp_files(run_dir)           # .*.tmp of killed atomic writes (only while holding the claim)
    rundir.write_record(run_dir, record); rundir.release_claim(run_dir)
    rundir.merge_into_record(run_dir, "latency", result)   # refuses to replace an existing section
    rundir.path_for(cfg)                        # cfg.run_dir, else output_root/run_id(cfg)
    rundir.checkpoint_file(run) / rundir.stored_config(run_dir, state) / rundir.read_log(run_dir) / ...

A run directory holds ``config.yaml`` (the resolved config), ``checkpoint.pt``, ``log.jsonl``, ``record.json``
(written once when the run is done), ``claim.json`` (while a process owns the run), ``error.json`` (how the
last attempt failed), ``latency.json``, ``eval.json`` and the loggers' ``tensorboard/``, ``mlflow/`` and
``wandb/``. This module is the only code that names them: everything else reads and writes them through the
functions here. Every write is atomic (``bench.run.records``) except the appended ``log.jsonl`` lines.

``claim.json`` is created complete: its content goes to a temporary file that is then ``os.link``-ed to the
name (fails if the name exists), so of several processes exactly one wins and an empty or unreadable claim can
only come from a broken disk; such a claim is taken over with a warning. A claim whose owner is gone (dead pid,
ended SLURM job) is taken over; one whose owner cannot be checked (SLURM not answering, another host) is left
alone unless ``take_over=True`` is passed on purpose.
"""

from __future__ import annotations

import enum
import json
import os
import socket
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.config import Config, ConfigError, check_inside, check_safe_name, load_config, to_yaml
from bench.run.fingerprint import code_changes, code_fingerprint
from bench.run.identity import differences, run_id
from bench.run.liveness import JobStatus, Liveness, current_job_id, pid_liveness, process_start_time, query_slurm_jobs
from bench.run.records import read_json, write_json_atomic, write_text_atomic

CONFIG = "config.yaml"
CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
RECORD = "record.json"
CLAIM = "claim.json"
ERROR = "error.json"
LATENCY = "latency.json"
EVAL = "eval.json"
TENSORBOARD = "tensorboard"
MLFLOW = "mlflow"  # the local MLflow file store of train.mlflow (train.mlflow_uri unset)
WANDB = "wandb"  # the offline W&B run of train.wandb
CURVES = "curves.png"  # bench curves, unless --out
# the files a report links for a run (HTML), in that order
REPORTED_FILES: tuple[str, ...] = (RECORD, CONFIG, LOG)
# a merge may add sections (latency, ...) but never replace what defines the run and its result
PROTECTED_SECTIONS = frozenset({"schema", "run_id", "status", "config", "config_hash", "code", "metrics"})
SHOWN_DIFFERENCES = 3
STALE_MARK = ".stale-"  # move_aside: <run>.stale-<n>


class RunDirError(ConfigError):
    """A run directory cannot be used as asked (corrupt record, refused merge...); the message says what to do."""


class RunStaleError(RunDirError):
    """The run's record was made by other code (``bench.run.fingerprint``)."""


class RunMismatchError(RunDirError):
    """The run directory holds another run (a stored config differs from the current one)."""


# --------------------------------------------------------------------------------------------------
# where a run lives, and its files


def path_for(cfg: Config) -> Path:
    """The run directory of ``cfg``: ``cfg.run_dir`` if set, else ``output_root/run_id(cfg)`` (a safe name, kept
    inside ``output_root``)."""
    if cfg.run_dir:
        return Path(cfg.run_dir)
    rid = check_safe_name(run_id(cfg), "run id")
    return check_inside(Path(cfg.output_root) / rid, cfg.output_root, "run dir")


def checkpoint_file(run: str | Path) -> Path:
    """``run`` itself when it is a file (or names one: ``*.pt``), else the run directory's checkpoint."""
    run = Path(run)
    return run if run.is_file() or run.suffix == ".pt" else run / CHECKPOINT


def run_name(run_dir: str | Path) -> str:
    """The run id its record states, else the folder's name."""
    record = read_record(run_dir).record
    rid = record.get("run_id") if record else None
    return str(rid) if isinstance(rid, str) and rid else Path(run_dir).resolve().name


def record_file(run_dir: str | Path) -> Path:
    """Where the run's record lives (for messages; read it with ``read_record``)."""
    return Path(run_dir) / RECORD


def has_checkpoint(run_dir: str | Path) -> bool:
    return (Path(run_dir) / CHECKPOINT).is_file()


def has_config(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is a run directory a launcher or ``bench train`` set up (it holds ``config.yaml``)."""
    return (Path(run_dir) / CONFIG).is_file()


def tensorboard_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / TENSORBOARD


def mlflow_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / MLFLOW


def wandb_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / WANDB


def curves_file(run_dir: str | Path) -> Path:
    return Path(run_dir) / CURVES


def reported_files(run_dir: str | Path) -> list[Path]:
    """The run's files a report links to (record, config, log), those that exist."""
    return [Path(run_dir) / name for name in REPORTED_FILES if (Path(run_dir) / name).is_file()]


def write_eval(run_dir: str | Path, payload: dict[str, Any]) -> Path:
    """``eval.json``: the result of ``bench eval`` on this run's checkpoint (atomic)."""
    return write_json_atomic(Path(run_dir) / EVAL, payload)


def write_latency(run_dir: str | Path, result: dict[str, Any]) -> Path:
    """``latency.json``: the last ``bench latency`` measurement of this run (atomic)."""
    return write_json_atomic(Path(run_dir) / LATENCY, result)


# --------------------------------------------------------------------------------------------------
# the training log


def log_file(run: str | Path) -> Path:
    """``run/log.jsonl``, or ``run`` itself when it is a file (a log given directly)."""
    run = Path(run)
    return run if run.is_file() or run.suffix == ".jsonl" else run / LOG


def append_log(run_dir: str | Path, entry: dict[str, Any]) -> None:
    """Append one JSON line to the run's ``log.jsonl``."""
    with open(Path(run_dir) / LOG, "a") as handle:
        handle.write(json.dumps(entry) + "\n")


@dataclass(frozen=True)
class LogRead:
    """The JSON objects of a ``log.jsonl``, the (line number, reason) of lines that are not JSON, the line count."""

    path: Path
    entries: list[dict[str, Any]]
    bad: list[tuple[int, str]]
    lines: int


def read_log(run: str | Path) -> LogRead:
    """A run's ``log.jsonl`` (or the log file given). Raises ``FileNotFoundError`` when there is none."""
    path = log_file(run)
    rows = path.read_text(errors="replace").splitlines()
    entries, bad = [], []
    for number, line in enumerate(rows, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:  # e.g. a line cut short when the process was killed
            bad.append((number, err.msg))
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return LogRead(path, entries, bad, len(rows))


def truncate_log(run_dir: str | Path, iteration: int, final: bool = False) -> None:
    """Drop log lines written after ``iteration`` (work lost when the run was interrupted) and cut-short lines.
    ``final``: the checkpoint at ``iteration`` is the last one and is about to be evaluated again, so its
    validation line goes too (one validation line per evaluation)."""
    path = Path(run_dir) / LOG
    if not path.is_file():
        return
    kept = [
        json.dumps(entry)
        for entry in read_log(path).entries
        if entry.get("iter", 0) < iteration or (entry.get("iter", 0) == iteration and not (final and "val" in entry))
    ]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


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
        what = "not valid JSON" if isinstance(detail, ValueError) else type(detail).__name__
        reason = f"{path} is unreadable ({what}: {' '.join(str(detail).split())[:200]})"
        return RecordRead(RecordState.CORRUPT, reason=reason)
    if not isinstance(record, dict):
        what = "null" if record is None else f"a JSON {'array' if isinstance(record, list) else type(record).__name__}"
        return RecordRead(RecordState.CORRUPT, reason=f"{path} holds {what}, not a record (a JSON object)")
    if is_done(record):
        return RecordRead(RecordState.DONE, record)
    why = f"status {record.get('status')!r}" if record.get("status") != "done" else "no metrics"
    return RecordRead(RecordState.NOT_DONE, record, f"{path} is not a finished record ({why})")


def run_dirs_below(folder: str | Path) -> list[Path]:
    """Every folder below ``folder`` (itself included) that holds a ``record.json``, sorted; run folders moved
    aside as stale (``move_aside``) are left out."""
    return sorted(path.parent for path in Path(folder).rglob(RECORD) if STALE_MARK not in path.parent.name)


def move_aside(run_dir: str | Path) -> Path:
    """Rename a run folder made by other code to ``<name>.stale-<n>`` (the first free n; nothing is deleted)."""
    run_dir = Path(run_dir)
    n = 1
    while run_dir.with_name(f"{run_dir.name}{STALE_MARK}{n}").exists():
        n += 1
    target = run_dir.with_name(f"{run_dir.name}{STALE_MARK}{n}")
    run_dir.rename(target)
    return target


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
        raise RunDirError(
            f"{Path(run_dir) / RECORD} already has {section!r}; not replaced (pass overwrite=True "
            f"to replace it on purpose)"
        )
    record = {**read.record, section: value}
    write_record(run_dir, record)
    return record


# --------------------------------------------------------------------------------------------------
# the stored config and reuse


def write_config(run_dir: str | Path, cfg: Config) -> Path:
    """Write the resolved config to ``run_dir/config.yaml`` (atomic)."""
    return write_text_atomic(Path(run_dir) / CONFIG, to_yaml(cfg))


def read_config(run_dir: str | Path) -> Config:
    """The ``Config`` stored in ``run_dir/config.yaml``; a missing or invalid file is a one-line ``RunDirError``."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunDirError(
            f"{path} does not exist; a launcher writes it before starting the run "
            f"(or start it with `bench train CONFIG`)"
        )
    try:
        return load_config(path)
    except ConfigError as err:
        text = str(err) if str(err).startswith(str(path)) else f"{path}: {err}"
        raise RunDirError(
            f"{text}; fix that file, or delete it and launch the run again (bench sweep SPEC writes it)"
        ) from None


def _stored_config_yaml(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise RunDirError(f"{path} is unreadable ({type(err).__name__}); delete it (it is rewritten)") from err
    return values if isinstance(values, dict) else None


def _stored_configs(run_dir: Path, read: RecordRead) -> list[tuple[str, dict[str, Any]]]:
    """(file name, stored config) of record.json, config.yaml and, for an unfinished run without config.yaml,
    checkpoint.pt (with config.yaml present the checkpoint was written under it: the claim holder wrote both)."""
    stored = []
    if read.record is not None and isinstance(read.record.get("config"), dict):
        stored.append((RECORD, read.record["config"]))
    config_yaml = _stored_config_yaml(run_dir / CONFIG)
    if config_yaml is not None:
        stored.append((CONFIG, config_yaml))
    elif not read.done and (run_dir / CHECKPOINT).is_file():
        from bench.engine.checkpoint import load_checkpoint  # torch only when a checkpoint is read (start-up time)

        state = load_checkpoint(run_dir / CHECKPOINT)
        if isinstance(state.get("config"), dict):
            stored.append((CHECKPOINT, state["config"]))
    return stored


@dataclass(frozen=True)
class Reuse:
    """What a run directory holds for a config: the one reuse decision (``inspect_reuse``).

    ``problem`` says why the folder cannot be used for the config, with the way out: another run's record,
    config or checkpoint (``mismatch``), or a corrupt file. ``done``: a finished record of this very config.
    """

    read: RecordRead
    problem: str = ""
    mismatch: bool = False
    stale: tuple[str, ...] = ()  # what code changed since the record was made (``fingerprint.code_changes``)

    @property
    def done(self) -> bool:
        return self.read.done and not self.problem

    def raise_problem(self) -> None:
        if self.problem:
            kind = RunMismatchError if self.mismatch else RunStaleError if self.stale else RunDirError
            raise kind(self.problem)


def _mismatch(run_dir: Path, name: str, diffs: list[str]) -> str:
    shown = "; ".join(diffs[:SHOWN_DIFFERENCES])
    more = f" (+{len(diffs) - SHOWN_DIFFERENCES} more)" if len(diffs) > SHOWN_DIFFERENCES else ""
    return (
        f"{run_dir} holds another run ({name}: {shown}{more}); use another run_dir (or output_root), or delete "
        f"{run_dir} to start over"
    )


def inspect_reuse(run_dir: str | Path, cfg: Config) -> Reuse:
    """Whether ``run_dir`` can hold ``cfg``: record.json, config.yaml and checkpoint.pt are reused only if
    ``identity.differences(stored, cfg)`` is empty. Never raises for what it finds (see ``Reuse``); a new
    derived run dir whose run already exists under an older id is a mismatch that names the ``mv``."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        moved = "" if cfg.run_dir else _moved_run(run_dir, cfg)
        return Reuse(RecordRead(RecordState.MISSING), moved, mismatch=bool(moved))
    read = read_record(run_dir)
    if read.state is RecordState.CORRUPT:
        return Reuse(read, f"{read.reason}; delete it to recompute the record (the checkpoint is resumed)")
    try:
        stored = _stored_configs(run_dir, read)
    except RunDirError as err:
        return Reuse(read, str(err))
    for name, values in stored:
        diffs = differences(values, cfg)
        if diffs:
            return Reuse(read, _mismatch(run_dir, name, diffs), mismatch=True)
    if read.done and read.record is not None:
        changes = code_changes(read.record.get("code"), code_fingerprint(cfg.plugins))
        if changes:
            return Reuse(read, _stale(run_dir, changes), stale=tuple(changes))
    return Reuse(read)


def _stale(run_dir: Path, changes: list[str]) -> str:
    return (
        f"stale: code changed ({'; '.join(changes)}) since {run_dir / RECORD} was made; --rerun-stale trains "
        f"it again (the old folder is kept as {run_dir.name}{STALE_MARK}1), --accept-stale uses the old record "
        f"as it is"
    )


def check_reuse(run_dir: str | Path, cfg: Config) -> RecordRead:
    """``inspect_reuse``, raising its problem: ``RunMismatchError`` (another run) or ``RunDirError``."""
    reuse = inspect_reuse(run_dir, cfg)
    reuse.raise_problem()
    return reuse.read


def _moved_run(run_dir: Path, cfg: Config) -> str:
    """Why not to train: a sibling folder holds this very run under an id of an older id scheme ("" if none)."""
    parent = run_dir.parent
    if not parent.is_dir():
        return ""
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
            return (
                f"this run already exists as {sibling} (an older run id); rename it so it is reused instead of "
                f"trained again: mv {sibling} {run_dir}"
            )
    return ""


def stored_config(run_dir: str | Path, checkpoint_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run's resolved config dict: the checkpoint's (``checkpoint_state``), else ``config.yaml``, else
    ``record.json``'s; none of them is a ``RunDirError`` that says how to evaluate such a checkpoint."""
    run_dir = Path(run_dir)
    if checkpoint_state is not None and isinstance(checkpoint_state.get("config"), dict):
        return checkpoint_state["config"]
    stored = _stored_config_yaml(run_dir / CONFIG)
    if stored is not None:
        return stored
    record = read_record(run_dir).record
    if record is not None and isinstance(record.get("config"), dict):
        return record["config"]
    raise RunDirError(
        f"no config for the checkpoint in {run_dir}: it holds none and there is no {CONFIG} or "
        f"{RECORD} next to it; evaluate it with the config it was trained with"
    )


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
    path = Path(run_dir) / CLAIM
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
    liveness, why = pid_liveness(claim.host, claim.pid, claim.pid_start)
    return ClaimCheck(liveness, why)


def take_over_hint(run_dir: str | Path) -> str:
    return (
        f"if you know it is gone, take the run over on purpose: `bench sweep SPEC --take-over` "
        f"(`bench train ... --take-over` for one run), or delete {Path(run_dir) / CLAIM}"
    )


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
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    payload = {
        "error": type(err).__name__,
        "message": str(err),
        "last_line": last if len(last) <= 400 else last[:397] + "...",
        "traceback": "".join(lines),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "job_id": job_id if job_id is not None else current_job_id(),
        "time": time.time(),
    }
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

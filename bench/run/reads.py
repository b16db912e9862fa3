"""Typed answers about a run directory: the record's state, the reuse decision, and the errors of a run folder.

    from bench.run.rundir import RunDir
    read = RunDir(path).read_record()        # RecordRead: MISSING / CORRUPT (reason) / DONE / NOT_DONE
    read.done, read.record                   # "done" = status "done" and metrics present (is_done); nothing else
    reuse = RunDir(path).inspect_reuse(cfg)  # Reuse: done, problem, mismatch, stale; raise_problem()

``bench.run.rundir`` produces these values; this module only defines them (and what "done" means), so that
readers (grid status, reports) can name the states without knowing a file name.
"""

from __future__ import annotations

import enum
import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.atomic import read_json
from bench.config import ConfigError
from bench.errors import BenchError, shorten
from bench.run.validity import record_problem

SHOWN_DIFFERENCES = 3


class RunDirError(ConfigError):
    """A run directory cannot be used as asked (corrupt record, refused merge...); the message says what to do."""


class RunStaleError(RunDirError):
    """The run's record was made by other code (``bench.run.fingerprint``)."""


class RunMismatchError(RunDirError):
    """The run directory holds another run (a stored config differs from the current one)."""


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


@dataclass(frozen=True)
class Reuse:
    """What a run directory holds for a config: the one reuse decision (``RunDir.inspect_reuse``).

    ``problem`` says why the folder cannot be used for the config, with the way out: another run's record,
    config or checkpoint (``mismatch``), or a corrupt file. ``done``: a finished record of this very config.
    """

    read: RecordRead
    problem: str = ""
    mismatch: bool = False
    stale: tuple[str, ...] = ()  # what code changed since the record was made (``fingerprint.code_changes``)
    unchecked: tuple[str, ...] = ()  # plugins of a done record whose code cannot be found here (not checked)

    @property
    def done(self) -> bool:
        return self.read.done and not self.problem

    def raise_problem(self) -> None:
        if self.problem:
            kind = RunMismatchError if self.mismatch else RunStaleError if self.stale else RunDirError
            raise kind(self.problem)


def read_record_at(path: Path) -> RecordRead:
    """Read the record file ``path`` without raising: missing, corrupt (with the reason), done or not done."""
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
        problem = record_problem(record)  # the one validity check (status, sweep and report alike)
        if problem:
            return RecordRead(RecordState.CORRUPT, record, f"{path}: {problem}")
        return RecordRead(RecordState.DONE, record)
    why = f"status {record.get('status')!r}" if record.get("status") != "done" else "no metrics"
    return RecordRead(RecordState.NOT_DONE, record, f"{path} is not a finished record ({why})")


def read_config_dict(path: Path) -> dict[str, Any] | None:
    """The mapping a stored config file holds (None when missing or not a mapping); unreadable: ``RunDirError``."""
    if not path.is_file():
        return None
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise RunDirError(f"{path} is unreadable ({type(err).__name__}); delete it (it is rewritten)") from err
    return values if isinstance(values, dict) else None


def foreign_folder(folder: Path, config_file: Path, run_files: frozenset[str]) -> str:
    """Why ``folder`` is not a run of this suite ("" when it is one, or is empty): its ``config_file`` holds
    something other than a config mapping, or it holds files but none of a run's (``run_files``). Training there
    would overwrite or rewrite what it holds."""
    if not folder.is_dir():
        return f"{folder} is not a folder; choose another run_dir" if folder.exists() else ""
    way_out = "choose a new or empty run_dir (or output_root); nothing in it was changed"
    if config_file.is_file():
        try:
            values = yaml.safe_load(config_file.read_text())
        except (OSError, yaml.YAMLError, ValueError):
            return ""  # unreadable: read_config_dict says so
        if not isinstance(values, dict):
            what = "nothing" if values is None else f"a {type(values).__name__}"
            return f"{folder} is not a run folder of bench: {config_file.name} holds {what}, not a config; {way_out}"
        return ""
    names = sorted(entry.name for entry in folder.iterdir() if not entry.name.startswith("."))
    if names and not set(names) & run_files:
        shown = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
        return f"{folder} is not a run folder of bench (it holds {shown}); {way_out}"
    return ""


def error_payload(err: BaseException, job_id: str | None) -> dict[str, Any]:
    """What ``error.json`` holds: exception type, message, the traceback and its last line, where and when."""
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    # the traceback's last entry ("ValueError: message"), on one line even when the message has several; a long
    # one keeps its end (a dataset error ends with what to download and from where)
    last = shorten("".join(traceback.format_exception_only(type(err), err)), 400)
    return {
        "error": type(err).__name__,
        "user_error": isinstance(err, BenchError),  # bad input or files, the same for every run that reads them
        "message": str(err),
        "last_line": last,
        "traceback": "".join(lines),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "job_id": job_id,
        "time": time.time(),
    }


def mismatch_text(run_dir: Path, name: str, diffs: list[str]) -> str:
    """Why ``run_dir`` cannot hold the run: its file ``name`` stores another config (the first differences)."""
    shown = "; ".join(diffs[:SHOWN_DIFFERENCES])
    more = f" (+{len(diffs) - SHOWN_DIFFERENCES} more)" if len(diffs) > SHOWN_DIFFERENCES else ""
    return (
        f"{run_dir} holds another run ({name}: {shown}{more}); use another run_dir (or output_root), or delete "
        f"{run_dir} to start over"
    )


def stale_text(record_file: Path, stale_mark: str, changes: list[str]) -> str:
    """Why a finished record is not reused: other code made it (``changes``), and the two ways out."""
    return (
        f"stale: code changed ({'; '.join(changes)}) since {record_file} was made; --rerun-stale trains "
        f"it again (the old folder is kept as {record_file.parent.name}{stale_mark}1), --accept-stale uses the old "
        f"record as it is"
    )

"""The run directory as an object: every file name, the record, the claim, the error record, the stored config
and the reuse rule of one run, in one place.

    from bench.run.rundir import RunDir
    run = RunDir.of(cfg)                      # cfg.run_dir, else output_root/<run id> (RunDir(path) for any folder)
    read = run.read_record()                  # RecordRead: MISSING / CORRUPT (reason) / DONE / NOT_DONE
    run.check_reuse(identity)                 # RunMismatchError if a stored config is another run
    got = run.acquire_claim(job_id)           # Acquired(ok, claim, check): check.liveness says why busy
    run.remove_temp_files(job_id)             # .*.tmp of killed atomic writes (only while holding the claim)
    run.write_record(record); run.release_claim(job_id)
    run.merge_into_record("latency", result)  # refuses to replace an existing section
    run.checkpoint, run.log, run.record_file, run.tensorboard_dir, ...   # paths, for messages and the trainer

The files (docs/architecture.md, "Runs") are named here only (``tests/test_architecture.py``); every other module
reads and writes them through a ``RunDir``. Writes are atomic (``bench.atomic``) except the appended log lines
(``bench.engine.train_log``). Claims: ``bench.run.claims``; the typed answers: ``bench.run.reads``. **Reuse**
(``bench.run.reuse``): a stored record or config is reused only when its config computes the same run
(``differences`` empty), a finished record only when the same code made it (``bench.run.fingerprint``), a
checkpoint only when its stamp names this run and this code (``bench.run.resume``), and a folder only when it is
a run of this suite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.atomic import read_json, write_json_atomic, write_text_atomic
from bench.config import Config, ConfigError, check_inside, check_safe_name, load_config, to_yaml
from bench.engine import train_log
from bench.engine.job import TrainPaths
from bench.run import claims, reuse
from bench.run.identity import RunIdentity
from bench.run.liveness import current_job_id
from bench.run.reads import (
    RecordRead,
    RecordState,
    Reuse,
    RunDirError,
    RunMismatchError,
    RunStaleError,
    error_payload,
    foreign_folder,
    is_done,
    read_config_dict,
    read_record_at,
)
from bench.run.resume import Verdict, checkpoint_verdict

__all__ = [
    "RunDir", "RunDirError", "RunMismatchError", "RunStaleError", "RecordRead", "RecordState", "Reuse", "is_done"
]  # fmt: skip

CONFIG = "config.yaml"
CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"
RECORD = "record.json"
CLAIM = "claim.json"
ERROR = "error.json"
LATENCY = "latency.json"
EVAL = "eval.json"
VIDEOS_SECTION = "videos"  # the record section bench eval --record adds: whole-video metrics of a clip-evaluated run
TENSORBOARD = "tensorboard"
MLFLOW = "mlflow"  # the local MLflow file store of train.mlflow (train.mlflow_uri unset)
WANDB = "wandb"  # the offline W&B run of train.wandb
CURVES = "curves.png"  # bench curves, unless --out
# the files a report links for a run (HTML), in that order
REPORTED_FILES: tuple[str, ...] = (RECORD, CONFIG, LOG)
# a merge may add sections (latency, ...) but never replace what defines the run and its result
PROTECTED_SECTIONS = frozenset({"schema", "run_id", "status", "config", "config_hash", "code", "metrics"})
STALE_MARK = ".stale-"  # move_aside: <run>.stale-<n>
# files only a run of this suite makes: a folder holding others but none of these is not a run (foreign_folder)
RUN_FILES = frozenset({CONFIG, CHECKPOINT, RECORD, CLAIM, ERROR})


class RunDir:
    """One run's folder (``RunDir(path)``; ``RunDir.of(cfg)`` for a config's). Equal when the paths are;
    ``os.fspath`` and ``str`` give the path."""

    stale_mark = STALE_MARK

    def __init__(self, path: str | Path | RunDir) -> None:
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @classmethod
    def of(cls, cfg: Config, run_id: str | None = None) -> RunDir:
        """``cfg.run_dir`` if set, else ``output_root/<run id>`` (a safe name, kept inside ``output_root``).
        ``run_id``: the id already computed for ``cfg`` (``RunIdentity``), else it is computed here."""
        if cfg.run_dir:
            return cls(cfg.run_dir)
        rid = check_safe_name(run_id or RunIdentity.of(cfg).run_id, "run id")
        return cls(check_inside(Path(cfg.output_root) / rid, cfg.output_root, "run dir"))

    @staticmethod
    def below(folder: str | Path) -> list[Path]:
        """Every folder below ``folder`` (itself included) that holds a ``record.json``, sorted; run folders moved
        aside as stale (``move_aside``) are left out."""
        return sorted(path.parent for path in Path(folder).rglob(RECORD) if STALE_MARK not in path.parent.name)

    @staticmethod
    def checkpoint_of(run: str | Path) -> Path:
        """``run`` itself when it is a file (or names one: ``*.pt``), else the run directory's checkpoint."""
        run = Path(run)
        return run if run.is_file() or run.suffix == ".pt" else run / CHECKPOINT

    @staticmethod
    def log_of(run: str | Path) -> Path:
        """``run/log.jsonl``, or ``run`` itself when it is a file (a log given directly)."""
        run = Path(run)
        return run if run.is_file() or run.suffix == ".jsonl" else run / LOG

    # ----------------------------------------------------------------------------------------------
    # files

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def log(self) -> Path:
        return self.path / LOG

    @property
    def record_file(self) -> Path:
        """Where the run's record lives (for messages; read it with ``read_record``)."""
        return self.path / RECORD

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def claim_file(self) -> Path:
        return self.path / CLAIM

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def mlflow_dir(self) -> Path:
        return self.path / MLFLOW

    @property
    def wandb_dir(self) -> Path:
        return self.path / WANDB

    @property
    def latency_file(self) -> Path:
        """Where ``bench latency`` keeps its last measurement (``write_latency``)."""
        return self.path / LATENCY

    @property
    def curves_file(self) -> Path:
        return self.path / CURVES

    def train_paths(self) -> TrainPaths:
        """Where the training engine writes: the checkpoint, the log, the loggers' folders."""
        return TrainPaths(self.path, self.checkpoint, self.log, self.tensorboard_dir, self.mlflow_dir, self.wandb_dir)

    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file()

    def has_config(self) -> bool:
        """Whether this is a run directory a launcher or ``bench train`` set up (it holds ``config.yaml``)."""
        return self.config_file.is_file()

    def reported_files(self) -> list[Path]:
        """The run's files a report links to (record, config, log), those that exist."""
        return [self.path / name for name in REPORTED_FILES if (self.path / name).is_file()]

    def name(self) -> str:
        """The run id its record states, else the folder's name."""
        record = self.read_record().record
        rid = record.get("run_id") if record else None
        return str(rid) if isinstance(rid, str) and rid else self.path.resolve().name

    def write_eval(self, payload: dict[str, Any]) -> Path:
        """``eval.json``: the result of ``bench eval`` on this run's checkpoint (atomic)."""
        return write_json_atomic(self.path / EVAL, payload)

    def write_latency(self, result: dict[str, Any]) -> Path:
        """``latency.json``: the last ``bench latency`` measurement of this run (atomic)."""
        return write_json_atomic(self.latency_file, result)

    def read_log(self) -> train_log.LogRead:
        """The run's ``log.jsonl`` (``FileNotFoundError`` when there is none)."""
        return train_log.read_log(self.log)

    def move_aside(self) -> RunDir:
        """Rename a run folder made by other code to ``<name>.stale-<n>`` (the first free n; nothing is deleted)."""
        n = 1
        while self.path.with_name(f"{self.path.name}{STALE_MARK}{n}").exists():
            n += 1
        target = self.path.with_name(f"{self.path.name}{STALE_MARK}{n}")
        self.path.rename(target)
        return RunDir(target)

    # ----------------------------------------------------------------------------------------------
    # the record

    def read_record(self) -> RecordRead:
        """Read ``record.json`` without raising: missing, corrupt (with the reason), done or not done."""
        return read_record_at(self.record_file)

    def write_record(self, record: dict[str, Any]) -> Path:
        """Write ``record.json`` atomically (readers see the old file or the complete new one)."""
        return write_json_atomic(self.record_file, record)

    def merge_into_record(self, section: str, value: Any, overwrite: bool = False) -> dict[str, Any]:
        """Add ``section`` to the run's record and write it back; returns the new record.

        Refuses (``RunDirError``) when there is no readable record, when ``section`` exists and ``overwrite`` is
        False, and always for the sections that define the run (``PROTECTED_SECTIONS``).
        """
        read = self.read_record()
        if read.record is None or read.state is RecordState.CORRUPT:
            raise RunDirError(read.reason or f"{self.record_file} does not exist: the run has not finished")
        if section in PROTECTED_SECTIONS:
            raise RunDirError(f"record section {section!r} defines the run and cannot be replaced by a merge")
        if section in read.record and not overwrite:
            raise RunDirError(
                f"{self.record_file} already has {section!r}; not replaced (pass overwrite=True "
                f"to replace it on purpose)"
            )
        record = {**read.record, section: value}
        self.write_record(record)
        return record

    # ----------------------------------------------------------------------------------------------
    # the stored config

    def write_config(self, cfg: Config) -> Path:
        """Write the resolved config to ``config.yaml`` (atomic)."""
        return write_text_atomic(self.config_file, to_yaml(cfg))

    def read_config(self) -> Config:
        """The ``Config`` stored in ``config.yaml``; a missing or invalid file is a one-line ``RunDirError``."""
        path = self.config_file
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

    def stored_yaml(self) -> dict[str, Any] | None:
        """The mapping ``config.yaml`` holds, None when missing or not a mapping (``RunDirError``: unreadable)."""
        return read_config_dict(self.config_file)

    def stored_config(self, checkpoint_state: dict[str, Any] | None = None) -> dict[str, Any]:
        """The run's resolved config dict: the checkpoint's (``checkpoint_state``), else ``config.yaml``, else
        ``record.json``'s; none of them is a ``RunDirError`` that says how to evaluate such a checkpoint."""
        if checkpoint_state is not None and isinstance(checkpoint_state.get("config"), dict):
            return checkpoint_state["config"]
        stored = self.stored_yaml()
        if stored is not None:
            return stored
        record = self.read_record().record
        if record is not None and isinstance(record.get("config"), dict):
            return record["config"]
        raise RunDirError(
            f"no config for the checkpoint in {self.path}: it holds none and there is no {CONFIG} or "
            f"{RECORD} next to it; evaluate it with the config it was trained with"
        )

    # ----------------------------------------------------------------------------------------------
    # reuse

    def checkpoint_verdict(self, ident: RunIdentity) -> Verdict:
        """Whether this run may resume the folder's ``checkpoint.pt`` (``bench.run.resume``): its stamp names
        this config and the code running now; no checkpoint is no problem."""
        if not self.checkpoint.is_file():
            return Verdict()
        from bench.engine.checkpoint import read_stamp  # torch only when a checkpoint is read (start-up)

        return checkpoint_verdict(self.checkpoint, read_stamp(self.checkpoint), ident, STALE_MARK)

    def inspect_reuse(self, run: Config | RunIdentity) -> Reuse:
        """Whether this folder can hold the run of ``run`` (a config, or its ``RunIdentity`` computed once): THE
        reuse decision, ``bench.run.reuse.inspect``. Never raises for what it finds (see ``Reuse``)."""
        return reuse.inspect(self, run if isinstance(run, RunIdentity) else RunIdentity.of(run))

    def check_reuse(self, run: Config | RunIdentity) -> RecordRead:
        """``inspect_reuse``, raising its problem: ``RunMismatchError`` (another run), ``RunStaleError`` or
        ``RunDirError``."""
        found = self.inspect_reuse(run)
        found.raise_problem()
        return found.read

    def foreign(self) -> str:
        """Why this folder is not a run of this suite ("" when it is one, or does not exist): ``foreign_folder``."""
        return foreign_folder(self.path, self.config_file, RUN_FILES)

    @staticmethod
    def sibling_config(path: Path) -> dict[str, Any] | None:
        """The stored config of the run folder ``path``: its ``config.yaml``, else its record's (None if neither)."""
        other = RunDir(path)
        try:
            stored = other.stored_yaml()
        except RunDirError:
            stored = None
        stored = stored or (other.read_record().record or {}).get("config")
        return stored if isinstance(stored, dict) else None

    # ----------------------------------------------------------------------------------------------
    # claims (bench.run.claims)

    def read_claim(self) -> claims.ClaimRead:
        """``claim.json``: missing, corrupt (empty / unreadable, with the reason) or present."""
        return claims.read_claim(self.claim_file)

    def acquire_claim(self, job_id: str | None = None, take_over: bool = False) -> claims.Acquired:
        """Claim this run for this process (or SLURM job ``job_id``); see ``bench.run.claims.acquire``."""
        return claims.acquire(self.claim_file, job_id, take_over)

    def release_claim(self, job_id: str | None = None) -> None:
        """Remove ``claim.json`` if this process (or this SLURM job) holds it."""
        claims.release(self.claim_file, job_id)

    def take_over_hint(self) -> str:
        return claims.take_over_hint(self.claim_file)

    def remove_temp_files(self, job_id: str | None = None, untagged: bool = True) -> list[Path]:
        """Delete ``.*.tmp`` files (atomic writes cut short by a kill) whose writer is gone (``claims.writer_gone``:
        a live writer keeps its file; ``untagged``: also those of older code, which name no writer); only while
        holding the folder's claim (else ``RunDirError``)."""
        if not claims.holds(self.claim_file, job_id):
            raise RunDirError(f"{self.path}: temporary files are only removed by the claim's holder")
        removed = []
        for tmp in self.path.glob(".*.tmp"):
            if tmp.is_file() and claims.writer_gone(tmp.name, job_id, untagged):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        return removed

    def clean_leftovers(self) -> list[Path]:
        """The temporary files of gone writers in a run nobody is at work on (a killed run's checkpoint ``.tmp``):
        the claim is taken only when free or its owner is gone, and released at once; a folder that is not a run,
        and files that name no writer, are left alone. Returns what was removed."""
        if not any(self.path.glob(".*.tmp")) or self.foreign() or not self.acquire_claim().ok:
            return []
        try:
            return self.remove_temp_files(untagged=False)
        finally:
            self.release_claim()

    # ----------------------------------------------------------------------------------------------
    # error records

    def write_error(self, err: BaseException, job_id: str | None = None) -> dict[str, Any]:
        """Write ``error.json``: exception type, message, the traceback and its last line."""
        payload = error_payload(err, job_id if job_id is not None else current_job_id())
        write_json_atomic(self.path / ERROR, payload)
        return payload

    def read_error(self) -> dict[str, Any] | None:
        """The last attempt's ``error.json``, or None (missing or unreadable)."""
        try:
            value = read_json(self.path / ERROR)
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def clear_error(self) -> None:
        (self.path / ERROR).unlink(missing_ok=True)

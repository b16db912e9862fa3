"""Atomic file writes, the environment a run ran in, and the ``record.json`` schema (``make_record``).

    from bench.run.records import make_record, write_json_atomic
    write_json_atomic(path, obj)       # temporary file + fsync + os.replace: readers never see half a file
    stamp = RunStamp.of(cfg)           # run id, config, hash and classes, computed once per run
    record = make_record(stamp, metrics=..., device="cpu", wall_time_s=..., iters=..., checkpoint=..., batch_size=8)

Reading a run's record, and what "done" means, belong to ``bench.run.rundir`` (``read_record``). The record
fields are listed in docs/architecture.md ("record.json").
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from bench import __version__
from bench.config import Config, to_dict
from bench.data.catalog import dataset_info
from bench.run.fingerprint import code_fingerprint
from bench.run.identity import config_hash, run_id_of

RECORD_SCHEMA = 1
REPO_ROOT = Path(__file__).resolve().parents[2]


def _json_ready(obj: Any) -> Any:
    """Replace NaN/inf floats by None (JSON has no NaN), tuples by lists and paths by strings, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return _json_ready(obj.item())
    return obj


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (temporary file in the same folder + os.replace).

    NaN and inf become ``null``. Parent folders are created. Returns the path.
    """
    return write_text_atomic(path, json.dumps(_json_ready(obj), indent=2, allow_nan=False) + "\n")


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: readers see the old file or the complete new one."""
    return write_atomic(path, lambda handle: handle.write(text.encode()))


def write_atomic(path: str | Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(handle)`` on a temporary file in ``path``'s folder, fsync it, then ``os.replace`` it onto
    ``path``: a crash mid-write leaves the previous file intact. Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, default_file_mode())  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# OSErrors that mean "this place cannot be written" rather than a bug
_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def write_problem(err: BaseException) -> str | None:
    """One line saying what to do for an ``OSError`` of a full disk, a quota, a read-only folder or a refused
    permission (writes are atomic: nothing already there was lost); None for any other error."""
    if not isinstance(err, OSError) or err.errno not in _FULL + _READ_ONLY:
        return None
    where = err.filename or "the output folder"
    folder = Path(str(where)).parent if err.filename else Path(".")
    if err.errno in _FULL:
        return (
            f"cannot write {where}: {err.strerror}; free space there (df -h {folder}) and rerun the same "
            f"command (what was written before is intact)"
        )
    return (
        f"cannot write {where}: {err.strerror}; choose a writable folder (output_root=..., run_dir=..., "
        f"--out, --save-preds) or fix its permissions, then rerun"
    )


def ensure_writable(folder: str | Path) -> Path:
    """Create ``folder`` and write (then remove) a probe file in it, so a full disk or a read-only folder
    fails before any work starts (an ``OSError`` naming the folder; ``write_problem`` says what to do)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(folder)) from err
    os.close(fd)
    Path(probe).unlink(missing_ok=True)
    return folder


def default_file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask (0644 with the usual 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; a malformed file is a ``ValueError`` naming it (callers say what to do about it)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from err


def git_commit(repo: str | Path = REPO_ROOT) -> str | None:
    """``git rev-parse HEAD`` of ``repo``, or None outside a git checkout / without commits / without git."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def git_dirty(repo: str | Path = REPO_ROOT) -> bool | None:
    """True when ``git status --porcelain`` of ``repo`` lists changes (tracked or untracked), None without git."""
    try:
        result = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(result.stdout.strip()) if result.returncode == 0 else None


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    """Versions of python, torch, torchvision, timm, numpy, OpenCV (classical flow) and bench (None for a
    missing package)."""
    import torch  # records are read where torch is absent (reports); only a run that writes one imports it

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "timm": _version("timm"),
        "numpy": _version("numpy"),
        "opencv": _version("opencv-python-headless") or _version("opencv-python"),
        "bench": __version__,
        "cuda": torch.version.cuda,
    }


def environment_info() -> dict[str, Any]:
    """Where and with what a run executes: git commit and dirty flag, package versions, host, CPU model and
    count, GPU name (reports print them as the provenance of a table, bench.report.provenance)."""
    import torch  # see package_versions

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "versions": package_versions(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "argv": list(sys.argv),
    }


@dataclass(frozen=True)
class RunStamp:
    """What identifies a run in its checkpoints and record, computed once per run (``RunStamp.of(cfg)``)."""

    run_id: str
    name: str
    model: str
    dataset: str
    seed: int
    config: dict[str, Any]
    config_hash: str
    classes: tuple[str, ...]
    code: dict[str, Any]

    @classmethod
    def of(cls, cfg: Config) -> RunStamp:
        digest = config_hash(cfg)
        rid = run_id_of(cfg.model.name, digest)
        return cls(
            rid,
            cfg.name or rid,
            cfg.model.name,
            cfg.data.dataset,
            cfg.train.seed,
            to_dict(cfg),
            digest,
            tuple(dataset_info(cfg.data).class_names),
            code_fingerprint(cfg.plugins),
        )


def make_record(
    stamp: RunStamp,
    *,
    metrics: dict[str, Any],
    device: str,
    wall_time_s: float,
    iters: int,
    checkpoint: str | Path | None,
    batch_size: int,
    status: str = "done",
    batch_size_per_rank: int | None = None,
    world_size: int = 1,
) -> dict[str, Any]:
    """The ``record.json`` dict of a finished run (schema in docs/architecture.md).

    ``batch_size`` is the global batch (``train.batch_size``); ``batch_size_per_rank`` (default: global /
    ``world_size``) is each DDP process's share.
    """
    env = environment_info()
    return {
        "schema": RECORD_SCHEMA,
        "run_id": stamp.run_id,
        "name": stamp.name,
        "status": status,
        "model": stamp.model,
        "dataset": stamp.dataset,
        "seed": stamp.seed,
        "config": stamp.config,
        "config_hash": stamp.config_hash,
        "code": stamp.code,
        "git_commit": env.pop("git_commit"),
        "versions": env.pop("versions"),
        "device": device,
        "environment": env,
        "wall_time_s": round(float(wall_time_s), 3),
        "iters": int(iters),
        "world_size": int(world_size),
        "batch_size_global": int(batch_size),
        "batch_size_per_rank": int(batch_size_per_rank or batch_size // max(world_size, 1)),
        "metrics": metrics,
        "checkpoint": None if checkpoint is None else str(checkpoint),
    }

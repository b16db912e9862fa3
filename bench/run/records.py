"""The environment a run ran in, and the ``record.json`` schema (``make_record``).

    from bench.run.records import make_record, RunStamp
    stamp = RunStamp.of(ident)         # run id, config, hash and classes of the run's RunIdentity
    record = make_record(stamp, metrics=..., device="cpu", wall_time_s=..., iters=..., checkpoint=..., batch_size=8)

Reading a run's record, and what "done" means, belong to ``bench.run.rundir`` (``RunDir.read_record``). The record
fields are listed in docs/architecture.md ("record.json").
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import __version__
from bench.config import Config, to_dict
from bench.data.catalog import dataset_info
from bench.evaluation.measure import cpu_details, cpu_model
from bench.run.fingerprint import code_fingerprint, git_state
from bench.run.identity import RunIdentity
from bench.run.validity import RECORD_SCHEMA


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
    """Where and with what a run executes: git commit and dirty flag (those of ``fingerprint.git_state``, as in
    the record's ``code``), package versions, host, CPU model, its family / model / stepping and ISA flags, torch's
    CPU kernel level, CPU count, torch threads, GPU name (reports print them as the provenance of a table,
    bench.report.provenance)."""
    import torch  # see package_versions

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    commit, dirty = git_state()  # the code fingerprint's: one answer for code.dirty and environment.git_dirty
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": package_versions(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu": cpu_details(),  # family / model / stepping and the ISA flags that decide torch's kernels
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the kernels torch picked: AVX2, AVX512...
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
    def of(cls, run: Config | RunIdentity) -> RunStamp:
        """The stamp of a run: its ``RunIdentity`` (computed once per run), or a config (computed here)."""
        ident = run if isinstance(run, RunIdentity) else RunIdentity.of(run)
        cfg = ident.config
        return cls(
            ident.run_id,
            cfg.name or ident.run_id,
            cfg.model.name,
            cfg.data.dataset,
            cfg.train.seed,
            to_dict(cfg),
            ident.config_hash,
            tuple(dataset_info(cfg.data).class_names),
            code_fingerprint(ident.plugins),
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

"""What the run layer hands the training engine, and what the engine hands back: plain values, no callbacks
into the rooms above.

    job = TrainJob(cfg, paths, build_model, memory_length=2, stamp={...}, model_name="tmanet")
    result = train(job, hooks)                   # bench.engine.trainer: a TrainResult
    result.metrics, result.iters, result.latency

``bench.run.execute`` builds the job from a config and its ``RunDir`` (``RunDir.train_paths``: the only file
names the engine writes), the model builder of ``bench.run.model.model_builder`` (a ``functools.partial`` of
``bench.models.registry.create``: calling it goes down the layers, never back up), and the identity computed
once per run; it turns the result into ``record.json`` (``bench.run.records.make_record``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import Config


@dataclass(frozen=True)
class TrainPaths:
    """Where the engine writes: the run folder, its checkpoint and log, and the loggers' folders."""

    folder: Path
    checkpoint: Path
    log: Path
    tensorboard: Path
    mlflow: Path
    wandb: Path


@dataclass(frozen=True)
class TrainJob:
    """One training run as the engine sees it. ``stamp`` goes into every checkpoint (``config``,
    ``config_hash``, ``classes``, ``run_id``, ``code``: what ``bench.run.resume`` checks before a resume);
    ``memory_length`` is the model's argument (past frames of a training clip)."""

    cfg: Config
    paths: TrainPaths
    build_model: Callable[[], Any]  # -> the model (an nn.Module)
    memory_length: int
    stamp: dict[str, Any]
    model_name: str
    # False: no latency after training even with launch.latency (a local sweep measures it once per architecture
    # when every run has finished: bench.run.latency_run.share_latency)
    latency: bool = True


@dataclass(frozen=True)
class TrainResult:
    """What a finished training run measured (the record's run-dependent fields)."""

    metrics: dict[str, Any]
    device: str
    iters: int
    wall_time_s: float
    checkpoint: Path
    batch_size: int
    batch_size_per_rank: int
    world_size: int
    latency: dict[str, Any] | None = None

"""The state of one training run that every stage of the trainer shares (``Training``).

run = setup(job, env)            # bench.engine.trainer
run.iteration, run.model, run.checkpoint_path, run.val_set(), run.val_videos()
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from bench.config import DataConfig, EvalConfig, LaunchConfig, TrainConfig
from bench.data.build import build_videos
from bench.data.videos import VideoSet
from bench.distributed import DistEnv
from bench.engine.batches import InfiniteBatches
from bench.engine.divergence import LossWatch
from bench.engine.job import TrainJob
from bench.engine.recipe import MixedPrecision
from bench.engine.temporal_loss import TemporalLoss
from bench.evaluation.evaluate import build_eval_dataset
from bench.evaluation.temporal import TcPlan


@dataclass
class Training:
    """Everything the stages share: the config sections they use, the job (where files go, what stamps a
    checkpoint), the model (unwrapped), its DDP wrapper, optimiser, AMP, data and position. Only ``setup`` sees
    the whole config."""

    train: TrainConfig
    data: DataConfig
    eval: EvalConfig
    launch: LaunchConfig
    job: TrainJob
    env: DistEnv
    model: nn.Module
    network: nn.Module
    optimizer: torch.optim.Optimizer
    trainable: list[nn.Parameter]
    amp: MixedPrecision
    batches: InfiniteBatches
    batch_per_rank: int
    iteration: int = 0
    elapsed_before: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    saved_at: int | None = None
    val: tuple[Dataset, TcPlan, str | None] | None = None
    tc: TemporalLoss | None = None  # ETC's temporal-consistency loss (train.tc_loss_weight > 0)
    videos: VideoSet | None = None  # the validation videos of eval.whole_videos
    losses: LossWatch = field(default_factory=lambda: LossWatch(1))  # setup: LossWatch.for_iters(iters)

    @property
    def checkpoint_path(self) -> Path:
        return self.job.paths.checkpoint

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def val_set(self) -> tuple[Dataset, TcPlan, str | None]:
        """(validation dataset, TC plan, reason TC is skipped), built once."""
        if self.val is None:
            self.val = build_eval_dataset(self.data, self.eval, self.model)
        return self.val

    def val_videos(self) -> VideoSet:
        """The validation split as whole videos (``eval.whole_videos``), indexed once."""
        if self.videos is None:
            self.videos = build_videos(self.data, self.data.val_split)
        return self.videos

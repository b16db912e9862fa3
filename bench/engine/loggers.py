"""The optional experiment loggers a config switches on, as training hooks (``bench.engine.hooks.TrainHook``).

    hooks = logger_hooks(cfg, paths, is_main)       # [] when none is on; a missing package: ConfigError

``train.tensorboard`` -> ``bench.engine.tensorboard``; ``train.mlflow``, ``train.wandb`` -> ``bench.engine.trackers``
(offline; they store the resolved config too, so they get the whole config). Every rank calls this before training
starts, so a missing package stops all of them at once; only rank 0 gets writers.
"""

from __future__ import annotations

from bench.config import Config
from bench.engine.hooks import TrainHook
from bench.engine.job import TrainPaths
from bench.engine.tensorboard import tensorboard_hooks
from bench.engine.trackers import tracker_hooks


def logger_hooks(cfg: Config, paths: TrainPaths, is_main: bool) -> list[TrainHook]:
    """The logger hooks ``cfg.train`` asks for, writing to the run's folders ``paths`` (rank 0 only)."""
    hooks = tensorboard_hooks(cfg.train, paths.tensorboard, is_main) if cfg.train.tensorboard else []
    return hooks + (tracker_hooks(cfg, paths, is_main) if cfg.train.mlflow or cfg.train.wandb else [])

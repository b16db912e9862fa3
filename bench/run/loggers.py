"""The optional experiment loggers a config switches on, as training hooks (``bench.run.hooks.TrainHook``).

    hooks = logger_hooks(cfg.train, run_dir, is_main)     # [] when none is on; a missing package: ConfigError

``train.tensorboard`` -> ``bench.run.tensorboard``. Every rank calls this before training starts, so a missing
package stops all of them at once; only rank 0 gets writers.
"""

from __future__ import annotations

from pathlib import Path

from bench.config import TrainConfig
from bench.run.hooks import TrainHook
from bench.run.tensorboard import tensorboard_hooks


def logger_hooks(train_cfg: TrainConfig, run_dir: Path, is_main: bool) -> list[TrainHook]:
    """The logger hooks ``train_cfg`` asks for, writing under ``run_dir`` (rank 0 only)."""
    return tensorboard_hooks(train_cfg, run_dir, is_main)

"""TensorBoard logging of a training run (optional: ``pip install -e ".[tensorboard]"``), on with
``train.tensorboard=true``; then ``tensorboard --logdir results/runs`` shows every run.

    bench train configs/synthetic_tmanet.yaml train.tensorboard=true    # writes run_dir/tensorboard/

``TensorBoardHook`` is a ``bench.engine.hooks.TrainHook`` that mirrors every ``log.jsonl`` line (``on_log``):
training lines as ``train/<key>`` scalars (loss, aux_loss, lr, throughput, max_memory_mb, ...), validation
lines as ``val/<key>`` (miou, pixel_acc, macc, tc, ...) and ``val/iou/<class>``, at the line's iteration.
Only rank 0 writes. Any object with ``add_scalar(tag, value, step)``, ``flush()`` and ``close()`` can stand in
for the ``SummaryWriter`` (the tests use a fake one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.config import ConfigError, TrainConfig
from bench.engine.hooks import ScalarLogHook, TrainHook

INSTALL_HINT = 'pip install -e ".[tensorboard]"'


class TensorBoardHook(ScalarLogHook):
    """``ScalarLogHook`` on a ``SummaryWriter`` (or alike)."""


def summary_writer_class() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``; a missing package is a one-line ``ConfigError``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ConfigError(
            f"train.tensorboard=true needs the tensorboard package ({err}); install it with "
            f"{INSTALL_HINT} or set train.tensorboard=false"
        ) from None
    return SummaryWriter


def tensorboard_hooks(train_cfg: TrainConfig, log_dir: Path, is_main: bool) -> list[TrainHook]:
    """``[TensorBoardHook]`` writing to ``log_dir`` (the run's ``tensorboard/``) when ``train.tensorboard``
    (rank 0), else []."""
    if not train_cfg.tensorboard:
        return []
    writer_class = summary_writer_class()  # every rank checks, so a missing package stops them all
    return [TensorBoardHook(writer_class(log_dir=str(log_dir)))] if is_main else []

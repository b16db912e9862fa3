"""The training hook protocol: what a hook sees after each step and the methods the trainer calls.

    class StopAfter(TrainHook):
        def on_step_end(self, state: StepState) -> None:
            if state.iteration == 10:
                state.request_stop("enough")       # checkpoint after this step, then TrainingInterrupted

    train_and_evaluate(cfg, run_dir, hooks=[StopAfter()])      # bench.run.execute
    bench.execute(cfg, hooks=[StopAfter()])                     # the same through the run executor

Loggers (``log.jsonl``, TensorBoard, MLflow, W&B) are hooks too: ``on_log`` sees each ``log.jsonl`` line as
written; ``ScalarLogHook(writer)`` mirrors those lines to any writer with ``add_scalar(tag, value, step)``,
``flush()`` and ``close()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass
class StepState:
    """What a hook sees after each step. ``iteration`` counts completed steps; losses are means over ranks."""

    iteration: int
    iters: int
    lr: float
    loss: float
    aux_loss: float
    model: nn.Module
    stop_reason: str | None = None

    def request_stop(self, reason: str) -> None:
        """Save a checkpoint after this step and raise ``TrainingInterrupted`` (unless it was the last step)."""
        self.stop_reason = reason


class TrainHook:
    """Base class of training hooks; every method does nothing by default. ``on_log`` sees each ``log.jsonl``
    line as written (rank 0; training lines and ``{"iter", "val": metrics}`` lines), e.g. to mirror it."""

    def on_step_end(self, state: StepState) -> None:
        pass

    def on_evaluate(self, iteration: int, metrics: dict[str, Any]) -> None:
        pass

    def on_log(self, entry: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class ScalarLogHook(TrainHook):
    """Writes each log line's numbers as scalars through ``writer``: training lines as ``train/<key>`` (loss,
    aux_loss, lr, throughput, max_memory_mb, ...), validation lines as ``val/<key>`` (miou, pixel_acc, macc, ...)
    and ``val/iou/<class>``, at the line's iteration; non-numbers (the confusion matrix) are left out."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def on_log(self, entry: dict[str, Any]) -> None:
        step = int(entry.get("iter", 0))
        if isinstance(entry.get("val"), dict):
            self._scalars("val", entry["val"], step)
        else:
            self._scalars("train", {k: v for k, v in entry.items() if k != "iter"}, step)
        self.writer.flush()

    def _scalars(self, prefix: str, values: dict[str, Any], step: int) -> None:
        for key, value in values.items():
            if key == "per_class_iou" and isinstance(value, dict):
                self._scalars(f"{prefix}/iou", value, step)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", float(value), step)

    def close(self) -> None:
        self.writer.close()

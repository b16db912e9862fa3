"""The training hook protocol: what a hook sees after each step and the methods the trainer calls.

    class StopAfter(TrainHook):
        def on_step_end(self, state: StepState) -> None:
            if state.iteration == 10:
                state.request_stop("enough")       # checkpoint after this step, then TrainingInterrupted

    train_and_evaluate(cfg, run_dir, hooks=[StopAfter()])      # bench.run.trainer
    bench.execute(cfg, hooks=[StopAfter()])                     # the same through the run executor

Loggers (``log.jsonl``, TensorBoard, ...) are hooks too: ``on_log`` sees each ``log.jsonl`` line as written.
"""

from __future__ import annotations

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

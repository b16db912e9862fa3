"""A finite but exploding loss: the run diverged and is not recorded (e.g. train.lr = 30 on the tiny synthetic run
of tests/test_fault_leftovers.py: its mean loss rises 600-fold in 8 iterations, and its evaluation at chance
level would otherwise become a record).

    watch = LossWatch.for_iters(cfg.train.iters)     # Training.losses
    watch.add(step_state.loss)                       # every iteration (the mean over ranks: the same on each)
    watch.check(iteration, lr)                       # at the end: DivergedError when it diverged

The loss at the start is the mean of the first ``window`` iterations, the loss at the end the mean of the last
``window`` (both kept in the checkpoint as ``loss_watch``, so a resumed run is judged on the same losses). A run whose
end is more than ``FACTOR`` times its start diverged: a training loss that learns falls, and a cross-entropy
that grows tenfold means the weights left the basin (the evaluation of such a model is at chance level).
NaN and inf are caught earlier, at the step (``bench.engine.finite``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from bench.errors import BenchError

FACTOR = 10.0
MAX_WINDOW = 20


class DivergedError(BenchError, FloatingPointError):
    """The training loss grew instead of falling: no record is made (``error.json`` keeps this message)."""


@dataclass
class LossWatch:
    """The mean loss of the first and the last ``window`` iterations of a run."""

    window: int
    start: float | None = None
    first: list[float] = field(default_factory=list)
    last: deque[float] = field(default_factory=deque)

    @classmethod
    def for_iters(cls, iters: int) -> LossWatch:
        return cls(max(1, min(MAX_WINDOW, iters // 4)))

    def add(self, loss: float) -> None:
        if self.start is None:
            self.first.append(loss)
            if len(self.first) == self.window:
                self.start = math.fsum(self.first) / len(self.first)
        self.last.append(loss)
        while len(self.last) > self.window:
            self.last.popleft()

    def state_dict(self) -> dict[str, list[float]]:
        """What a checkpoint keeps (``loss_watch``), so a resumed run, even one resumed at its end, is judged
        on the same losses."""
        return {"first": list(self.first), "last": list(self.last)}

    def load_state_dict(self, state: dict[str, list[float]]) -> None:
        for loss in state.get("first", []):
            self.add(float(loss))
        self.last = deque(float(v) for v in state.get("last", []))

    def check(self, iteration: int, lr: float) -> None:
        """Raise ``DivergedError`` when the last window's mean loss exceeds ``FACTOR`` times the start's."""
        if not self.first or not self.last:
            return
        start = self.start if self.start is not None else math.fsum(self.first) / len(self.first)
        if start <= 0:
            return
        end = math.fsum(self.last) / len(self.last)
        if end > FACTOR * start:
            raise DivergedError(
                f"training diverged: the mean loss of the last {len(self.last)} iterations (up to {iteration}) is "
                f"{end:.3g}, {end / start:.0f}x that of the first {self.window} ({start:.3g}); the run is not "
                f"recorded (its evaluation is meaningless). Lower train.lr (the last lr was {lr:.3g}) or set "
                f"train.grad_clip in a new run (another run_dir, or delete this run folder)"
            )

"""The trainer's ``log.jsonl`` writer, a training hook: losses, learning rate, throughput and memory every
``train.log_every`` iterations, validation metrics, a progress bar or status lines.

    hooks = (TrainLog(run, listeners=loggers), *loggers)     # bench.engine.trainer; each line goes to on_log
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bench.engine.hooks import StepState, TrainHook
from bench.engine.state import Training
from bench.engine.train_log import append_log
from bench.evaluation.measure import peak_memory_mb
from bench.progress import Progress


class TrainLog(TrainHook):
    """``log.jsonl`` (rank 0): mean losses, lr, throughput, memory every ``train.log_every`` iterations and at the
    end; validation metrics (without per-image counts); each line is passed to ``listeners``' ``on_log``.
    Progress: a tqdm bar on a terminal, else a status line every 30 s (``bench.progress``); validation
    results are logged either way."""

    def __init__(self, run: Training, listeners: Sequence[TrainHook] = ()) -> None:
        self.run, self.enabled = run, run.env.is_main
        self.listeners = tuple(listeners) if self.enabled else ()
        self.window = {"loss": 0.0, "aux": 0.0, "n": 0, "t": time.perf_counter()}
        self.progress = Progress(run.train.iters, "train", initial=run.iteration, enabled=self.enabled)

    def on_step_end(self, state: StepState) -> None:
        self.progress.update(1, loss=f"{state.loss:.4f}", lr=f"{state.lr:.2e}")
        w, tcfg = self.window, self.run.train
        w["loss"], w["aux"], w["n"] = w["loss"] + state.loss, w["aux"] + state.aux_loss, w["n"] + 1
        if state.iteration % tcfg.log_every and state.iteration != state.iters:
            return
        now = time.perf_counter()
        self.write(
            {
                "iter": state.iteration,
                "loss": w["loss"] / w["n"],
                "aux_loss": w["aux"] / w["n"],
                "lr": state.lr,
                "throughput": w["n"] * tcfg.batch_size / (now - w["t"]),
                "batch_size_global": tcfg.batch_size,
                "batch_size_per_rank": self.run.batch_per_rank,
                "max_memory_mb": round(peak_memory_mb(self.run.env.device), 1),
                "elapsed_s": round(self.run.elapsed(), 3),
            }
        )
        self.window = {"loss": 0.0, "aux": 0.0, "n": 0, "t": now}

    def on_evaluate(self, iteration: int, metrics: dict[str, Any]) -> None:
        val = {k: v for k, v in metrics.items() if k != "per_image"}
        self.write({"iter": iteration, "val": val})
        shown = ", ".join(
            f"{k} {val[k]:.4f}" for k in ("miou", "macc", "pixel_acc", "tc") if isinstance(val.get(k), float)
        )
        self.progress.write(f"validation at iteration {iteration}: {shown}")
        self.window["t"] = time.perf_counter()  # evaluation time is not training throughput

    def write(self, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        append_log(self.run.job.paths.log, entry)
        for listener in self.listeners:
            listener.on_log(entry)

    def close(self) -> None:
        self.progress.close()

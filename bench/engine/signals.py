"""Preemption and Ctrl-C: SIGUSR2 / SIGTERM / SIGINT during training become "save a checkpoint, then hand the
signal over".

    with PreemptionSignals() as signals:
        ...                                         # one training iteration
        if signals.pending is not None:             # (all-reduced over ranks by the trainer)
            save_checkpoint(...)
            signals.forward(signals.pending, iteration, checkpoint)   # previous handler, or TrainingInterrupted
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

PREEMPTION_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(RuntimeError):
    """Training stopped early with a checkpoint saved (a preemption signal, or a hook that requested a stop)."""

    def __init__(self, message: str, iteration: int, signum: int | None = None) -> None:
        super().__init__(message)
        self.iteration = iteration
        self.signum = signum


class PreemptionSignals:
    """Catches SIGUSR2 / SIGTERM / SIGINT (Ctrl-C) during training: the handler only records the signal; the
    loop saves a checkpoint at the next iteration boundary and then hands the signal to the previous handler.

    A previous Python handler (e.g. submitit's, which requeues the job) is called; if it returns, training
    goes on. With the default disposition (for SIGINT: Python's KeyboardInterrupt handler) the trainer raises
    ``TrainingInterrupted`` and the signal is re-raised after clean-up, so the process ends as the signal
    intended (a shell shows 130 for Ctrl-C). Ignored signals stay ignored.
    """

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.pending: int | None = None

    def __enter__(self) -> PreemptionSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in PREEMPTION_SIGNALS:
                previous = signal.getsignal(sig)
                if previous is signal.SIG_IGN:
                    continue
                self.previous[sig] = previous
                signal.signal(sig, self._record)
        return self

    def _record(self, signum: int, frame: Any) -> None:
        # SLURM preemption (and submitit's job._interrupt) sends SIGTERM and then USR2 within milliseconds;
        # USR2 is the one submitit requeues on, so it must not be dropped behind a pending SIGTERM
        if self.pending is None or (self.pending != signal.SIGUSR2 and signum == signal.SIGUSR2):
            self.pending = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self.previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self.previous.clear()

    def forward(self, signum: int, iteration: int, checkpoint: Path) -> None:
        """Pass ``signum`` on after the checkpoint is saved (see the class docstring)."""
        self.pending = None
        name = signal.Signals(signum).name
        print(
            f"bench: {name} received; checkpoint {checkpoint} saved at iteration {iteration}; to resume rerun "
            f"{current_command()} (or let the launcher requeue)",
            file=sys.stderr,
            flush=True,
        )
        previous = self.previous.get(signum)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(signum, None)
            return
        raise TrainingInterrupted(f"stopped by {name} at iteration {iteration}; {checkpoint} saved", iteration, signum)


def current_command() -> str:
    """This process's command line as a user would type it again: ``bench train ...`` for the ``bench`` entry
    point (or ``python -m bench.cli``), ``python -m bench.run.execute RUN_DIR`` for a launcher's subprocess, else
    "the same command" (e.g. a SLURM job, which its launcher requeues)."""
    program, args = os.path.basename(sys.argv[0]) if sys.argv else "", sys.argv[1:]
    if program in ("bench", "cli.py", "__main__.py"):
        return shlex.join(["bench", *args])
    if program == "execute.py":
        return shlex.join(["python", "-m", "bench.run.execute", *args])
    return "the same command"

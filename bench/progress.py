"""Progress of long loops: a tqdm bar on a terminal, otherwise a one-line status every N seconds.

    from bench.progress import Progress
    with Progress(total=1000, desc="train", initial=run.iteration) as bar:
        for ...:
            bar.update(1, loss=f"{loss:.4f}")      # postfix shown on the bar / in the status line

On a terminal (stderr is a TTY) the bar is ``tqdm.auto``; otherwise (SLURM logs, pipes, notebooks' captured
output) there is no bar and the logger ``bench.progress`` writes ``desc k/N (p%) elapsed, ETA, postfix`` at most
every ``BENCH_STATUS_EVERY`` seconds (default 30) and, after such a line, once at the end (visible where logging is
configured, as ``bench`` does). ``bench -q`` (the ``bench`` logger at WARNING) silences both.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

log = logging.getLogger("bench.progress")

DEFAULT_STATUS_EVERY = 30.0


def status_every() -> float:
    """Seconds between status lines when stderr is not a terminal (``BENCH_STATUS_EVERY``, default 30)."""
    try:
        return float(os.environ.get("BENCH_STATUS_EVERY", DEFAULT_STATUS_EVERY))
    except ValueError:
        return DEFAULT_STATUS_EVERY


def format_seconds(seconds: float) -> str:
    """``75`` -> ``"1:15"``, ``3700`` -> ``"1:01:40"``."""
    seconds = max(int(round(seconds)), 0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def configure_logging(level: int = logging.INFO) -> None:
    """Send ``bench.*`` log records at ``level`` and above to stderr with a time stamp (once per process).

    Called by the CLI and by the processes that execute runs (local launcher, SLURM tasks), whose stderr is
    the run's log; a library user configures logging as they like instead.
    """
    logger = logging.getLogger("bench")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be replaced, e.g. by pytest or a notebook)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def quiet() -> bool:
    """True when the ``bench`` logger was set above INFO (``bench -q``): no bars, no status lines."""
    return logging.getLogger("bench").level > logging.INFO


def interactive() -> bool:
    """A terminal or a Jupyter kernel: draw a bar (``tqdm.auto`` picks the notebook widget there)."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


class Progress:
    """Counts ``total`` units from ``initial``; see the module docstring. ``enabled=False`` shows nothing."""

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        initial: int = 0,
        enabled: bool = True,
        unit: str = "it",
        leave: bool = True,
        tty: bool | None = None,
        every: float | None = None,
        done: str = "",
    ) -> None:
        self.total, self.desc, self.n, self.initial = int(total), desc, int(initial), int(initial)
        self.done = f" {done}" if done else ""  # "sweep 3/9 done (33%)" rather than "sweep 3/9 (33%)"
        self.enabled = enabled and not quiet()
        self.every = status_every() if every is None else every
        self.started = self.last = time.monotonic()
        self.postfix: dict[str, Any] = {}
        self.reported = False  # a status line was written: close() writes the final one
        self.bar = None
        if self.enabled and (interactive() if tty is None else tty):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, initial=self.n, desc=desc, unit=unit, leave=leave, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.n += n
        self.postfix.update(postfix)
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
        else:
            self._report_if_due()

    def tick(self, **postfix: Any) -> None:
        """No unit finished, but the postfix changed (e.g. ``running=2``): a waiting loop calls this often, and
        off a terminal a status line still comes every ``every`` seconds (a slow loop is not a silent one)."""
        self.update(0, **postfix)

    def _report_if_due(self) -> None:
        if self.enabled and time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            self.reported = True
            log.info(self.status())

    def status(self) -> str:
        """``"train 120/1000 (12%), elapsed 0:40, ETA 4:53, loss=0.53"``; with ``done="done"`` and postfix
        ``running=2``: ``"sweep 3/9 done (33%), elapsed 5:02, ETA 10:04, running=2"``."""
        elapsed = time.monotonic() - self.started
        done = self.n - self.initial
        parts = [
            f"{self.desc} {self.n}/{self.total}{self.done}"
            + (f" ({100 * self.n / self.total:.0f}%)" if self.total else ""),
            f"elapsed {format_seconds(elapsed)}",
        ]
        if done > 0 and self.total:
            parts.append(f"ETA {format_seconds(elapsed / done * max(self.total - self.n, 0))}")
        parts += [f"{k}={v}" for k, v in self.postfix.items()]
        return ", ".join(parts)

    def write(self, line: str) -> None:
        """Log ``line`` (INFO) without breaking the bar."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        elif self.enabled:
            log.info(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled and self.reported and self.n > self.initial:  # a loop shorter than one interval stays quiet
            log.info(self.status())
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

"""Progress of a local sweep whose output is not a terminal: a line per run state change and a periodic summary.

The children are stand-ins (``python -c "sleep"``): the launcher's loop, not training, is under test.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import pytest

from bench.config import Config
from bench.grid import local
from bench.grid.spec import Run
from bench.progress import configure_logging


@pytest.fixture
def bench_info():
    """``bench`` logging at INFO to the current ``sys.stderr``; the level is restored afterwards."""
    logger = logging.getLogger("bench")
    before = logger.level
    configure_logging(logging.INFO)
    yield
    logger.setLevel(before)


def test_a_non_terminal_sweep_reports_each_run_and_a_periodic_summary(tmp_path, monkeypatch, bench_info):
    captured_stderr = io.StringIO()  # set in the test: pytest re-installs its own capture after fixture set-up
    monkeypatch.setattr(sys, "stderr", captured_stderr)
    monkeypatch.setenv("BENCH_STATUS_EVERY", "0.2")
    monkeypatch.setenv("BENCH_LOCAL_START", "subprocess")  # the stand-ins are subprocesses, not forked runs
    real_popen = subprocess.Popen
    monkeypatch.setattr(
        local.subprocess,
        "Popen",
        lambda command, **kw: real_popen([sys.executable, "-c", "import time; time.sleep(0.6)"], **kw),
    )
    runs = [Run(f"tmanet-{i}", Config(), tmp_path / f"run{i}", {"model.memory_length": i}, 0) for i in range(3)]
    results = local.run_local(runs, max_parallel=2, sweep_dir=tmp_path / "sweeps" / "tiny")
    assert [r.returncode for r in results] == [0, 0, 0]
    err = captured_stderr.getvalue()
    assert not captured_stderr.isatty()
    for i in range(3):
        assert f"run {i + 1} of 3: started tmanet-{i} [model.memory_length={i} seed 0]" in err
        assert f"tmanet-{i}: done in" in err
    summaries = [line for line in err.splitlines() if "sweep tiny " in line and " done (" in line]
    assert summaries, err
    assert any("0/3 done (0%)" in line and "running=2, queued=1" in line for line in summaries), summaries
    assert "ETA" in summaries[-1] or "3/3 done" in summaries[-1]

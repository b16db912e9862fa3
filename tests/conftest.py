"""pytest fixtures and hooks only; shared helpers live in the importable package ``tests/helpers``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import SLURM_TOOLS, slurm_gate, tiny_builder, write_grid_spec


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs ``-n auto``), each worker and the processes it starts get an equal
    share of the cores, so two workers on two cores do not each run two torch threads."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1:
        share = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ.setdefault("OMP_NUM_THREADS", share)
        os.environ.setdefault("MKL_NUM_THREADS", share)
        import torch  # only here: collecting a test file must not pay for torch when it needs none

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.slurm`` tests run only where SLURM's commands are (``helpers.slurm_gate``)."""
    marker = item.get_closest_marker("slurm")
    if marker is not None:
        slurm_gate(tuple(marker.kwargs.get("tools", SLURM_TOOLS)))


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """``write_spec(**fields)``: a grid spec file in ``tmp_path`` (see ``helpers.write_grid_spec``)."""
    return lambda **fields: write_grid_spec(tmp_path, **fields)


@pytest.fixture
def tiny_cfg() -> Callable[..., Any]:
    """``tiny_cfg(run_dir, "train.iters=2", ...)``: the tiny CPU config in ``run_dir`` (2 iterations of batch 2)."""
    return tiny_builder({"train.iters": 2, "train.batch_size": 2, "model.memory_length": 1}, "run_dir")


@pytest.fixture
def live_process() -> Any:
    """A live process on this host that is not this one (an owner at work elsewhere); killed afterwards."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()

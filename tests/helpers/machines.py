"""What a test needs from the machine: SLURM (real or faked), the optional tracker packages, image files.

slurm_gate(("srun",))                    # skip without SLURM's commands; fail when BENCH_SLURM says they must be
require_slurm(); require_tracker("mlflow", "mlflow")
fake_slurm(tmp_path / "bin", monkeypatch, squeue="echo 12_3 RUNNING")
write_frame(path, (32, 32), (255, 0, 0))
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# the SLURM commands a ``@pytest.mark.slurm`` test needs unless it names its own (``slurm(tools=("srun",))``)
SLURM_TOOLS = ("srun", "sbatch", "squeue")


def slurm_gate(tools: tuple[str, ...] = SLURM_TOOLS) -> None:
    """Skip (with the reason) when a SLURM command is missing; fail instead when ``BENCH_SLURM`` says the
    cluster must be there (``.ci/run`` sets it)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    why = f"{', '.join(missing)} not on PATH"
    if os.environ.get("BENCH_SLURM"):
        pytest.fail(f"BENCH_SLURM is set but SLURM is missing: {why}", pytrace=False)
    pytest.skip(f"needs SLURM ({why}); start a cluster with `bash .ci/slurm-up.sh` (root)")


def require_slurm() -> None:
    """Skip without a SLURM cluster, or fail when ``BENCH_SLURM`` says one must be there (CI)."""
    from bench.run.liveness import slurm_reachable

    ok, why = slurm_reachable()
    if ok:
        return
    if os.environ.get("BENCH_SLURM"):
        pytest.fail(f"BENCH_SLURM is set but SLURM is not reachable: {why}")
    pytest.skip(f"no SLURM cluster ({why}); start one with `bash .ci/slurm-up.sh` (root)")


def require_tracker(module: str, extra: str) -> Any:
    """The optional tracker package ``module``; skip (with the install command) where it is missing, or fail
    when ``BENCH_TRACKERS`` says it must be there (``.ci/run`` installs the extras and sets it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("BENCH_TRACKERS"):
            pytest.fail(f"BENCH_TRACKERS is set but {module} is not installed", pytrace=False)
        pytest.skip(f'{module} not installed: pip install -e ".[{extra}]"')


def write_frame(path: Path, size: tuple[int, int], rgb: tuple[int, int, int]) -> Path:
    """A PNG of ``size`` (H, W) filled with ``rgb`` (test datasets encode frame numbers in the colour)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((*size, 3), dtype=np.uint8)
    pixels[...] = rgb
    Image.fromarray(pixels).save(path)
    return path


def fake_slurm(
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    squeue: str = "exit 1",
    sacct: str = "exit 1",
    grace_s: float = 0.0,
    **more: str,
) -> None:
    """Put ``squeue``/``sacct`` (and ``more``: name -> body) shell scripts with the given bodies first on PATH
    (answers of a fake cluster); the grace period before an unlisted job counts as gone is ``grace_s``."""
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("BENCH_SLURM_GRACE_S", str(grace_s))
    for name, body in (("squeue", squeue), ("sacct", sacct), *more.items()):
        script = folder / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")

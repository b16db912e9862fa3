"""Shared test helpers. Each block is owned by one area; add new blocks rather than editing others."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SYNTHETIC_BASE = REPO / "configs" / "synthetic_tmanet.yaml"


# --------------------------------------------------------------------------------------------------
# grid and run-directory helpers (bench.grid, bench.run.rundir, bench.run.execute tests)


def write_grid_spec(folder: Path, name: str = "spec.yaml", **fields: Any) -> Path:
    """Write a grid spec over the synthetic base config with runs under ``folder/runs``; ``fields`` replace
    top-level keys (``grid``, ``seeds``, ``overrides``...)."""
    spec: dict[str, Any] = {"name": "t", "base": str(SYNTHETIC_BASE),
                            "overrides": {"output_root": str(folder / "runs")},
                            "grid": [{"product": {"model.memory_length": [1, 2]}}]}
    spec.update(fields)
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """``write_spec(**fields)``: a grid spec file in ``tmp_path`` (see ``write_grid_spec``)."""
    return lambda **fields: write_grid_spec(tmp_path, **fields)


@pytest.fixture
def tiny_cfg() -> Callable[..., Any]:
    """``tiny_cfg(run_dir, "train.iters=2", ...)``: the tiny CPU config of ``tests/tiny.py`` in ``run_dir``."""
    from bench.config import load_config
    from tiny import TINY, as_overrides

    def make(run_dir: Path, *overrides: str) -> Any:
        settings = {**TINY, "train.iters": 2, "train.batch_size": 2, "model.memory_length": 1}
        return load_config(None, as_overrides(settings) + [f"run_dir={run_dir}"] + list(overrides))

    return make

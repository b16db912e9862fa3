"""Tiny configs and grid specs: the one tiny-config builder every end-to-end test uses.

    cfg = tiny_config("train.iters=3", settings={"model.memory_length": 2})     # TINY, settings, overrides
    build = tiny_builder({"train.iters": 2}, "run_dir"); cfg = build(tmp_path)  # a module's own defaults
    spec = write_grid_spec(tmp_path, seeds=[0])                                # a grid over the synthetic base

``TINY``: a resnet18 backbone from random init with 8/16-channel heads on 32x32 synthetic clips, on the CPU, so a
training iteration takes milliseconds. ``tiny_builder`` only fixes arguments of ``tiny_config``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.config import load_config

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC_BASE = REPO / "configs" / "synthetic_tmanet.yaml"
TINY: dict[str, Any] = {
    "model.backbone": "resnet18", "model.pretrained": False, "model.key_channels": 8, "model.value_channels": 16,
    "model.channels": 16, "model.aux_channels": 16, "model.window_size": 3, "data.crop_size": [32, 32],
    "data.synthetic.size": [32, 32],
    "data.synthetic.train_clips": 8, "data.synthetic.val_clips": 4, "device": "cpu", "threads": 1,
}  # fmt: skip


def as_overrides(settings: dict[str, Any]) -> list[str]:
    """``{"a.b": 1}`` -> ``["a.b=1"]`` (values written as JSON, which the config reads as YAML)."""
    return [f"{key}={json.dumps(value)}" for key, value in settings.items()]


def tiny_config(*overrides: str, settings: dict[str, Any] | None = None) -> Any:
    """The one tiny CPU config builder: ``TINY``, then ``settings`` (dotted keys), then the
    ``key=value`` ``overrides``."""

    return load_config(None, as_overrides({**TINY, **(settings or {})}) + list(overrides))


def tiny_builder(settings: dict[str, Any], place: str | None = None) -> Callable[..., Any]:
    """A test module's own tiny config: ``build(*overrides)``, or with ``place`` ("run_dir" / "output_root")
    ``build(path, *overrides)`` putting the run there (``output_root``: ``path/runs``)."""

    def build(*args: Any) -> Any:
        if place is None:
            return tiny_config(*args, settings=settings)
        path, overrides = Path(args[0]), list(args[1:])
        where = path if place == "run_dir" else path / "runs"
        return tiny_config(f"{place}={where}", *overrides, settings=settings)

    return build


def write_grid_spec(folder: Path, name: str = "spec.yaml", **fields: Any) -> Path:
    """Write a grid spec over the synthetic base config with runs under ``folder/runs``; ``fields`` replace
    top-level keys (``grid``, ``seeds``, ``overrides``...)."""
    spec: dict[str, Any] = {
        "name": "t",
        "base": str(SYNTHETIC_BASE),
        "overrides": {"output_root": str(folder / "runs")},
        "grid": [{"product": {"model.memory_length": [1, 2]}}],
    }
    spec.update(fields)
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return path

"""``bench export RUN --format mmseg``: a run's trained weights in the mmseg layout, for mmseg's own tools.

    bench export results/runs/<id> --format mmseg                 # -> ./<id>.mmseg.pth
    bench export results/runs/<id> --format mmseg --out w.pth

    from bench.run.export_run import export_command
    path = export_command("results/runs/<id>", "mmseg", "w.pth")

The run's model comes from ``bench.run.model.load_run_model``; the container from
``bench.weights.export.mmseg_checkpoint``: ``{"meta": {"CLASSES", "dataset_meta", "model" (the mmseg
EncoderDecoder config that builds the same network), "config" (the run's), "run_id"}, "state_dict": ...}``,
written atomically. Only models with an mmseg counterpart export (TMANet with the official head, PSPNet, FCN).
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.atomic import atomic_file
from bench.config import ConfigError, to_dict
from bench.data.catalog import dataset_info
from bench.run.model import load_run_model
from bench.weights import mmseg_checkpoint

EXPORT_FORMATS: tuple[str, ...] = ("mmseg",)


def export_command(run: str | Path, export_format: str = "mmseg", out: str | Path | None = None) -> Path:
    """Write the weights of ``run`` (a run folder or its checkpoint) in ``export_format``; returns the path."""
    if export_format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {export_format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    model, cfg, meta = load_run_model(run)
    run_id = Path(meta["checkpoint"]).parent.name
    container = mmseg_checkpoint(
        model.state_dict(),
        dataset_info(cfg.data).class_names,
        align_corners=cfg.model.align_corners,
        pool_scales=cfg.model.pool_scales,
        dropout=cfg.model.dropout,
        meta={"config": to_dict(cfg), "run_id": run_id, "iter": meta.get("iteration")},
    )
    path = Path(out) if out is not None else Path(f"{run_id}.mmseg.pth")
    with atomic_file(path) as handle:
        torch.save(container, handle)
    return path

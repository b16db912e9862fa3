"""Records for report and grid tests: per-image counts with known statistics, and the one record fabricator,
which writes through ``bench.run.rundir.RunDir`` like a finished run.

    record = fake_eval_record("tmanet-abc", seed=0, miou=0.5, config=to_dict(cfg))   # a finished record dict
    fake_eval_record("tmanet-abc", 0, miou=0.5, write_to=run_dir)                    # ... also written there
    spec = write_report_spec(tmp_path, "t", "memory_length", "model.memory_length", grid, REPORT_BASE, [0, 1])
    values = fabricate_records(spec, miou_of=lambda run: 0.5)                         # every run of a spec
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.config import to_dict
from bench.grid.spec import build_grid
from bench.run.fingerprint import code_fingerprint
from bench.run.identity import RunIdentity
from bench.run.rundir import RunDir

REPORT_BASE = {"name": "tiny", "model": {"name": "tmanet", "backbone": "resnet18"}, "data": {"dataset": "synthetic"}}


def per_image_counts(iou: np.ndarray, union: np.ndarray, names: list[str] | None = None) -> dict[str, Any]:
    """``metrics.per_image`` from per-image, per-class IoU targets (N, C) and union pixel counts (N, C).

    intersection = round(iou * union); label pixels lie between the two (half of the non-overlap).
    """
    union = np.asarray(union, dtype=np.int64)
    intersection = np.rint(np.clip(iou, 0.0, 1.0) * union).astype(np.int64)
    label = intersection + (union - intersection) // 2
    names = names or [f"synthetic-val-{i:04d}" for i in range(union.shape[0])]
    return {
        "names": names,
        "intersection": intersection.tolist(),
        "union": union.tolist(),
        "label_pixels": label.tolist(),
    }


def counts_miou(per_image: dict[str, Any]) -> float:
    """Dataset-level mIoU of ``per_image`` counts, by a plain loop (the reference the statistics must match)."""
    inter = np.asarray(per_image["intersection"], dtype=float).sum(0)
    union = np.asarray(per_image["union"], dtype=float).sum(0)
    ious = [i / u for i, u in zip(inter, union) if u > 0]
    return float(np.mean(ious)) if ious else float("nan")


def fake_image_rows(
    rng: np.random.Generator, n_images: int, class_iou: list[float], image_sd: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """``(union, base_iou)``, both (N, C), to share between the rows of one validation split: union pixel
    counts and ``class_iou`` plus a per-image difficulty; each run adds its own noise with ``noisy_iou``."""
    union = rng.integers(200, 2000, size=(n_images, len(class_iou)))
    effect = rng.normal(0.0, image_sd, size=(n_images, 1))
    return union, np.asarray(class_iou)[None, :] + effect


def noisy_iou(rng: np.random.Generator, base_iou: np.ndarray, noise: float = 0.05, shift: float = 0.0) -> np.ndarray:
    """One run's per-image IoU: the shared base plus ``shift`` plus independent noise, clipped to [0, 1]."""
    return np.clip(base_iou + shift + rng.normal(0.0, noise, size=base_iou.shape), 0.0, 1.0)


def fake_eval_record(
    run_id: str,
    seed: int,
    per_image: dict[str, Any] | None = None,
    miou: float | None = None,
    *,
    plugins: list[str] | tuple[str, ...] = (),
    write_to: str | Path | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The one record fabricator: a minimal finished record made by this code (``code``: the current fingerprint
    of ``plugins``); ``metrics.miou`` comes from the counts unless given; ``extra`` adds or replaces top-level
    fields (``config``, ``latency``, ``model``, ``code``...). ``write_to``: a run folder to write it into
    (``RunDir.write_record``)."""
    metrics: dict[str, Any] = {"miou": counts_miou(per_image) if miou is None else miou}
    if per_image is not None:
        metrics["per_image"] = per_image
    record = {
        "schema": 1,
        "run_id": run_id,
        "status": "done",
        "seed": seed,
        "metrics": metrics,
        "code": code_fingerprint(plugins),
        **extra,
    }
    if write_to is not None:
        RunDir(write_to).write_record(record)
    return record


def write_report_spec(
    tmp: Path, name: str, ablation: str, factor: str, grid: list, base: dict, seeds: list[int]
) -> Path:
    """A base config and a grid spec in ``tmp``; runs go to ``tmp/runs``."""
    base = {**base, "output_root": str(tmp / "runs")}
    (tmp / f"{name}_base.yaml").write_text(yaml.safe_dump(base))
    spec = {
        "name": name,
        "ablation": ablation,
        "factor": factor,
        "base": f"{name}_base.yaml",
        "grid": grid,
        "seeds": seeds,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def fabricate_records(
    spec_path: Path,
    miou_of,
    skip=lambda run: False,
    latency_of=None,
    per_image_of=None,
    overrides: tuple[str, ...] = (),
) -> dict[str, list[float]]:
    """Write a done record.json (``fake_eval_record``) for every run of the spec; returns the mIoU fractions per
    factor value.

    ``per_image_of(run)`` (optional) gives ``metrics.per_image`` counts; the run's mIoU then comes from them.
    ``overrides``: the command-line overrides of the (pretended) sweep.
    """
    grid = build_grid(spec_path, overrides)
    values: dict = {}
    for run in grid.runs:
        if skip(run):
            continue
        per_image = per_image_of(run) if per_image_of else None
        miou = counts_miou(per_image) if per_image else miou_of(run)
        values.setdefault(run.varied.get(grid.spec.factor, run.config.model.name), []).append(miou)
        extra: dict[str, Any] = {}
        if latency_of is not None:  # five pass medians within 2% of the median, as a stable measurement has
            ms = latency_of(run)
            passes = [round(ms * f, 6) for f in (0.98, 0.99, 1.0, 1.01, 1.02)]
            modes = {"streaming": {"median_ms": ms, "pass_medians_ms": passes}, "recompute": {"median_ms": 2 * ms}}
            extra["latency"] = {"modes": modes}
        record = fake_eval_record(
            run.run_id,
            run.seed,
            per_image,
            miou,
            plugins=RunIdentity.of(run.config).plugins,  # what a run stores: its model's plugins only
            name=run.run_id,
            model=run.config.model.name,
            dataset=run.config.data.dataset,
            config=to_dict(run.config),
            **extra,
        )
        record["metrics"].update(
            {"tc": 0.9 + 0.01 * run.seed, "per_class_iou": {"background": miou + 0.05, "disc": miou - 0.05}}
        )
        RunDir(run.run_dir).write_record(record)
    return values


def per_image_fabricator(shift_of, n_images: int = 60, seed: int = 0):
    """``per_image_of(run)`` for ``fabricate``: one shared validation split, per-run noise, a per-row shift."""
    rng = np.random.default_rng(seed)
    union, base = fake_image_rows(rng, n_images, [0.7, 0.5, 0.35, 0.6])

    def per_image_of(run) -> dict:
        import zlib

        run_rng = np.random.default_rng(zlib.crc32(run.run_id.encode()))
        return per_image_counts(noisy_iou(run_rng, base, 0.05, shift_of(run)), union)

    return per_image_of

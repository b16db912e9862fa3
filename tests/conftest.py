"""Shared test helpers. Each block is owned by one area; add new blocks rather than editing others."""

from __future__ import annotations

import importlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bench.run.rundir import RunDir

REPO = Path(__file__).resolve().parent.parent
SYNTHETIC_BASE = REPO / "configs" / "synthetic_tmanet.yaml"


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


# --------------------------------------------------------------------------------------------------
# grid and run-directory helpers (bench.grid, bench.run.rundir, bench.run.execute tests)


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


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """``write_spec(**fields)``: a grid spec file in ``tmp_path`` (see ``write_grid_spec``)."""
    return lambda **fields: write_grid_spec(tmp_path, **fields)


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


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.slurm`` tests run only where SLURM's commands are (``slurm_gate``)."""
    marker = item.get_closest_marker("slurm")
    if marker is not None:
        slurm_gate(tuple(marker.kwargs.get("tools", SLURM_TOOLS)))


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


def tiny_config(*overrides: str, settings: dict[str, Any] | None = None) -> Any:
    """The one tiny CPU config builder: ``tests/tiny.py``'s ``TINY``, then ``settings`` (dotted keys), then the
    ``key=value`` ``overrides``."""
    from tiny import TINY, as_overrides

    from bench.config import load_config

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


@pytest.fixture
def tiny_cfg() -> Callable[..., Any]:
    """``tiny_cfg(run_dir, "train.iters=2", ...)``: the tiny CPU config in ``run_dir`` (2 iterations of batch 2)."""
    return tiny_builder({"train.iters": 2, "train.batch_size": 2, "model.memory_length": 1}, "run_dir")


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


# --------------------------------------------------------------------------------------------------
# per-image evaluation counts (record["metrics"]["per_image"]) — owner: report statistics (bench/report/stats.py)


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
    run_id: str, seed: int, per_image: dict[str, Any] | None = None, miou: float | None = None, **extra: Any
) -> dict[str, Any]:
    """The one record fabricator: a minimal finished record made by this code (``code``: the current
    fingerprint); ``metrics.miou`` comes from the counts unless given; ``extra`` adds or replaces top-level
    fields (``config``, ``latency``, ``model``, ``code``...)."""
    from bench.run.fingerprint import code_fingerprint

    metrics: dict[str, Any] = {"miou": counts_miou(per_image) if miou is None else miou}
    if per_image is not None:
        metrics["per_image"] = per_image
    return {
        "schema": 1,
        "run_id": run_id,
        "status": "done",
        "seed": seed,
        "metrics": metrics,
        "code": code_fingerprint(),
        **extra,
    }


# -------------------------------------------------------------------------------- end per-image counts


# --------------------------------------------------------------------------------------------------
# record fabricators (report tests: bench.report.collate, figures, html)

REPORT_BASE = {"name": "tiny", "model": {"name": "tmanet", "backbone": "resnet18"}, "data": {"dataset": "synthetic"}}


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
    """Write a done record.json for every run of the spec; returns the mIoU fractions per factor value.

    ``per_image_of(run)`` (optional) gives ``metrics.per_image`` counts; the run's mIoU then comes from them.
    ``overrides``: the command-line overrides of the (pretended) sweep.
    """
    from bench.config import to_dict
    from bench.grid.spec import build_grid
    from bench.run.fingerprint import code_fingerprint

    grid = build_grid(spec_path, overrides)
    spec = grid.spec
    values: dict = {}
    for run in grid.runs:
        if skip(run):
            continue
        per_image = per_image_of(run) if per_image_of else None
        miou = counts_miou(per_image) if per_image else miou_of(run)
        factor_value = run.varied.get(spec.factor, run.config.model.name)
        values.setdefault(factor_value, []).append(miou)
        record = {
            "schema": 1,
            "run_id": run.run_id,
            "name": run.run_id,
            "status": "done",
            "model": run.config.model.name,
            "dataset": run.config.data.dataset,
            "seed": run.seed,
            "config": to_dict(run.config),
            "metrics": {
                "miou": miou,
                "tc": 0.9 + 0.01 * run.seed,
                "per_class_iou": {"background": miou + 0.05, "disc": miou - 0.05},
            },
            "code": code_fingerprint(run.config.plugins),
        }
        if per_image:
            record["metrics"]["per_image"] = per_image
        if latency_of is not None:
            record["latency"] = {
                "modes": {"streaming": {"median_ms": latency_of(run)}, "recompute": {"median_ms": 2 * latency_of(run)}}
            }
        run_dir = RunDir.of(run.config).path
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "record.json").write_text(json.dumps(record))
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

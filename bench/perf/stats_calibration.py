"""Calibration of a row comparison: false-positive rate of A/A comparisons and power, old vs new test.

Run::

    python -m bench.perf.stats_calibration                     # this tree's compare and the one of c93e960
    python -m bench.perf.stats_calibration --trials 1000 --old-rev c93e960 --shift-sd 3

Simulation (the same generator ``tests/test_stats_calibration.py`` uses): one validation split of
``images`` images x ``classes`` classes (union pixel counts and per-image base IoU shared by every run); each
simulated seed (training run) adds its own effect, a global offset plus one offset per class, both
N(0, ``seed_sd``), and per-image noise N(0, 0.05); intersection = round(IoU * union). A/A: both rows are drawn
from the same distribution with seeds 0..n-1; power: row a is shifted by ``shift_sd`` times the measured
seed-level standard deviation of mIoU. A rejection is p < 0.05 with a positive delta for power, p < 0.05 either
way for A/A. Prints the rejection rates of both versions of ``bench.report.stats.compare``.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import stats

REPO = Path(__file__).resolve().parents[2]
ALPHA = 0.05


def make_split(rng: np.random.Generator, images: int = 16, classes: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """``(union, base_iou)``, both (images, classes): one validation split shared by every simulated run."""
    union = rng.integers(200, 2000, size=(images, classes))
    class_iou = rng.uniform(0.3, 0.7, size=classes)
    return union, np.clip(class_iou[None, :] + rng.normal(0.0, 0.1, size=(images, 1)), 0.0, 1.0)


def simulate_row(
    rng: np.random.Generator, split: tuple[np.ndarray, np.ndarray], n: int, seed_sd: float = 0.03, shift: float = 0.0
) -> list[stats.RunCounts]:
    """``n`` runs (seeds 0..n-1) of one config: per-seed global and per-class effects N(0, seed_sd)."""
    union, base = split
    runs = []
    for seed in range(n):
        effect = rng.normal(0.0, seed_sd) + rng.normal(0.0, seed_sd, size=(1, base.shape[1]))
        iou = np.clip(base + shift + effect + rng.normal(0.0, 0.05, size=base.shape), 0.0, 1.0)
        inter = np.rint(iou * union).astype(np.int64)
        miou = float(stats.miou_from_sums(inter.sum(0), union.sum(0)))
        runs.append(
            stats.RunCounts(
                f"sim-{seed}",
                seed,
                miou,
                tuple(f"img{i}" for i in range(len(union))),
                inter,
                union.astype(np.int64),
                inter,
            )
        )
    return runs


def seed_level_sd(seed_sd: float = 0.03, draws: int = 400, rng_seed: int = 1) -> float:
    """The standard deviation of one run's mIoU across seeds under the simulation (fraction)."""
    rng = np.random.default_rng(rng_seed)
    split = make_split(rng)
    return float(np.std([stats.run_miou(r) for r in simulate_row(rng, split, draws, seed_sd)], ddof=1))


def rejection_rate(
    compare: Callable[..., Any], n: int, trials: int, shift: float = 0.0, seed_sd: float = 0.03, rng_seed: int = 0
) -> float:
    """Share of ``trials`` comparisons of two simulated rows of ``n`` seeds each with p < ALPHA (and, for a
    shifted row a, delta > 0); each trial draws a new split."""
    rng = np.random.default_rng(rng_seed)
    hits = 0
    for _ in range(trials):
        split = make_split(rng)
        result = compare(simulate_row(rng, split, n, seed_sd, shift), simulate_row(rng, split, n, seed_sd))
        hits += bool(result.p_value < ALPHA and (shift == 0 or result.delta > 0))
    return hits / trials


def load_old_stats(rev: str) -> Any:
    """``bench/report/stats.py`` as of git revision ``rev``, imported as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{rev}:bench/report/stats.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "old_stats.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("old_stats", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["old_stats"] = module  # dataclasses resolve their module by name
        spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--old-rev", default="c93e960")
    parser.add_argument("--seed-sd", type=float, default=0.03)
    parser.add_argument("--shift-sd", type=float, default=3.0, help="power: true difference in seed SDs")
    args = parser.parse_args(argv)
    sd = seed_level_sd(args.seed_sd)
    shift = args.shift_sd * sd
    versions = {"old (" + args.old_rev + ")": load_old_stats(args.old_rev).compare, "new": stats.compare}
    print(
        f"seed-level sd of mIoU: {100 * sd:.2f} points; power shift: {args.shift_sd} sd = {100 * shift:.2f} "
        f"points; {args.trials} trials each; alpha {ALPHA}"
    )
    print(f"{'version':<16} {'n':>2} {'A/A rate':>9} {'power':>7}")
    for name, compare in versions.items():
        for n in (3, 5):
            aa = rejection_rate(compare, n, args.trials, 0.0, args.seed_sd, rng_seed=n)
            power = rejection_rate(compare, n, args.trials, shift, args.seed_sd, rng_seed=100 + n)
            print(f"{name:<16} {n:>2} {aa:>9.3f} {power:>7.3f}", flush=True)


if __name__ == "__main__":
    main()

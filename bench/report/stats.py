"""Statistics behind report tables: per-row CIs, paired bootstrap deltas, "best" only when significant.

    from bench.report.stats import counts_from_record, row_stats, compare, best_row, chance_miou
    runs_a = [counts_from_record(r) for r in records_of_row_a]          # one RunCounts per seed
    print(row_stats(runs_a).ci, compare(runs_a, runs_b).p_value)

Every quantity is a fraction (0..1) like ``metrics.miou``; the report prints percent.

Data. A run record may carry ``metrics.per_image`` = ``{"names", "intersection", "union", "label_pixels"}``,
each an (N images, C classes) integer array. The dataset-level mIoU of a run is the mean over classes of
``sum_i I[i, c] / sum_i U[i, c]``, classes with union 0 skipped (the convention of ``bench.metrics.mean_iou``),
so a bootstrap replicate re-weights images and recomputes mIoU from summed counts (a ratio estimator, never an
average of per-image IoUs). Older records without ``per_image`` give seed-level statistics only.

Choices (scipy is not a dependency, so no t quantiles; every interval is a bootstrap or an exact test):

* ``row_stats``: mean and sample std (ddof=1) of the runs' ``metrics.miou``; 95% CI = percentile bootstrap
  (``REPLICATES`` replicates, RNG seed ``RNG_SEED``) resampling images with replacement (the same images for
  every seed) and seeds with replacement. Without per-image counts only seeds are resampled (n >= 2); with
  few seeds that interval is too narrow (for n = 2 it is the range of the two runs), which the tables say.
* ``compare(a, b)``: delta = mIoU(a) - mIoU(b) averaged over the seeds both rows have (paired by seed value;
  rows without a common seed are resampled independently). With per-image counts in both rows: paired
  bootstrap over images (the same indices for both rows) and seeds; CI = percentile interval, two-sided
  p = 2 * min(P*(delta* <= 0), P*(delta* >= 0)) with a +1 correction. Seed-level only: CI = bootstrap over
  seeds, p = exact sign-flip test on the paired seed differences (permutation test when unpaired), because a
  bootstrap over 2-3 seeds would call any consistent difference significant.
* ``best_row``: a row is "best" only if it is significantly better (p < alpha, delta > 0) than every other
  row. That is an intersection-union test, so it keeps level alpha without a multiplicity correction.
* ``chance_miou``: the constant majority-class predictor: IoU of that class = its pixel share, every other
  present class 0, averaged over the classes present.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

REPLICATES = 2000
RNG_SEED = 0
ALPHA = 0.05
STRONG_ALPHA = 0.01
SIG_LEGEND = "`*` p < 0.05, `**` p < 0.01"
# exact sign-flip / permutation tests enumerate every assignment up to this many, else sample them
MAX_EXACT = 20000


class StatsError(ValueError):
    """Per-image counts that do not fit together (shapes, image names)."""


@dataclass
class RunCounts:
    """One run (seed) of a table row: its stored mIoU and, when recorded, per-image counts (N, C)."""

    run_id: str
    seed: Any
    miou: float
    names: tuple[str, ...] | None = None
    intersection: np.ndarray | None = None   # (N, C)
    union: np.ndarray | None = None          # (N, C)
    label_pixels: np.ndarray | None = None   # (N, C)

    @property
    def has_images(self) -> bool:
        return self.intersection is not None


@dataclass
class RowStats:
    """Mean, sample std (NaN when n = 1), n, and the 95% CI of one row; ``ci_method`` says how it was made."""

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    ci_method: str   # "images+seeds" | "images" | "seeds" | "none"


@dataclass
class Comparison:
    """``a - b``: point delta, its 95% CI, two-sided p-value, and what was resampled."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str          # "paired bootstrap over images+seeds" | ... | "none"
    seeds: tuple[Any, ...]   # the seeds compared (common seeds when paired)
    paired_seeds: bool

    @property
    def significant(self) -> bool:
        return not math.isnan(self.p_value) and self.p_value < ALPHA

    @property
    def mark(self) -> str:
        return significance_mark(self.p_value)


def significance_mark(p_value: float) -> str:
    """``**`` for p < 0.01, ``*`` for p < 0.05, else ``""`` (also for NaN)."""
    if math.isnan(p_value):
        return ""
    return "**" if p_value < STRONG_ALPHA else "*" if p_value < ALPHA else ""


# --------------------------------------------------------------------------------------------------
# records -> counts


def counts_from_record(record: dict[str, Any]) -> RunCounts:
    """A record's ``metrics.miou`` (fraction) and ``metrics.per_image`` counts, if present."""
    metrics = record.get("metrics") or {}
    miou = metrics.get("miou")
    run = RunCounts(run_id=str(record.get("run_id")), seed=record.get("seed"),
                    miou=float(miou) if miou is not None else math.nan)
    per_image = metrics.get("per_image")
    if not per_image:
        return run
    arrays = {}
    for key in ("intersection", "union", "label_pixels"):
        array = np.asarray(per_image.get(key, []), dtype=np.int64)
        if array.ndim != 2 or array.shape[0] != len(per_image.get("names", [])):
            raise StatsError(f"run {run.run_id}: metrics.per_image.{key} must be an (images, classes) array with "
                             f"one row per name; re-run `bench eval` to rewrite the record")
        arrays[key] = array
    if len({a.shape for a in arrays.values()}) != 1:
        raise StatsError(f"run {run.run_id}: metrics.per_image arrays differ in shape; re-run `bench eval`")
    run.names = tuple(str(n) for n in per_image["names"])
    run.intersection, run.union, run.label_pixels = arrays["intersection"], arrays["union"], arrays["label_pixels"]
    return run


def miou_from_sums(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """(..., C) summed intersection and union -> (...) mIoU; classes with union 0 skipped (NaN if none left)."""
    intersection = np.asarray(intersection, dtype=float)
    union = np.asarray(union, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / np.where(union > 0, union, 1), np.nan)
    present = (union > 0).sum(-1)
    total = np.nansum(iou, axis=-1)
    return np.where(present > 0, total / np.maximum(present, 1), np.nan)


def chance_miou(label_pixels: np.ndarray) -> float:
    """mIoU of predicting the majority class everywhere, from (N, C) or (C,) labelled-pixel counts."""
    totals = np.asarray(label_pixels, dtype=float)
    totals = totals.reshape(-1, totals.shape[-1]).sum(0)
    present = totals > 0
    if not present.any():
        return math.nan
    return float(totals.max() / totals.sum() / present.sum())


# --------------------------------------------------------------------------------------------------
# resampling


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _image_weights(rng: np.random.Generator, n_images: int, replicates: int) -> np.ndarray:
    """(B, N) how often each image is drawn in each replicate (resampling with replacement)."""
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=replicates).astype(float)


def _seed_weights(rng: np.random.Generator, n_seeds: int, replicates: int) -> np.ndarray:
    """(B, S) fraction of the resampled seeds that is each seed (rows sum to 1)."""
    if n_seeds == 1:
        return np.ones((replicates, 1))
    return rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=replicates) / n_seeds


def _replicate_mious(runs: Sequence[RunCounts], weights: np.ndarray) -> np.ndarray:
    """(B, S) dataset-level mIoU of each run under each image re-weighting (B, N)."""
    cols = [miou_from_sums(weights @ r.intersection, weights @ r.union) for r in runs]
    return np.stack(cols, axis=1)


def _check_images(runs: Sequence[RunCounts]) -> int:
    """Number of images shared by ``runs``; raises when their image lists differ."""
    names = runs[0].names
    for run in runs[1:]:
        if run.names != names:
            raise StatsError(f"runs {runs[0].run_id} and {run.run_id} were evaluated on different images "
                             f"(per_image.names differ); compare runs of the same validation split")
    return len(names or ())


def _percentile_ci(samples: np.ndarray) -> tuple[float, float]:
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(samples, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return float(low), float(high)


def bootstrap_p_value(samples: np.ndarray) -> float:
    """Two-sided p of "delta = 0" from bootstrap deltas: 2 * the smaller tail beyond 0, +1 corrected."""
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return math.nan
    tail = min((samples <= 0).sum(), (samples >= 0).sum())
    return float(min(1.0, 2 * (tail + 1) / (samples.size + 1)))


# --------------------------------------------------------------------------------------------------
# one row


def row_stats(runs: Sequence[RunCounts], replicates: int = REPLICATES, seed: int = RNG_SEED) -> RowStats:
    """Mean ± std over the runs' stored mIoU, n, and a 95% bootstrap CI (see the module docstring)."""
    values = np.array([r.miou for r in runs], dtype=float)
    n = len(values)
    if n == 0:
        raise StatsError("row_stats needs at least one run")
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else math.nan
    rng = _rng(seed)
    if all(r.has_images for r in runs):
        _check_images(runs)
        per_replicate = _replicate_mious(runs, _image_weights(rng, runs[0].intersection.shape[0], replicates))
        mixed = (per_replicate * _seed_weights(rng, n, replicates)).sum(1)
        low, high = _percentile_ci(mixed)
        return RowStats(mean, std, n, low, high, "images+seeds" if n > 1 else "images")
    if n > 1:
        low, high = _percentile_ci((_seed_weights(rng, n, replicates) * values).sum(1))
        return RowStats(mean, std, n, low, high, "seeds")
    return RowStats(mean, std, n, math.nan, math.nan, "none")


# --------------------------------------------------------------------------------------------------
# two rows


def _pairing(a: Sequence[RunCounts], b: Sequence[RunCounts]) -> tuple[list[RunCounts], list[RunCounts], bool]:
    """Runs of a and b on their common seeds, in the same seed order; all runs when no seed is shared."""
    by_seed_b = {r.seed: r for r in b}
    common = [r for r in a if r.seed in by_seed_b]
    if common:
        return common, [by_seed_b[r.seed] for r in common], True
    return list(a), list(b), False


def compare(a: Sequence[RunCounts], b: Sequence[RunCounts], replicates: int = REPLICATES,
            seed: int = RNG_SEED) -> Comparison:
    """mIoU(a) - mIoU(b) with a 95% CI and a two-sided p-value (paired over images and seeds when possible)."""
    a, b, paired = _pairing(a, b)
    seeds = tuple(r.seed for r in a) if paired else ()
    if all(r.has_images for r in (*a, *b)):
        _check_images([*a, *b])
        return _compare_images(a, b, paired, seeds, replicates, seed)
    return _compare_seeds(a, b, paired, seeds, replicates, seed)


def _compare_images(a: list[RunCounts], b: list[RunCounts], paired: bool, seeds: tuple[Any, ...],
                    replicates: int, seed: int) -> Comparison:
    rng = _rng(seed)
    weights = _image_weights(rng, a[0].intersection.shape[0], replicates)
    full = np.ones((1, weights.shape[1]))
    mious_a, mious_b = _replicate_mious(a, weights), _replicate_mious(b, weights)
    delta = float(_replicate_mious(a, full).mean() - _replicate_mious(b, full).mean())
    seeds_a = _seed_weights(rng, len(a), replicates)
    seeds_b = seeds_a if paired else _seed_weights(rng, len(b), replicates)
    samples = (mious_a * seeds_a).sum(1) - (mious_b * seeds_b).sum(1)
    low, high = _percentile_ci(samples)
    method = "paired bootstrap over images" + ("+seeds" if len(a) > 1 or len(b) > 1 else "")
    if not paired:
        method += " (seeds unpaired)"
    return Comparison(delta, low, high, bootstrap_p_value(samples), method, seeds, paired)


def _compare_seeds(a: list[RunCounts], b: list[RunCounts], paired: bool, seeds: tuple[Any, ...],
                   replicates: int, seed: int) -> Comparison:
    va, vb = np.array([r.miou for r in a]), np.array([r.miou for r in b])
    delta = float(va.mean() - vb.mean())
    rng = _rng(seed)
    if paired:
        diffs = va - vb
        low, high = _percentile_ci((_seed_weights(rng, len(diffs), replicates) * diffs).sum(1))
        return Comparison(delta, low, high, sign_flip_p_value(diffs, rng), "seeds only: sign-flip test",
                          seeds, True)
    boot = (_seed_weights(rng, len(va), replicates) * va).sum(1) - (_seed_weights(rng, len(vb), replicates) * vb).sum(1)
    low, high = _percentile_ci(boot) if len(va) > 1 or len(vb) > 1 else (math.nan, math.nan)
    return Comparison(delta, low, high, permutation_p_value(va, vb, rng), "seeds only: permutation test",
                      seeds, False)


def sign_flip_p_value(diffs: np.ndarray, rng: np.random.Generator | None = None) -> float:
    """Two-sided p of a paired randomisation test: the share of sign flips with |mean| >= the observed one.

    Exact (every one of the 2**n flips) up to ``MAX_EXACT`` flips; with n = 2 the smallest p is 0.5.
    """
    diffs = np.asarray(diffs, dtype=float)
    if diffs.size == 0:
        return math.nan
    if 2 ** diffs.size <= MAX_EXACT:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=diffs.size)))
    else:
        signs = (rng or _rng(RNG_SEED)).choice((1.0, -1.0), size=(MAX_EXACT, diffs.size))
    observed = abs(diffs.mean())
    return float((np.abs((signs * diffs).mean(1)) >= observed - 1e-12).mean())


def permutation_p_value(va: np.ndarray, vb: np.ndarray, rng: np.random.Generator | None = None) -> float:
    """Two-sided p of an unpaired permutation test on the difference of means (exact when small)."""
    pooled = np.concatenate([va, vb]).astype(float)
    n_a = len(va)
    if len(va) == 0 or len(vb) == 0:
        return math.nan
    if math.comb(len(pooled), n_a) <= MAX_EXACT:
        groups = [list(c) for c in itertools.combinations(range(len(pooled)), n_a)]
    else:
        groups = [list((rng or _rng(RNG_SEED)).permutation(len(pooled))[:n_a]) for _ in range(MAX_EXACT)]
    observed = abs(va.mean() - vb.mean())
    total = pooled.sum()
    stats = [abs(pooled[g].mean() - (total - pooled[g].sum()) / (len(pooled) - n_a)) for g in groups]
    return float((np.array(stats) >= observed - 1e-12).mean())


# --------------------------------------------------------------------------------------------------
# best


@dataclass
class BestResult:
    """The row called best (None when no row beats every other significantly) and the comparisons made."""

    index: int | None
    comparisons: dict[int, Comparison]   # other row -> candidate - other, for the highest-mean candidate

    @property
    def found(self) -> bool:
        return self.index is not None


def best_row(rows: Sequence[Sequence[RunCounts]], replicates: int = REPLICATES, seed: int = RNG_SEED) -> BestResult:
    """The row significantly better than every other row, if any (candidates tried by descending mean)."""
    if len(rows) < 2:
        return BestResult(None, {})
    means = [float(np.mean([r.miou for r in row])) for row in rows]
    order = sorted(range(len(rows)), key=lambda i: -means[i])
    first: dict[int, Comparison] = {}
    for candidate in order:
        comparisons = {}
        for other in order:
            if other == candidate:
                continue
            comparisons[other] = compare(rows[candidate], rows[other], replicates, seed)
            if not (comparisons[other].significant and comparisons[other].delta > 0):
                break
        else:
            return BestResult(candidate, comparisons)
        first = first or comparisons
    return BestResult(None, first)

"""Statistics behind report tables: seed-level CIs, Welch t-tests between rows, Holm, "best" only when significant.

    from bench.report.stats import counts_from_record, row_stats, compare, pairwise, best_row, chance_miou
    runs_a = [counts_from_record(r) for r in records_of_row_a]          # one RunCounts per seed
    print(row_stats(runs_a).ci, compare(runs_a, runs_b).p_value)
    family = pairwise([runs_a, runs_b, runs_c])     # {(i, j): Comparison of row i - row j}, Holm-adjusted

Every quantity is a fraction (0..1) like ``metrics.miou``; the report prints percent. The method, its reason
and its limits are in docs/statistics.md.

Data. A run record may carry ``metrics.per_image`` = ``{"names", "intersection", "union", "label_pixels"}``,
each an (N images, C classes) integer array, or for whole-video evaluation ``metrics.per_video`` (the same, one
row per video: videos are the independent unit of VSPW, their frames are not). A run's dataset-level mIoU is the
mean over classes of ``sum_i I[i, c] / sum_i U[i, c]``, over the classes of its ``metrics.miou_convention``
(``nonzero_union``, the default: union > 0, as ``bench.metrics.mean_iou``; ``present_in_gt``: labelled pixels
> 0); ``run_miou`` recomputes it from the counts when present (``metrics.miou`` otherwise).

The unit that varies is the seed (the training run): two runs of one config differ by several mIoU points,
far more than the image-sampling noise of one run, so every claim about a config is made over seeds.

* ``row_stats``: mean and sample std (ddof=1) of the runs' mIoU; n >= 2: 95% CI = mean ± t(0.975, n-1) · s/√n
  (``ci_method`` "t over seeds"); runs that all gave the same mIoU have no CI (``IDENTICAL``: the spread is
  unknown, and a zero-width interval would claim it is zero). n = 1: a percentile bootstrap over validation
  images, or videos for a whole-video record (``REPLICATES`` replicates, RNG seed ``RNG_SEED``), a within-run
  interval that knows nothing of seed-to-seed variance ("images, n = 1" / "videos, n = 1"); without counts, no
  CI ("none").
* ``mvc_bootstrap_ci``: the same over videos for a run's mVC (window sums and counts per video).
* ``compare(a, b)``: delta = mean mIoU(a) - mean mIoU(b) over all their runs; Welch's t-test (unequal
  variances, Welch–Satterthwaite df), two-sided p, 95% CI = delta ± t(0.975, df) · SE, so the CI excludes 0
  exactly when p < 0.05. A row with n < 2 gets no test (p and CI NaN, method "n < 2: no test").
* ``pairwise(rows)``: every pair of rows compared, p-values Holm-adjusted over the pairs that were tested
  (``Comparison.p_adjusted``; ``significant`` uses it).
* ``best_row``: a row is "best" only if it is significantly better (adjusted p < alpha, delta > 0) than every
  other row; ``best_row(..., lowest=True)``: "lowest" only if significantly worse than every other row.
* ``chance_miou``: the constant majority-class predictor: IoU of that class = its pixel share, every other
  present class 0, averaged over the classes present.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import t as student_t

from bench.errors import BenchError
from bench.run.validity import miou_from_sums

REPLICATES = 2000
RNG_SEED = 0
ALPHA = 0.05
STRONG_ALPHA = 0.01
SIG_LEGEND = "`*` p < 0.05, `**` p < 0.01 (Holm-adjusted)"
NO_TEST = "n < 2: no test"
IDENTICAL = "identical runs: no CI"  # every seed gave the same mIoU (e.g. a constant predictor)
WELCH = "Welch t-test over seeds"


class StatsError(BenchError, ValueError):
    """Per-image counts that do not fit together (shapes, image names)."""


@dataclass
class RunCounts:
    """One run (seed) of a table row: its stored mIoU and, when recorded, per-image counts (N, C)."""

    run_id: str
    seed: Any
    miou: float
    names: tuple[str, ...] | None = None
    intersection: np.ndarray | None = None  # (N, C)
    union: np.ndarray | None = None  # (N, C)
    label_pixels: np.ndarray | None = None  # (N, C)
    unit: str = "images"  # what the N rows are: "images", or "videos" (whole-video evaluation)
    convention: str = "nonzero_union"  # the classes metrics.miou averages (bench.metrics.MIOU_CONVENTIONS)

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
    ci_method: str  # "t over seeds" | "images, n = 1" | "videos, n = 1" | "none"


@dataclass
class Comparison:
    """``a - b``: point delta, its 95% CI, two-sided p (raw and Holm-adjusted), the test and the df."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str  # WELCH | NO_TEST
    n_a: int
    n_b: int
    df: float = math.nan
    p_adjusted: float = math.nan  # Holm over the table's tested pairs; equals p_value for a lone comparison

    def __post_init__(self) -> None:
        if math.isnan(self.p_adjusted):
            self.p_adjusted = self.p_value

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p_value)

    @property
    def significant(self) -> bool:
        return self.tested and self.p_adjusted < ALPHA

    @property
    def mark(self) -> str:
        return significance_mark(self.p_adjusted)

    def reversed(self) -> Comparison:
        """``b - a``: the same test with the sign of the delta and its CI flipped."""
        return Comparison(
            -self.delta,
            -self.ci_high,
            -self.ci_low,
            self.p_value,
            self.method,
            self.n_b,
            self.n_a,
            self.df,
            self.p_adjusted,
        )


def significance_mark(p_value: float) -> str:
    """``**`` for p < 0.01, ``*`` for p < 0.05, else ``""`` (also for NaN)."""
    if math.isnan(p_value):
        return ""
    return "**" if p_value < STRONG_ALPHA else "*" if p_value < ALPHA else ""


# --------------------------------------------------------------------------------------------------
# records -> counts


def counts_from_record(record: dict[str, Any]) -> RunCounts:
    """A record's ``metrics.miou`` (fraction) and its ``metrics.per_image`` (or ``per_video``) counts, if present."""
    metrics = record.get("metrics") or {}
    miou = metrics.get("miou")
    run = RunCounts(
        run_id=str(record.get("run_id")), seed=record.get("seed"), miou=float(miou) if miou is not None else math.nan
    )
    run.convention = str(metrics.get("miou_convention") or "nonzero_union")
    key = "per_video" if metrics.get("per_video") else "per_image"
    counts = metrics.get(key)
    if not counts:
        return run
    arrays = {}
    for name in ("intersection", "union", "label_pixels"):
        array = np.asarray(counts.get(name, []), dtype=np.int64)
        if array.ndim != 2 or array.shape[0] != len(counts.get("names", [])):
            raise StatsError(
                f"run {run.run_id}: metrics.{key}.{name} must be an (rows, classes) array with "
                f"one row per name; re-run `bench eval` to rewrite the record"
            )
        arrays[name] = array
    if len({a.shape for a in arrays.values()}) != 1:
        raise StatsError(f"run {run.run_id}: metrics.{key} arrays differ in shape; re-run `bench eval`")
    run.names = tuple(str(n) for n in counts["names"])
    run.intersection, run.union, run.label_pixels = arrays["intersection"], arrays["union"], arrays["label_pixels"]
    run.unit = "videos" if key == "per_video" else "images"
    return run


def run_miou(run: RunCounts) -> float:
    """A run's dataset-level mIoU under its convention: recomputed from its counts when it has them, else
    ``run.miou``."""
    if not run.has_images:
        return run.miou
    labelled = run.label_pixels.sum(0) if run.convention == "present_in_gt" else None
    return float(miou_from_sums(run.intersection.sum(0), run.union.sum(0), labelled))


def chance_miou(label_pixels: np.ndarray) -> float:
    """mIoU of predicting the majority class everywhere, from (N, C) or (C,) labelled-pixel counts."""
    totals = np.asarray(label_pixels, dtype=float)
    totals = totals.reshape(-1, totals.shape[-1]).sum(0)
    present = totals > 0
    if not present.any():
        return math.nan
    return float(totals.max() / totals.sum() / present.sum())


# --------------------------------------------------------------------------------------------------
# one row


def _image_weights(rng: np.random.Generator, n_images: int, replicates: int) -> np.ndarray:
    """(B, N) how often each image is drawn in each replicate (resampling with replacement)."""
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=replicates).astype(float)


def _check_images(runs: Sequence[RunCounts]) -> None:
    """Raises when runs that all carry per-image counts were scored on different image lists."""
    scored = [r for r in runs if r.has_images]
    for run in scored[1:]:
        if run.names != scored[0].names:
            raise StatsError(
                f"runs {scored[0].run_id} and {run.run_id} were evaluated on different images "
                f"(per_image.names differ); compare runs of the same validation split"
            )


def _percentile_ci(samples: np.ndarray) -> tuple[float, float]:
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        return math.nan, math.nan
    low, high = np.percentile(samples, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
    return float(low), float(high)


def image_bootstrap_ci(run: RunCounts, replicates: int = REPLICATES, seed: int = RNG_SEED) -> tuple[float, float]:
    """95% CI of one run's mIoU over its validation images (or videos; within-run: no seed variance): the
    percentile interval of the replicates shifted by their bias (replicate mean - estimate). The dataset-level mIoU
    drops a class from a replicate that draws none of its images, so replicates are biased (upwards when a rare
    class scores low) and the plain percentile interval can put the estimate at its edge."""
    weights = _image_weights(np.random.default_rng(seed), run.intersection.shape[0], replicates)
    labelled = weights @ run.label_pixels if run.convention == "present_in_gt" else None
    samples = miou_from_sums(weights @ run.intersection, weights @ run.union, labelled)
    low, high = _percentile_ci(samples)
    estimate = run_miou(run)
    kept = samples[~np.isnan(samples)]
    if kept.size == 0 or math.isnan(estimate):
        return low, high
    bias = float(kept.mean()) - estimate
    return max(0.0, min(low - bias, estimate)), min(1.0, max(high - bias, estimate))


def mvc_bootstrap_ci(
    windows: Sequence[Sequence[float]], replicates: int = REPLICATES, seed: int = RNG_SEED
) -> tuple[float, float]:
    """95% percentile CI of one run's mVC over its videos: ``windows`` = [window-score sum, windows] per video
    (``metrics.per_video.vc[variant][C]``); a resample's mVC is the sum of the sums over the sum of the counts."""
    pairs = np.asarray(windows, dtype=float).reshape(-1, 2)
    if pairs.shape[0] == 0 or pairs[:, 1].sum() == 0:
        return math.nan, math.nan
    weights = _image_weights(np.random.default_rng(seed), pairs.shape[0], replicates)
    with np.errstate(invalid="ignore", divide="ignore"):
        samples = (weights @ pairs[:, 0]) / (weights @ pairs[:, 1])
    return _percentile_ci(samples)


def row_stats(runs: Sequence[RunCounts], replicates: int = REPLICATES, seed: int = RNG_SEED) -> RowStats:
    """Mean ± std of the runs' mIoU, n, and a 95% CI: t over seeds, or for one run an image bootstrap."""
    values = np.array([run_miou(r) for r in runs], dtype=float)
    n = len(values)
    if n == 0:
        raise StatsError("row_stats needs at least one run")
    _check_images(runs)
    mean = float(values.mean())
    if n > 1:
        std = float(values.std(ddof=1))
        if std == 0.0:  # identical runs: the seed-to-seed spread is unknown, not zero (a zero-width CI claims it)
            return RowStats(mean, std, n, math.nan, math.nan, IDENTICAL)
        half = float(student_t.ppf(1 - ALPHA / 2, n - 1)) * std / math.sqrt(n)
        return RowStats(mean, std, n, mean - half, mean + half, "t over seeds")
    if runs[0].has_images:
        low, high = image_bootstrap_ci(runs[0], replicates, seed)
        return RowStats(mean, math.nan, 1, low, high, f"{runs[0].unit}, n = 1")
    return RowStats(mean, math.nan, 1, math.nan, math.nan, "none")


# --------------------------------------------------------------------------------------------------
# two rows


def welch(va: np.ndarray, vb: np.ndarray) -> tuple[float, float, float, float, float]:
    """Welch's t-test of mean(va) - mean(vb): (delta, ci_low, ci_high, p, df); NaN p / CI when n < 2 or when
    neither row varies (a t statistic needs a seed-to-seed variance)."""
    delta = float(va.mean() - vb.mean())
    if len(va) < 2 or len(vb) < 2:
        return delta, math.nan, math.nan, math.nan, math.nan
    sa, sb = va.var(ddof=1) / len(va), vb.var(ddof=1) / len(vb)
    se = math.sqrt(sa + sb)
    if se == 0.0:
        return delta, math.nan, math.nan, math.nan, math.nan
    df = (sa + sb) ** 2 / (sa**2 / (len(va) - 1) + sb**2 / (len(vb) - 1))
    half = float(student_t.ppf(1 - ALPHA / 2, df)) * se
    return delta, delta - half, delta + half, float(2 * student_t.sf(abs(delta / se), df)), float(df)


def compare(a: Sequence[RunCounts], b: Sequence[RunCounts]) -> Comparison:
    """mIoU(a) - mIoU(b): Welch t-test over the seed-level mIoU of the two rows (no test when n < 2)."""
    if not a or not b:
        raise StatsError("compare needs at least one run per row")
    _check_images([*a, *b])
    va = np.array([run_miou(r) for r in a], dtype=float)
    vb = np.array([run_miou(r) for r in b], dtype=float)
    delta, low, high, p, df = welch(va, vb)
    method = WELCH if not math.isnan(p) else NO_TEST if min(len(va), len(vb)) < 2 else "no seed variance: no test"
    return Comparison(delta, low, high, p, method, len(va), len(vb), df)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (NaN entries are left out of the family and stay NaN)."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted


def pairwise(rows: Sequence[Sequence[RunCounts]]) -> dict[tuple[int, int], Comparison]:
    """``{(i, j): row i - row j}`` for every i < j, Holm-adjusted over the tested pairs. Rows that cannot be
    compared (different image lists) are left out; ``skipped_pairs`` names them."""
    family: dict[tuple[int, int], Comparison] = {}
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            try:
                family[(i, j)] = compare(rows[i], rows[j])
            except StatsError:
                continue
    keys = list(family)
    for key, p in zip(keys, holm([family[k].p_value for k in keys])):
        family[key].p_adjusted = p
    return family


def oriented(family: dict[tuple[int, int], Comparison], i: int, j: int) -> Comparison | None:
    """Row i - row j from a ``pairwise`` family (either order stored), or None when not compared."""
    if (i, j) in family:
        return family[(i, j)]
    return family[(j, i)].reversed() if (j, i) in family else None


# --------------------------------------------------------------------------------------------------
# best


@dataclass
class BestResult:
    """The row called best (None when no row beats every other significantly) and its comparisons."""

    index: int | None
    comparisons: dict[int, Comparison]  # other row -> best - other (empty when none is best)

    @property
    def found(self) -> bool:
        return self.index is not None


def best_row(
    rows: Sequence[Sequence[RunCounts]],
    family: dict[tuple[int, int], Comparison] | None = None,
    lowest: bool = False,
) -> BestResult:
    """The row significantly better (Holm-adjusted) than every other row, if any; ``lowest``: the row
    significantly worse than every other row (its comparisons are then ``row - other``, all negative)."""
    if len(rows) < 2:
        return BestResult(None, {})
    family = pairwise(rows) if family is None else family
    sign = -1.0 if lowest else 1.0
    for candidate in range(len(rows)):
        comparisons = {other: oriented(family, candidate, other) for other in range(len(rows)) if other != candidate}
        if all(c is not None and c.significant and sign * c.delta > 0 for c in comparisons.values()):
            return BestResult(candidate, comparisons)
    return BestResult(None, {})

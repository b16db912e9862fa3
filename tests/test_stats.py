"""Report statistics on fabricated per-image counts, checked against numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import counts_miou, fake_eval_record, fake_image_rows, noisy_iou, per_image_counts
from scipy import stats as scipy_stats

from bench.report.stats import (
    NO_TEST,
    WELCH,
    RunCounts,
    StatsError,
    best_row,
    chance_miou,
    compare,
    counts_from_record,
    holm,
    miou_from_sums,
    oriented,
    pairwise,
    row_stats,
    significance_mark,
)

CLASSES = [0.7, 0.5, 0.35, 0.6]


def make_row(
    rng: np.random.Generator,
    union: np.ndarray,
    base: np.ndarray,
    seeds: list[int],
    shift: float = 0.0,
    noise: float = 0.05,
    name: str = "row",
) -> list[RunCounts]:
    """One table row: a run per seed, each with its own per-image noise around ``base + shift``."""
    return [
        counts_from_record(
            fake_eval_record(f"{name}-{s}", s, per_image_counts(noisy_iou(rng, base, noise, shift), union))
        )
        for s in seeds
    ]


def test_miou_from_counts_matches_a_plain_loop_and_the_record() -> None:
    rng = np.random.default_rng(1)
    union = rng.integers(0, 50, size=(12, 5))
    union[:, 3] = 0  # a class absent everywhere is skipped, as metrics.miou does
    per_image = per_image_counts(rng.uniform(size=(12, 5)), union)
    run = counts_from_record(fake_eval_record("r", 0, per_image))
    assert run.intersection.shape == (12, 5) and run.names[0] == "synthetic-val-0000"
    got = float(miou_from_sums(run.intersection.sum(0), run.union.sum(0)))
    assert got == pytest.approx(counts_miou(per_image)) and got == pytest.approx(run.miou)
    batched = miou_from_sums(np.stack([run.intersection.sum(0)] * 3), np.stack([run.union.sum(0)] * 3))
    assert batched.shape == (3,) and np.allclose(batched, got)


def test_row_stats_mean_std_n_and_t_ci_over_seeds() -> None:
    rng = np.random.default_rng(2)
    union, base = fake_image_rows(rng, 80, CLASSES)
    row = make_row(rng, union, base, [0, 1, 2])
    stats = row_stats(row)
    values = np.array([r.miou for r in row])
    assert stats.mean == pytest.approx(values.mean()) and stats.std == pytest.approx(values.std(ddof=1))
    half = 4.302653 * values.std(ddof=1) / math.sqrt(3)  # t(0.975, 2) from a printed table
    assert stats.n == 3 and stats.ci_method == "t over seeds"
    assert stats.ci_low == pytest.approx(stats.mean - half, rel=1e-5)
    assert stats.ci_high == pytest.approx(stats.mean + half, rel=1e-5)
    single = row_stats(row[:1])  # one run: a within-run bootstrap over images
    assert math.isnan(single.std) and single.ci_method == "images, n = 1"
    assert single.ci_low < single.mean < single.ci_high


def test_welch_test_against_its_formula() -> None:
    va, vb = [0.60, 0.62, 0.65], [0.50, 0.55, 0.51, 0.52]
    a = [counts_from_record(fake_eval_record(f"a{s}", s, miou=v)) for s, v in enumerate(va)]
    b = [counts_from_record(fake_eval_record(f"b{s}", s, miou=v)) for s, v in enumerate(vb)]
    result = compare(a, b)
    sa, sb = np.var(va, ddof=1) / 3, np.var(vb, ddof=1) / 4
    df = (sa + sb) ** 2 / (sa**2 / 2 + sb**2 / 3)
    assert result.method == WELCH and result.df == pytest.approx(df) and (result.n_a, result.n_b) == (3, 4)
    assert result.p_value == pytest.approx(scipy_stats.ttest_ind(va, vb, equal_var=False).pvalue)
    assert result.ci_high - result.delta == pytest.approx(scipy_stats.t.ppf(0.975, df) * math.sqrt(sa + sb))
    reverse = compare(b, a)
    assert reverse.delta == pytest.approx(-result.delta) and reverse.p_value == pytest.approx(result.p_value)


def test_the_ci_of_a_difference_excludes_zero_exactly_when_p_is_below_alpha() -> None:
    rng = np.random.default_rng(9)
    for _ in range(200):
        a = [counts_from_record(fake_eval_record("a", s, miou=v)) for s, v in enumerate(rng.normal(0.5, 0.03, 3))]
        b = [counts_from_record(fake_eval_record("b", s, miou=v)) for s, v in enumerate(rng.normal(0.53, 0.03, 3))]
        result = compare(a, b)
        assert (result.p_value < 0.05) == (result.ci_low > 0 or result.ci_high < 0)


def test_a_known_difference_is_significant() -> None:
    rng = np.random.default_rng(3)
    union, base = fake_image_rows(rng, 60, CLASSES)
    a = make_row(rng, union, base, [0, 1, 2], shift=0.10, name="a")
    b = make_row(rng, union, base, [0, 1, 2], name="b")
    result = compare(a, b)
    assert result.delta == pytest.approx(np.mean([r.miou for r in a]) - np.mean([r.miou for r in b]))
    assert result.delta == pytest.approx(0.10, abs=0.01)
    assert result.ci_low < 0.10 < result.ci_high and result.ci_low > 0
    assert result.p_value < 0.01 and result.significant and result.mark == "**" and 2 <= result.df <= 4


def test_a_row_with_one_run_gets_no_test() -> None:
    rng = np.random.default_rng(4)
    union, base = fake_image_rows(rng, 60, CLASSES)
    result = compare(make_row(rng, union, base, [0], shift=0.2), make_row(rng, union, base, [0, 1, 2]))
    assert result.method == NO_TEST and math.isnan(result.p_value) and math.isnan(result.ci_low)
    assert not result.significant and result.mark == "" and result.delta > 0.15


def test_holm_and_pairwise_families() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = holm([0.2, math.nan, 0.01])
    assert adjusted[0] == pytest.approx(0.2) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
    rng = np.random.default_rng(10)
    union, base = fake_image_rows(rng, 30, CLASSES)
    rows = [make_row(rng, union, base, [0, 1, 2], shift=0.02 * k) for k in range(3)]
    family = pairwise(rows)
    assert set(family) == {(0, 1), (0, 2), (1, 2)}
    assert all(c.p_adjusted >= c.p_value for c in family.values())
    assert oriented(family, 2, 0).delta == pytest.approx(-family[(0, 2)].delta)
    lone = compare(rows[0], rows[1])
    assert lone.p_adjusted == lone.p_value  # one comparison: nothing to adjust


def test_statistics_are_deterministic() -> None:
    rng = np.random.default_rng(6)
    union, base = fake_image_rows(rng, 40, CLASSES)
    a, b = make_row(rng, union, base, [0, 1], shift=0.01), make_row(rng, union, base, [0, 1])
    assert compare(a, b) == compare(a, b) and row_stats(a[:1]) == row_stats(a[:1])
    assert row_stats(a[:1], seed=1).ci_low != row_stats(a[:1]).ci_low  # the RNG seed fixes the one-run bootstrap


def test_best_only_when_significantly_better_than_every_other_row() -> None:
    rng = np.random.default_rng(7)
    union, base = fake_image_rows(rng, 60, CLASSES)
    rows = [
        make_row(rng, union, base, [0, 1, 2]),
        make_row(rng, union, base, [0, 1, 2], shift=0.08),
        make_row(rng, union, base, [0, 1, 2], shift=0.01),
    ]
    best = best_row(rows)
    assert best.index == 1 and set(best.comparisons) == {0, 2}
    assert all(c.significant and c.delta > 0 for c in best.comparisons.values())
    tied = [rows[0], make_row(rng, union, base, [0, 1, 2], shift=0.08), rows[1]]  # two rows at +8 points
    assert best_row(tied).index is None and not best_row(tied).found
    assert best_row(rows[:1]).index is None


def test_chance_level_is_the_majority_class_share_over_classes_present() -> None:
    label = np.array([[30, 10, 0, 0], [50, 5, 5, 0]])  # totals 80, 15, 5, 0: 3 classes present
    assert chance_miou(label) == pytest.approx((80 / 100) / 3)
    assert chance_miou(label.sum(0)) == pytest.approx(chance_miou(label))
    assert math.isnan(chance_miou(np.zeros((2, 3))))


def test_records_without_per_image_use_their_stored_miou() -> None:
    a = [counts_from_record(fake_eval_record(f"a{s}", s, miou=0.60 + 0.01 * s)) for s in range(2)]
    b = [counts_from_record(fake_eval_record(f"b{s}", s, miou=0.50 + 0.02 * s)) for s in range(2)]
    assert row_stats(a).ci_method == "t over seeds" and row_stats(a).mean == pytest.approx(0.605)
    assert row_stats(a[:1]).ci_method == "none" and math.isnan(row_stats(a[:1]).ci_low)
    two = compare(a, b)
    assert two.delta == pytest.approx(0.095) and two.method == WELCH
    assert significance_mark(0.03) == "*" and significance_mark(0.005) == "**" and significance_mark(0.2) == ""
    assert significance_mark(math.nan) == ""


def test_runs_on_different_images_are_an_error() -> None:
    rng = np.random.default_rng(8)
    union, base = fake_image_rows(rng, 5, CLASSES)
    a = make_row(rng, union, base, [0])
    other = per_image_counts(base, union, names=[f"other-{i}" for i in range(5)])
    b = [counts_from_record(fake_eval_record("b", 0, other))]
    with pytest.raises(StatsError, match="different images"):
        compare(a, b)
    with pytest.raises(StatsError, match="one row per name"):
        counts_from_record(fake_eval_record("bad", 0, {**other, "union": [[1, 2]]}, miou=0.5))

"""Report statistics on fabricated per-image counts, checked against numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.report.stats import (RunCounts, StatsError, best_row, chance_miou, compare, counts_from_record,
                                miou_from_sums, row_stats, sign_flip_p_value, significance_mark)
from conftest import counts_miou, fake_eval_record, fake_image_rows, noisy_iou, per_image_counts

CLASSES = [0.7, 0.5, 0.35, 0.6]


def make_row(rng: np.random.Generator, union: np.ndarray, base: np.ndarray, seeds: list[int], shift: float = 0.0,
             noise: float = 0.05, name: str = "row") -> list[RunCounts]:
    """One table row: a run per seed, each with its own per-image noise around ``base + shift``."""
    return [counts_from_record(fake_eval_record(f"{name}-{s}", s,
                                                per_image_counts(noisy_iou(rng, base, noise, shift), union)))
            for s in seeds]


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


def test_row_stats_mean_std_n_and_ci_against_numpy() -> None:
    rng = np.random.default_rng(2)
    union, base = fake_image_rows(rng, 80, CLASSES)
    row = make_row(rng, union, base, [0, 1, 2])
    stats = row_stats(row)
    values = np.array([r.miou for r in row])
    assert stats.mean == pytest.approx(values.mean()) and stats.std == pytest.approx(values.std(ddof=1))
    assert stats.n == 3 and stats.ci_method == "images+seeds"
    assert stats.ci_low < stats.mean < stats.ci_high and stats.ci_high - stats.ci_low < 0.1
    single = row_stats(row[:1])
    assert math.isnan(single.std) and single.ci_method == "images" and single.ci_low < single.mean < single.ci_high


def test_a_known_difference_is_significant() -> None:
    rng = np.random.default_rng(3)
    union, base = fake_image_rows(rng, 60, CLASSES)
    a = make_row(rng, union, base, [0, 1, 2], shift=0.10, name="a")
    b = make_row(rng, union, base, [0, 1, 2], name="b")
    result = compare(a, b)
    assert result.delta == pytest.approx(np.mean([r.miou for r in a]) - np.mean([r.miou for r in b]))
    assert result.delta == pytest.approx(0.10, abs=0.01)
    assert result.ci_low < 0.10 < result.ci_high and result.ci_low > 0
    assert result.p_value < 0.01 and result.significant and result.mark == "**"
    assert result.paired_seeds and result.seeds == (0, 1, 2) and "images+seeds" in result.method
    reverse = compare(b, a)
    assert reverse.delta == pytest.approx(-result.delta) and reverse.significant


def test_a_null_difference_is_not_flagged_and_false_positives_stay_near_alpha() -> None:
    rng = np.random.default_rng(4)
    flagged = 0
    for _ in range(40):
        union, base = fake_image_rows(rng, 60, CLASSES)
        result = compare(make_row(rng, union, base, [0, 1]), make_row(rng, union, base, [0, 1]), replicates=500)
        flagged += result.significant
    assert flagged <= 6  # 5% of 40 is 2; 6 or more has probability < 2% under a calibrated test


def test_delta_ci_covers_the_true_difference_about_95_percent() -> None:
    rng = np.random.default_rng(5)
    covered, trials = 0, 150
    for _ in range(trials):  # truth: the mean over classes of class_iou shift = 0.03 (no clipping at these values)
        union, base = fake_image_rows(rng, 50, CLASSES, image_sd=0.05)
        result = compare(make_row(rng, union, base, [0], shift=0.03), make_row(rng, union, base, [0]),
                         replicates=500)
        covered += result.ci_low <= 0.03 <= result.ci_high
    assert 0.88 <= covered / trials <= 1.0


def test_statistics_are_deterministic() -> None:
    rng = np.random.default_rng(6)
    union, base = fake_image_rows(rng, 40, CLASSES)
    a, b = make_row(rng, union, base, [0, 1], shift=0.01), make_row(rng, union, base, [0, 1])
    assert compare(a, b) == compare(a, b) and row_stats(a) == row_stats(a)
    assert compare(a, b, seed=1).ci_low != compare(a, b).ci_low  # the RNG seed is what fixes them


def test_best_only_when_significantly_better_than_every_other_row() -> None:
    rng = np.random.default_rng(7)
    union, base = fake_image_rows(rng, 60, CLASSES)
    rows = [make_row(rng, union, base, [0, 1]), make_row(rng, union, base, [0, 1], shift=0.08),
            make_row(rng, union, base, [0, 1], shift=0.01)]
    best = best_row(rows)
    assert best.index == 1 and set(best.comparisons) == {0, 2}
    assert all(c.significant and c.delta > 0 for c in best.comparisons.values())
    tied = [rows[0], make_row(rng, union, base, [0, 1], shift=0.08), rows[1]]  # two rows at +8 points
    assert best_row(tied).index is None and not best_row(tied).found
    assert best_row(rows[:1]).index is None


def test_chance_level_is_the_majority_class_share_over_classes_present() -> None:
    label = np.array([[30, 10, 0, 0], [50, 5, 5, 0]])  # totals 80, 15, 5, 0: 3 classes present
    assert chance_miou(label) == pytest.approx((80 / 100) / 3)
    assert chance_miou(label.sum(0)) == pytest.approx(chance_miou(label))
    assert math.isnan(chance_miou(np.zeros((2, 3))))


def test_records_without_per_image_fall_back_to_seed_level_statistics() -> None:
    a = [counts_from_record(fake_eval_record(f"a{s}", s, miou=0.60 + 0.01 * s)) for s in range(2)]
    b = [counts_from_record(fake_eval_record(f"b{s}", s, miou=0.50 + 0.01 * s)) for s in range(2)]
    assert row_stats(a).ci_method == "seeds" and row_stats(a).ci_low == pytest.approx(0.60)
    assert row_stats(a[:1]).ci_method == "none" and math.isnan(row_stats(a[:1]).ci_low)
    two = compare(a, b)
    assert two.delta == pytest.approx(0.10) and two.method == "seeds only: sign-flip test"
    assert two.p_value == pytest.approx(0.5) and not two.significant  # 2 seeds can never be significant
    six = [0.02, 0.03, 0.01, 0.025, 0.015, 0.02]
    assert sign_flip_p_value(np.array(six)) == pytest.approx(2 / 64)
    assert significance_mark(2 / 64) == "*" and significance_mark(0.005) == "**" and significance_mark(0.2) == ""
    unpaired = compare(a, [counts_from_record(fake_eval_record("c", 9, miou=0.5))])
    assert not unpaired.paired_seeds and unpaired.method == "seeds only: permutation test"
    assert unpaired.p_value == pytest.approx(1 / 3)  # the single run is the lowest of 3: 1 of 3 labellings


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

"""The row comparison is calibrated: A/A comparisons reject at about alpha, and a real difference is found.

Two rows drawn from one distribution (seeds differ by ~3 mIoU points, bench.perf.stats_calibration) are
compared 400 times each for n = 3 and n = 5 seeds; the old paired bootstrap rejected 15-22% of these.
"""

from __future__ import annotations

import pytest

from bench.perf.stats_calibration import rejection_rate, seed_level_sd
from bench.report.stats import compare

TRIALS = 400
# alpha 0.05 plus ~2.5 Monte-Carlo standard errors of a rate over 400 trials (sqrt(0.05 * 0.95 / 400) = 0.011)
MAX_FALSE_POSITIVE = 0.08


@pytest.mark.parametrize("n", [3, 5])
def test_a_a_comparisons_reject_at_most_alpha_plus_monte_carlo_error(n: int) -> None:
    rate = rejection_rate(compare, n, TRIALS, shift=0.0, rng_seed=n)
    assert rate <= MAX_FALSE_POSITIVE, f"A/A false-positive rate {rate:.3f} with n={n}"
    assert rate >= 0.02  # not calibrated by never rejecting


@pytest.mark.parametrize("n, shift_sd, min_power", [(3, 4.0, 0.8), (5, 3.0, 0.9)])
def test_a_true_difference_of_a_few_seed_sds_is_detected(n: int, shift_sd: float, min_power: float) -> None:
    shift = shift_sd * seed_level_sd()
    power = rejection_rate(compare, n, TRIALS, shift=shift, rng_seed=100 + n)
    assert power >= min_power, f"power {power:.3f} for a {shift_sd} seed-sd difference with n={n}"

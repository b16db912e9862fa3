"""Student's t distribution without scipy: two-sided p-values and quantiles for (possibly fractional) df.

    from bench.report.tdist import t_two_sided_p, t_quantile
    t_two_sided_p(2.5, df=4.0)        # P(|T| >= 2.5), T ~ t(4): 0.0668
    t_quantile(0.975, df=2.0)         # 4.3027

The two-sided tail of t(df) at |t| is the regularised incomplete beta function I_x(df/2, 1/2) with
x = df / (df + t^2) (Abramowitz & Stegun 26.7.1 and 26.5.27); I_x is evaluated by its continued fraction
(A&S 26.5.8) with the modified Lentz algorithm. Quantiles invert the tail by bisection. Accuracy ~1e-10,
checked against mpmath in tests/test_stats.py. Welch tests need fractional df, which table-based t
quantiles lack; scipy is not a dependency of the suite.
"""

from __future__ import annotations

import math

_EPS = 1e-14
_TINY = 1e-300
_MAX_TERMS = 500


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b) (converges fast for x < (a + 1) / (a + b + 2))."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for T ~ Student t with ``df`` > 0 degrees of freedom (NaN for NaN input)."""
    if math.isnan(t) or math.isnan(df) or df <= 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return min(1.0, incomplete_beta(df / 2.0, 0.5, df / (df + t * t)))


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile (0 < q < 1) of Student t with ``df`` > 0 degrees of freedom."""
    if not 0.0 < q < 1.0 or math.isnan(df) or df <= 0:
        return math.nan
    if q == 0.5:
        return 0.0
    tail = 2.0 * min(q, 1.0 - q)   # the two-sided tail beyond the quantile
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > tail:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if t_two_sided_p(mid, df) > tail else (low, mid)
        if high - low < 1e-12 * max(1.0, high):
            break
    value = 0.5 * (low + high)
    return value if q > 0.5 else -value

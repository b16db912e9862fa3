"""Statistics of per-frame times: percentiles, FPS, the median of pass medians and its spread, keyframe cycles.

summarise_times([10.2, 11.0, ...])            # median / p90 / p99 / mean / min / max (ms), fps
summarise_passes([[...], [...], ...])         # median of pass medians, IQR, spread, unstable flag
frame_type_stats(times, types, k)             # key / non-key statistics and the keyframe-cycle mean
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# a pass-median IQR above 10% of the median: under load one measurement put flow-warp's streaming time (25 ms)
# above its recompute time (23 ms), an inversion a spread check flags
UNSTABLE_SPREAD = 0.10


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100] of an ascending list."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarise_times(times_ms: Sequence[float]) -> dict[str, float]:
    """median / p90 / p99 / mean / min / max in ms and FPS (1000 / mean) of per-frame times."""
    values = sorted(float(t) for t in times_ms)
    mean = sum(values) / len(values) if values else math.nan
    return {
        "median_ms": _percentile(values, 50),
        "p90_ms": _percentile(values, 90),
        "p99_ms": _percentile(values, 99),
        "mean_ms": mean,
        "min_ms": values[0] if values else math.nan,
        "max_ms": values[-1] if values else math.nan,
        "fps": 1000.0 / mean if mean > 0 else math.nan,
    }


def summarise_passes(pass_times_ms: Sequence[Sequence[float]], max_spread: float = UNSTABLE_SPREAD) -> dict[str, Any]:
    """Statistics of repeated passes (each a list of per-frame ms): the median of the pass medians
    (``median_ms``), their IQR (``iqr_ms``), ``spread`` = IQR / median, ``unstable`` (spread > ``max_spread``),
    and p90 / p99 / mean / min / max / FPS of all frames (``frames_median_ms`` is the all-frame median)."""
    medians = [summarise_times(times)["median_ms"] for times in pass_times_ms]
    ordered = sorted(medians)
    median = _percentile(ordered, 50)
    iqr = _percentile(ordered, 75) - _percentile(ordered, 25)
    spread = iqr / median if median > 0 else math.nan
    frames = summarise_times([t for times in pass_times_ms for t in times])
    return {
        **frames,
        "frames_median_ms": frames["median_ms"],
        "median_ms": median,
        "iqr_ms": iqr,
        "spread": spread,
        "pass_medians_ms": medians,
        "passes": len(medians),
        "unstable": not spread <= max_spread,
    }  # NaN (no time measured) counts as unstable


def frame_type_stats(times_ms: Sequence[float], types: Sequence[str], keyframe_interval: int) -> dict[str, Any]:
    """A keyframe model's timed frames split by type: ``{"key": summarise_times, "non_key": ...}`` and
    ``cycle_mean_ms`` = (key median + (k - 1) * non-key median) / k, the mean cost of a keyframe cycle."""
    result: dict[str, Any] = {"keyframe_interval": keyframe_interval}
    for kind in ("key", "non_key"):
        chosen = [t for t, k in zip(times_ms, types) if k == kind]
        result[kind] = {**summarise_times(chosen), "frames": len(chosen)} if chosen else None
    key = result["key"]["median_ms"] if result["key"] else math.nan
    non_key = result["non_key"]["median_ms"] if result["non_key"] else key
    result["cycle_mean_ms"] = (key + (keyframe_interval - 1) * non_key) / keyframe_interval
    return result

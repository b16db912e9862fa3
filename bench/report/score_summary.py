"""What ``bench score`` prints: a scored prediction folder's mIoU (both conventions) and mVC (every variant and
window), each with a 95% CI from a percentile bootstrap over videos (docs/statistics.md, "Whole videos").

    result = score_predictions(pred_dir, videos, convention="nonzero_union")   # bench.evaluation.scoring
    print("\\n".join(score_lines(result)))

The predictions are fixed, so the interval describes the sampling of the validation videos only (the video is
the independent unit of VSPW; frames of one video are not): it says how much the number could move on another
draw of videos of the same kind, not how another training run would do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.report.stats import REPLICATES, RNG_SEED, RunCounts, image_bootstrap_ci, mvc_bootstrap_ci, run_miou


def _percent(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _ci(low: float, high: float) -> str:
    return "" if math.isnan(low) else f" [{_percent(low)}, {_percent(high)}]"


def miou_lines(result: dict[str, Any]) -> list[str]:
    """One line per mIoU convention: value and its video-bootstrap CI."""
    per_video = result["per_video"]
    lines = []
    for convention in ("nonzero_union", "present_in_gt"):
        counts = RunCounts("scored", None, math.nan, tuple(per_video["names"]), unit="videos", convention=convention)
        counts.intersection, counts.union, counts.label_pixels = (
            np.asarray(per_video[key], dtype=np.int64) for key in ("intersection", "union", "label_pixels")
        )
        low, high = image_bootstrap_ci(counts)
        lines.append(f"mIoU ({convention}): {_percent(run_miou(counts))}{_ci(low, high)}")
    return lines


def score_lines(result: dict[str, Any]) -> list[str]:
    """The report of ``bench score``: counts, both mIoUs and every mVC with 95% CIs over videos, in percent."""
    lines = [
        f"scored {result['num_videos']} videos, {result['num_frames']} frames under {result['pred_dir']} "
        f"(ids: {result['ids']})",
        *miou_lines(result),
    ]
    for variant, entry in result["mvc"].items():
        for window, counts in entry["counts"].items():
            low, high = mvc_bootstrap_ci(result["per_video"]["vc"][variant][window])
            lines.append(
                f"mVC_{window} ({variant}): {_percent(entry[f'mvc_{window}'])}{_ci(low, high)} "
                f"({counts['videos']} videos, {counts['skipped']} skipped, {counts['windows']} windows)"
            )
    if result["skipped_videos"]:
        lines.append(f"videos without predictions, left out: {' '.join(result['skipped_videos'])}")
    if result["extra_videos"]:
        lines.append(f"folders not in the split, ignored: {' '.join(result['extra_videos'][:10])}")
    lines.append(
        f"95% CIs: percentile bootstrap over videos ({REPLICATES} replicates, RNG seed {RNG_SEED}); "
        "the predictions are fixed, so they describe the sampling of videos only (docs/statistics.md)"
    )
    return lines

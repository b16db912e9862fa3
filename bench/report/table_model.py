"""One report table as data (``Table``: rows, statistics, notes) and how its values print.

fmt(0.4321), fmt_ci(1.2, 3.4, signed=True), fmt_p(0.013), key_text(None)   # "0.43", "[+1.2, +3.4]", ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.report.stats import (
    BestResult,
    Comparison,
)

MISSING = "—"
UNSTABLE_MARK = "~"  # prefix of a latency whose repeated passes disagree (bench.evaluation.latency.summarise_passes)
# CSV column order after the row keys
STAT_COLUMNS: tuple[str, ...] = (
    "oracle",
    "protocol",
    "miou_mean",
    "miou_std",
    "n",
    "ci_low",
    "ci_high",
    "ci_method",
    "delta_ref",
    "delta_ref_low",
    "delta_ref_high",
    "p_ref",
    "p_ref_raw",
    "sig_ref",
    "delta_ref_method",
)
ORACLE_LABEL = "(oracle: {})"  # appended to the row label of a run fed an oracle input (frames.oracle_input)
PROTOCOL_LABEL = "[{}]"  # appended to the row label of runs evaluated with test-time augmentation (ms+flip)


@dataclass
class Table:
    """A summary table: numeric ``frame`` (CSV), its row keys, statistics, and notes printed under it."""

    name: str
    ablation: str
    factor_label: str
    key_columns: list[str]  # display names of the row keys, factor first
    key_sources: list[str]  # their ``cfg:<dotted key>`` columns in ``runs``
    frame: pd.DataFrame
    runs: pd.DataFrame
    per_class: pd.DataFrame
    notes: list[str]
    origin: str
    reference: int | None = None  # frame row of the reference (deltas are to it); None when absent
    best: BestResult | None = None  # frame row significantly better than every other row, if any
    pairs: dict[tuple[int, int], Comparison] = field(default_factory=dict)  # (i, j) -> row i - row j, Holm-adjusted
    provenance: str = ""  # commit, versions, device and hardware of its runs (bench.report.provenance)
    chance: dict[str, float] = field(default_factory=dict)  # dataset -> majority-class mIoU (%)
    stat_problems: list[str] = field(default_factory=list)  # comparisons that could not be made, and why


def fmt(value: Any, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_ci(low: float, high: float, digits: int = 1, signed: bool = False) -> str:
    if math.isnan(low) or math.isnan(high):
        return MISSING
    return f"[{fmt(low, digits, signed)}, {fmt(high, digits, signed)}]"


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3g}" if p < 0.01 else f"{p:.3f}"  # never rounds across 0.01


def is_blank(value: Any) -> bool:
    """A row-key value the row's model does not take (``frames.runs_frame`` leaves it blank)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def key_text(value: Any) -> str:
    return MISSING if is_blank(value) else str(value)

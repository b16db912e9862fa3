"""One report table as data (``Table``: rows, statistics, notes) and how its values print.

fmt(0.4321), fmt_ci(1.2, 3.4, signed=True), fmt_p(0.013), key_text(None)   # "0.43", "[+1.2, +3.4]", ...
fmt_ci(13.16, 13.21)                                                      # "[13.16, 13.21]": never "[13.2, 13.2]"
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
AT_CHANCE_LABEL = "(at chance)"  # a row not above the majority-class predictor (tables._add_chance)
CONSTANT_MARK = "†"  # beside the pixel agreement and ETC TC of a row with constant predictions (trivially 100%)


def constant_label(constant_runs: int, n: int) -> str:
    """``"(constant prediction)"`` when every run of a row predicts one class everywhere, ``"(constant prediction:
    1 of 3 runs)"`` when some do, "" when none does."""
    if constant_runs <= 0:
        return ""
    return "(constant prediction)" if constant_runs >= n else f"(constant prediction: {constant_runs} of {n} runs)"


def row_marks(row: Any) -> str:
    """The labels a row carries after its name: test-time protocol, oracle input, at chance, constant prediction
    (" ..." or "")."""
    marks = [
        PROTOCOL_LABEL.format(row["protocol"]) if row.get("protocol") else "",
        ORACLE_LABEL.format(row["oracle"]) if row.get("oracle") else "",
        AT_CHANCE_LABEL if row.get("at_chance") else "",
        constant_label(int(row.get("constant_runs", 0) or 0), int(row.get("n", 0) or 0)),
    ]
    return "".join(f" {m}" for m in marks if m)


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
    lowest: BestResult | None = None  # frame row significantly worse than every other row, if any
    pairs: dict[tuple[int, int], Comparison] = field(default_factory=dict)  # (i, j) -> row i - row j, Holm-adjusted
    provenance: str = ""  # commit, versions, device and hardware of its runs (bench.report.provenance)
    chance: dict[str, float] = field(default_factory=dict)  # dataset -> majority-class mIoU (%)
    stat_problems: list[str] = field(default_factory=list)  # comparisons that could not be made, and why


def fmt(value: Any, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


MAX_CI_DIGITS = 4


def ci_digits(low: float, high: float, digits: int = 1) -> int:
    """Decimals that show an interval's width: ``digits``, more while the interval is narrower than one unit of
    the last decimal (an interval [13.16, 13.21] is not "[13.2, 13.2]", nor [-0.02, +0.02] "[-0.0, +0.0]"), at
    most ``MAX_CI_DIGITS``."""
    while digits < MAX_CI_DIGITS and 0 < abs(high - low) < 10.0**-digits:
        digits += 1
    return digits


def fmt_ci(low: float, high: float, digits: int = 1, signed: bool = False) -> str:
    """``[low, high]`` with at least ``digits`` decimals and as many more as its width needs (``ci_digits``)."""
    if math.isnan(low) or math.isnan(high):
        return MISSING
    digits = ci_digits(low, high, digits)
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

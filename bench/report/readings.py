"""One-line readings of a table: every pair of rows, the calibrated "best", the index line.

best_text(table)        # "per_frame < tmanet: +26.8 [+19.0, +34.5], Holm p = 0.013; ..."
reading(table)          # the table's line in reports/index.md
"""

from __future__ import annotations

from bench.report.stats import (
    ALPHA,
    Comparison,
)
from bench.report.table_model import (
    Table,
    ci_digits,
    fmt_ci,
    fmt_p,
    is_blank,
    row_marks,
)


def row_name(table: Table, i: int) -> str:
    """The row's factor value, its other keys, and its marks (oracle input, at chance, constant prediction)."""
    row = table.frame.loc[i]
    extra = ", ".join(f"{k}={row[k]}" for k in table.key_columns[1:] if not is_blank(row[k]))
    return f"{row[table.factor_label]}" + (f" ({extra})" if extra else "") + row_marks(row)


def mean_ci(table: Table, i: int) -> str:
    row = table.frame.loc[i]
    return f"{row['miou_mean']:.1f} mIoU, 95% CI {fmt_ci(row['ci_low'], row['ci_high'])}, n={int(row['n'])}"


def _p_text(comparison: Comparison, holm: bool) -> str:
    """ "p < 0.001" / "p = 0.43"; after a Holm correction "Holm p = ...", with the raw p when only it is < alpha."""
    p = comparison.p_adjusted
    text = "p < 0.001" if p < 0.001 else f"p = {fmt_p(p)}"
    if not holm:
        return text
    raw = comparison.p_value
    return "Holm " + text + (f" (raw p = {fmt_p(raw)})" if raw < ALPHA <= p else "")


def pair_text(table: Table, i: int, j: int, comparison: Comparison, holm: bool = False) -> str:
    """One pairwise difference, higher mean first: "a > b: +26.8 [+19.8, +33.6], p < 0.001" when significant,
    "a vs b: no significant difference, +2.5 [-5.1, +10.1], p = 0.43" when not (``holm``: the p is
    Holm-adjusted and says so), or why no test was made. The CI is the test's own unadjusted 95% interval."""
    if comparison.delta < 0:
        i, j, comparison = j, i, comparison.reversed()
    a, b = row_name(table, i), row_name(table, j)
    if not comparison.tested:
        return f"{a} vs {b}: {comparison.method} (Δ {100 * comparison.delta:+.1f})"
    low, high = 100 * comparison.ci_low, 100 * comparison.ci_high
    delta = f"{100 * comparison.delta:+.{ci_digits(low, high, 1)}f} {fmt_ci(low, high, 1, signed=True)}"
    if comparison.significant:
        return f"{a} > {b}: {delta}, {_p_text(comparison, holm)}"
    return f"{a} vs {b}: no significant difference, {delta}, {_p_text(comparison, holm)}"


def best_text(table: Table) -> str:
    """What the table says, pair by pair: every significant difference with its CI and p, then the pairs that
    do not differ significantly and those that could not be tested; "best X" first when one row is
    significantly better than every other row. Never a global "no significant difference"."""
    factor = table.factor_label
    if len(table.frame) < 2:
        return f"{factor}: one row only ({row_name(table, 0)}, {mean_ci(table, 0)}), nothing to compare"
    pairs = sorted(table.pairs.items(), key=lambda kv: (not kv[1].significant, not kv[1].tested, kv[0]))
    tested = sum(1 for c in table.pairs.values() if c.tested)
    parts = [pair_text(table, i, j, c, holm=tested > 1) for (i, j), c in pairs]
    how = f"Welch t-test over seeds, Holm-adjusted over {tested} tests" if tested > 1 else "Welch t-test over seeds"
    body = "; ".join(parts) if parts else "no pair of rows could be compared"
    best = table.best
    if best is not None and best.found:
        return (
            f"best {factor}: {row_name(table, best.index)} ({mean_ci(table, best.index)}; significantly "
            f"better than every other row); {how} (α = {ALPHA}): {body}"
        )
    return f"{factor} ({how}, α = {ALPHA}): {body}; no single row is significantly better than every other"


def reading(table: Table) -> str:
    """One sentence from the data: the "best" and the "lowest" row only when the calibrated test separates them
    (significantly better / worse than every other row), rows at chance, deltas to the paper."""
    frame = table.frame
    text = best_text(table)
    lowest = table.lowest
    if lowest is not None and lowest.found:
        where = mean_ci(table, lowest.index)
        text += f"; lowest: {row_name(table, lowest.index)} ({where}; significantly below every other row)"
    at_chance = [row_name(table, i) for i in frame.index if frame.loc[i].get("at_chance")]
    if at_chance:
        text += f"; at chance: {', '.join(at_chance)}"
    with_paper = frame[frame["paper_miou"].notna()]
    if not with_paper.empty:
        parts = [f"{r[table.factor_label]} {r['delta_paper']:+.1f}" for _, r in with_paper.iterrows()]
        text += f"; vs paper: {', '.join(parts)}"
    return text

"""Accuracy-vs-cost figures: the comparison tables' accuracy vs latency (and GFLOPs) with the Pareto front, and a
keyframe-interval grid's curves per method (``bench.report.figures`` lists every figure).

    pareto_front(points)                       # rows no other point beats in both latency and mIoU
    pareto_figure(tables, out_dir)             # accuracy_vs_latency
    keyframe_cost_figure(table, out_dir)       # <table>_accuracy_vs_cost
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from bench.report.plotting import (
    ORACLE_MARK,
    FigureResult,
    ci_caption,
    ci_errors,
    new_figure,
    row_settings,
    save,
)
from bench.report.stats import RunCounts, oriented, pairwise
from bench.report.table_model import is_blank


def pareto_front(points: pd.DataFrame, x: str = "latency_ms", y: str = "miou_mean") -> pd.DataFrame:
    """Points not dominated by another that is at least as fast and as accurate, and strictly better in one
    (by the point values alone; ``separated_front`` is what a report claims)."""
    keep = []
    for i, p in points.iterrows():
        dominated = ((points[x] <= p[x]) & (points[y] >= p[y]) & ((points[x] < p[x]) | (points[y] > p[y]))).any()
        if not dominated:
            keep.append(i)
    return points.loc[keep].sort_values(x)


@dataclass
class Front:
    """The front a figure may claim: its points (sorted by cost), whether the tests support naming it, and the
    front's pairs that are not separated from each other."""

    points: pd.DataFrame
    named: bool
    ties: list[tuple[str, str]]
    tests: int  # accuracy comparisons in the Holm family


def _cheaper(points: pd.DataFrame, x: str) -> Callable[[int, int], bool]:
    """``cheaper(i, j)``: point i costs separably less than j: latency IQRs of pass medians apart (q75 < q25),
    GFLOPs (exact counts) lower."""
    if x == "latency_ms":
        return lambda i, j: bool(points.at[i, "q75"] < points.at[j, "q25"])  # False when a quartile is NaN
    return lambda i, j: bool(points.at[i, x] < points.at[j, x] * (1 - 1e-9))


def separated_front(points: pd.DataFrame, x: str = "latency_ms") -> Front:
    """The Pareto front under separated differences only: i dominates j when it is significantly more accurate
    (Welch over seeds, Holm over the figure's pairs; ``bench.report.stats``) or separably cheaper, and neither
    less accurate nor more costly by those tests. Named only when a point is dominated, or when the front's
    points are pairwise separated trade-offs; otherwise nothing separates the rows and no front is claimed."""
    index = list(points.index)
    position = {i: k for k, i in enumerate(index)}
    family = pairwise(
        [
            [RunCounts(run, None, value) for run, value in zip(p["runs"].split(), p["mious"])]
            for _, p in points.iterrows()
        ]
    )

    def better(i: int, j: int) -> bool:
        comparison = oriented(family, position[i], position[j])
        return comparison is not None and comparison.significant and comparison.delta > 0

    cheaper = _cheaper(points, x)
    dominates = lambda i, j: (better(i, j) or cheaper(i, j)) and not better(j, i) and not cheaper(j, i)  # noqa: E731
    front = [i for i in index if not any(dominates(j, i) for j in index if j != i)]
    trade = lambda i, j: (better(i, j) and cheaper(j, i)) or (better(j, i) and cheaper(i, j))  # noqa: E731
    ties = [(points.at[i, "label"], points.at[j, "label"]) for i in front for j in front if i < j and not trade(i, j)]
    named = len(front) < len(index) or (len(front) > 1 and not ties)
    tests = sum(1 for c in family.values() if c.tested)
    return Front(points.loc[front].sort_values(x), named, ties if named else [], tests)


def front_text(front: Front, what: str, x: str, unit: str) -> str:
    """The reading of a front: its points, or why none is claimed."""
    if not front.named:
        return (
            f"no {what}: no row is separated from another (mIoU: Welch over seeds, Holm over {front.tests} "
            f"tested pairs; {'latency: IQRs of pass medians apart' if x == 'latency_ms' else 'GFLOPs: exact'})"
        )
    points = ", ".join(
        f"{r['label']} ({r[x]:.{1 if x == 'latency_ms' else 2}f} {unit}, {r['miou_mean']:.1f})"
        for _, r in front.points.iterrows()
    )
    ties = "; ".join(f"{a} and {b}" for a, b in front.ties)
    return f"{what}: {points}" + (f" (not separated from each other: {ties})" if ties else "")


def _point_label(table: Any, row: pd.Series) -> str:
    label = ", ".join(str(row[k]) for k in table.key_columns if not is_blank(row[k]))
    return label + (ORACLE_MARK.format(row["oracle"]) if row.get("oracle") else "")


def _latency_points(tables: list[Any]) -> pd.DataFrame:
    """One point per distinct table row with a latency (a row that several tables share, the same runs, is drawn
    once): label (prefixed by its table where labels would repeat), latency and its quartiles, recompute latency,
    GFLOPs, mIoU with its CI, n, and whether it is an oracle."""
    rows = []
    for table in tables:
        for _, row in table.frame.iterrows():
            if math.isnan(row["latency_ms"]):
                continue
            ids = set(str(row["run_ids"]).split())
            runs = table.runs[table.runs["run_id"].astype(str).isin(ids)].sort_values("run_id")
            rows.append(
                {
                    "label": _point_label(table, row),
                    "table": table.name,
                    "runs": " ".join(runs["run_id"].astype(str)),
                    "mious": [float(v) / 100 for v in runs["miou"]],  # seed-level, for the front's tests
                    "latency_ms": row["latency_ms"],
                    "q25": row.get("latency_q25_ms", math.nan),
                    "q75": row.get("latency_q75_ms", math.nan),
                    "recompute_ms": runs["latency_recompute_ms"].mean(),
                    "gflops": row.get("gflops", math.nan),
                    "miou_mean": row["miou_mean"],
                    "ci_low": row["ci_low"],
                    "ci_high": row["ci_high"],
                    "n": row["n"],
                    "ci_method": row["ci_method"],
                    "oracle": bool(row.get("oracle")),
                }
            )
    points = pd.DataFrame(rows)
    if points.empty:
        return points
    points = points.drop_duplicates("runs").reset_index(drop=True)
    if points["label"].duplicated().any():
        points["label"] = points["table"] + ": " + points["label"]
    return points


def is_keyframe_grid(table: Any) -> bool:
    return table.factor_label == "keyframe_interval"


def comparison_tables(tables: list[Any]) -> list[Any]:
    """The tables the accuracy-vs-cost figure draws: the method comparisons (``methods`` and ``sota``), else
    every table that is not a keyframe-interval grid (those get their own curves), else all."""
    return (
        [t for t in tables if t.ablation in ("methods", "sota")]
        or [t for t in tables if not is_keyframe_grid(t)]
        or tables
    )


def iqr_errors(points: pd.DataFrame) -> np.ndarray:
    """(2, points) left and right horizontal bar lengths: median - q25 and q75 - median (0 where unknown)."""
    low = (points["latency_ms"] - points["q25"]).to_numpy(dtype=float)
    high = (points["q75"] - points["latency_ms"]).to_numpy(dtype=float)
    return np.nan_to_num(np.clip(np.stack([low, high]), 0, None))


def _draw_points(ax: Any, points: pd.DataFrame, x: str, front: pd.DataFrame, xerr: np.ndarray | None) -> None:
    colours = sns.color_palette("tab10", len(points))
    errors = ci_errors(points)
    for i, p in points.iterrows():
        on_front = i in front.index
        ax.errorbar(
            p[x],
            p["miou_mean"],
            yerr=errors[:, [i]],
            xerr=None if xerr is None else xerr[:, [i]],
            fmt="D" if p["oracle"] else "o",
            color=colours[i],
            markersize=9 if on_front else 6,
            markerfacecolor="none" if p["oracle"] else colours[i],
            markeredgecolor="black" if on_front else colours[i],
            capsize=3,
            label=f"{p['label']} (n={int(p['n'])})",
        )
        if x == "latency_ms" and not math.isnan(p["recompute_ms"]):
            ax.plot([p["latency_ms"], p["recompute_ms"]], [p["miou_mean"]] * 2, ":", color=colours[i], lw=1)
            ax.scatter(p["recompute_ms"], p["miou_mean"], facecolors="none", edgecolors=colours[i], s=40)
    if not front.empty:
        ax.step(
            front[x],
            front["miou_mean"],
            where="post",
            color="black",
            lw=1.5,
            alpha=0.6,
            label="Pareto front (oracles excluded)",
        )
    ax.set_ylabel("mIoU (%)")
    ax.set_ylim(bottom=0)


def pareto_figure(tables: list[Any], out_dir: Path) -> FigureResult:
    """mIoU vs streaming latency (IQR bars) for the method tables (or every table if there is none); the Pareto
    front (oracles excluded) drawn and named only where the tests separate it (``separated_front``); a GFLOPs
    panel when the records have GFLOPs."""
    name = "accuracy_vs_latency"
    points = _latency_points(comparison_tables(tables))
    if points.empty:
        return FigureResult(name, [], "no run has a latency measurement yet (run `bench latency CONFIG` per run)")
    front = separated_front(points[~points["oracle"]])
    flops = points[points["gflops"].notna()]
    fig = new_figure(figsize=(11, 4) if not flops.empty else (6, 4))
    axes = fig.subplots(1, 2 if not flops.empty else 1, squeeze=False)[0]
    _draw_points(axes[0], points, "latency_ms", front.points if front.named else points.iloc[:0], iqr_errors(points))
    # one legend for both panels (same colours), below them: inside, it hid the points it names
    axes[0].legend(
        fontsize=6, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=2 if flops.empty else 3, frameon=False
    )
    axes[0].set_xlabel(
        "latency per frame, ms\n(streaming median, bars: IQR over passes; hollow = recompute)", fontsize=8
    )
    axes[0].set_title(f"accuracy vs latency\n{ci_caption(points)}", fontsize=8)
    text = front_text(front, "Pareto front (oracles excluded)", "latency_ms", "ms")
    if not flops.empty:
        flops = flops.reset_index(drop=True)
        flop_front = separated_front(flops[~flops["oracle"]], x="gflops")
        _draw_points(axes[1], flops, "gflops", flop_front.points if flop_front.named else flops.iloc[:0], None)
        axes[1].set_xlabel("GFLOPs per frame\n(streaming, FlopCounterMode: 2 FLOPs per multiply-add)", fontsize=8)
        axes[1].set_title("accuracy vs compute", fontsize=8)
        text += "; " + front_text(flop_front, "GFLOPs front", "gflops", "GFLOPs")
    oracles = points[points["oracle"]]
    if not oracles.empty:
        text += "; oracles, not on the front: " + ", ".join(oracles["label"])
    return FigureResult(name, save(fig, out_dir, name), figure=fig, reading=text)


# --------------------------------------------------------------------------------------------------


def _curve_reading(setting: str, rows: pd.DataFrame, factor: str) -> str:
    points = [
        f"k={r[factor]} {r['miou_mean']:.1f} ({r['latency_ms']:.1f} ms"
        + ("" if math.isnan(r["gflops"]) else f", {r['gflops']:.3g} GFLOPs")
        + ")"
        for _, r in rows.iterrows()
    ]
    return f"{setting}: " + ", ".join(points)


def keyframe_cost_figure(table: Any, out_dir: Path) -> FigureResult:
    """mIoU (95% CI) against per-frame latency (IQR bars) and GFLOPs (both means over a keyframe cycle) for a
    keyframe-interval grid: one connected curve per method (the other key columns), each point labelled by k."""
    name, factor = f"{table.name}_accuracy_vs_cost", table.factor_label
    frame = table.frame.assign(setting=row_settings(table).to_numpy())
    frame = frame[frame["latency_ms"].notna()].rename(columns={"latency_q25_ms": "q25", "latency_q75_ms": "q75"})
    if frame.empty:
        return FigureResult(name, [], "no run of this table has a latency measurement yet")
    panels = [("latency_ms", "latency per frame, ms (streaming median, mean over a keyframe cycle; bars: IQR)")]
    if frame["gflops"].notna().all():
        panels.append(("gflops", "GFLOPs per frame (mean over a keyframe cycle)"))
    fig = new_figure(figsize=(5.5 * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    groups = list(frame.groupby("setting", sort=False))
    readings = []
    for colour, (setting, rows) in zip(sns.color_palette("tab10", len(groups)), groups):
        rows = rows.sort_values(factor)
        oracle = ORACLE_MARK.format(rows["oracle"].iloc[0]) if rows["oracle"].astype(bool).any() else ""
        low, high = int(rows["n"].min()), int(rows["n"].max())
        label = f"{setting or table.name}{oracle} (n={low if low == high else f'{low}-{high}'})"
        for ax, (x, _) in zip(axes, panels):
            ax.errorbar(
                rows[x],
                rows["miou_mean"],
                yerr=ci_errors(rows),
                xerr=iqr_errors(rows) if x == "latency_ms" else None,
                fmt="-o",
                color=colour,
                markerfacecolor="none" if oracle else colour,
                capsize=3,
                label=label,
            )
            for _, r in rows.iterrows():
                ax.annotate(
                    f"k={r[factor]}",
                    (r[x], r["miou_mean"]),
                    xytext=(4, 4),
                    textcoords="offset points",
                    fontsize=7,
                    color=colour,
                )
        readings.append(_curve_reading(setting or table.name, rows, factor))
    for ax, (_, xlabel) in zip(axes, panels):
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("mIoU (%)")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_title(f"{table.name}: accuracy vs cost by keyframe interval\n{ci_caption(frame)}", fontsize=8)
    return FigureResult(name, save(fig, out_dir, name), figure=fig, reading="; ".join(readings))

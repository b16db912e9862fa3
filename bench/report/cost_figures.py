"""Accuracy-vs-cost figures: the comparison tables' accuracy vs latency (and GFLOPs) with the Pareto front, and a
keyframe-interval grid's curves per method (``bench.report.figures`` lists every figure).

    pareto_front(points)                       # rows no other point beats in both latency and mIoU
    pareto_figure(tables, out_dir)             # accuracy_vs_latency
    keyframe_cost_figure(table, out_dir)       # <table>_accuracy_vs_cost
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from bench.report.plotting import (
    ORACLE_MARK,
    FigureResult,
    ci_caption,
    ci_errors,
    row_settings,
    save,
)
from bench.report.table_model import is_blank


def pareto_front(points: pd.DataFrame, x: str = "latency_ms", y: str = "miou_mean") -> pd.DataFrame:
    """Points not dominated by another that is at least as fast and as accurate, and strictly better in one."""
    keep = []
    for i, p in points.iterrows():
        dominated = ((points[x] <= p[x]) & (points[y] >= p[y]) & ((points[x] < p[x]) | (points[y] > p[y]))).any()
        if not dominated:
            keep.append(i)
    return points.loc[keep].sort_values(x)


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
            recompute = table.runs.loc[table.runs["run_id"].astype(str).isin(ids), "latency_recompute_ms"].mean()
            rows.append(
                {
                    "label": _point_label(table, row),
                    "table": table.name,
                    "runs": " ".join(sorted(ids)),
                    "latency_ms": row["latency_ms"],
                    "q25": row.get("latency_q25_ms", math.nan),
                    "q75": row.get("latency_q75_ms", math.nan),
                    "recompute_ms": recompute,
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
    """mIoU vs streaming latency (IQR bars) for the method tables (or every table if there is none), front
    highlighted without the oracles; a GFLOPs panel when the records have GFLOPs."""
    name = "accuracy_vs_latency"
    points = _latency_points(comparison_tables(tables))
    if points.empty:
        return FigureResult(name, [], "no run has a latency measurement yet (run `bench latency CONFIG` per run)")
    fair = points[~points["oracle"]]
    front = pareto_front(fair)
    flops = points[points["gflops"].notna()]
    fig = Figure(figsize=(11, 4) if not flops.empty else (6, 4))
    axes = fig.subplots(1, 2 if not flops.empty else 1, squeeze=False)[0]
    _draw_points(axes[0], points, "latency_ms", front, iqr_errors(points))
    # one legend for both panels (same colours), below them: inside, it hid the points it names
    axes[0].legend(
        fontsize=6, loc="upper left", bbox_to_anchor=(0.0, -0.2), ncol=2 if flops.empty else 3, frameon=False
    )
    axes[0].set_xlabel(
        "latency per frame, ms\n(streaming median, bars: IQR over passes; hollow = recompute)", fontsize=8
    )
    axes[0].set_title(f"accuracy vs latency\n{ci_caption(points)}", fontsize=8)
    text = "Pareto front (oracles excluded): " + ", ".join(
        f"{r['label']} ({r['latency_ms']:.1f} ms, {r['miou_mean']:.1f})" for _, r in front.iterrows()
    )
    if not flops.empty:
        flops = flops.reset_index(drop=True)
        flop_front = pareto_front(flops[~flops["oracle"]], x="gflops")
        _draw_points(axes[1], flops, "gflops", flop_front, None)
        axes[1].set_xlabel("GFLOPs per frame\n(streaming, FlopCounterMode: 2 FLOPs per multiply-add)", fontsize=8)
        axes[1].set_title("accuracy vs compute", fontsize=8)
        text += "; GFLOPs front: " + ", ".join(
            f"{r['label']} ({r['gflops']:.2f} GFLOPs)" for _, r in flop_front.iterrows()
        )
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
    fig = Figure(figsize=(5.5 * len(panels), 4.2), layout="constrained")
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

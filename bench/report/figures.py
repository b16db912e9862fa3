"""Report figures (PNG and PDF, matplotlib Figure API + seaborn styles) drawn from ``bench.report.tables`` tables.

    bench report ablations/*.yaml            # calls draw_all(tables, "reports/figures")

Importing this module does not touch matplotlib's backend or global style: figures are ``matplotlib.figure.Figure``
objects saved with ``fig.savefig``, and seaborn styles apply only inside ``draw_all``.

Figures (one file pair each, under ``<out>/figures``); error bars are always the table's 95% CI
(``bench.report.stats``) with n printed next to each point or bar, and every y-axis starts at 0:

* ``<table>_miou_vs_memory_length``: mIoU vs memory length, one line per other varying key; a dashed per-frame
  reference line (per_frame runs of the same dataset in any table of the report), a dotted chance line
  (majority-class predictor) and paper numbers as crosses where they exist;
* ``<table>_bars``: bars (mean, 95% CI) with the seeds as dots, for aggregation and encoding ablations;
* ``accuracy_vs_latency``: mIoU (95% CI) vs streaming-mode median latency for every method of the method
  comparison tables (``methods``, ``sota``; a row two tables share is drawn once), horizontal bars =
  the latency's IQR over repeated passes (25th-75th percentile of the pass medians, mean over seeds), recompute
  latency as hollow markers, the Pareto front (no other point is both faster and more accurate) highlighted;
  oracle rows (ground-truth input, ``frames.oracle_input``) are drawn as hollow diamonds, labelled, and never
  on the front; a second panel, mIoU vs GFLOPs per frame, when the latency records carry ``gflops``;
* ``<table>_accuracy_vs_cost``, for a keyframe-interval grid: mIoU (95% CI) against latency (IQR bars) and
  GFLOPs per frame, both means over a keyframe cycle, one connected curve per method, each point labelled k;
* ``per_class_iou_<dataset>``: heatmap, table rows (mean over their n seeds) x classes;
* ``confusion_<dataset>``: one heatmap per table row: its runs' confusion matrices (``metrics.confusion_matrix``)
  summed and normalised per ground-truth class (each row sums to 100%), so the diagonal is the class accuracy;
* ``qualitative_<table>``: one synthetic validation clip (memory frames, current frame, ground truth) and the
  predictions of each model whose run has a checkpoint (a model without one is skipped, with a note), with a
  class legend.

Every figure comes with a one-line reading for ``reports/index.md``.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from bench.report.plotting import FigureResult, save
from bench.report.tables import best_text, is_blank
from bench.run.rundir import RunDir

CI_METHODS = {
    "t over seeds": "mean ± t·s/√n over seeds",
    "images, n = 1": "one run: bootstrap over images",
    "none": "none (n = 1, no per-image counts)",
}
ORACLE_MARK = " (oracle: {})"


def _settings(table: Any) -> pd.Series:
    """Per frame row, the values of the non-factor key columns as text ("" when there are none)."""
    extra = table.key_columns[1:]
    return (
        table.frame.apply(lambda r: ", ".join(f"{k}={r[k]}" for k in extra if not is_blank(r[k])), axis=1)
        if extra
        else pd.Series([""] * len(table.frame), index=table.frame.index)
    )


def ci_errors(frame: pd.DataFrame) -> np.ndarray:
    """(2, rows) lower and upper error-bar lengths from the 95% CI columns; 0 where there is no CI."""
    low = (frame["miou_mean"] - frame["ci_low"]).to_numpy(dtype=float)
    high = (frame["ci_high"] - frame["miou_mean"]).to_numpy(dtype=float)
    return np.nan_to_num(np.clip(np.stack([low, high]), 0, None))


def ci_caption(frame: pd.DataFrame) -> str:
    """What a point and its bar are, e.g. "mean of 3 seeds; bars: 95% CI, mean ± t·s/√n over seeds"."""
    n_min, n_max = int(frame["n"].min()), int(frame["n"].max())
    points = (
        "one seed per point"
        if n_max == 1
        else f"mean of {n_max} seeds"
        if n_min == n_max
        else f"mean of {n_min}–{n_max} seeds (n per point)"
    )
    methods = ", ".join(CI_METHODS.get(m, m) for m in dict.fromkeys(frame["ci_method"]))
    return f"{points}; bars: 95% CI, {methods}"


def _annotate_n(ax: Any, xs: Any, ys: Any, ns: Any) -> None:
    for x, y, n in zip(xs, ys, ns):
        ax.annotate(f"n={int(n)}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=6, color="0.3")


def per_frame_level(tables: list[Any], reference: pd.DataFrame) -> tuple[float, int] | None:
    """Mean mIoU (%) and run count of the per_frame runs, in any table, trained and scored exactly like the
    ``reference`` runs: the same data, train (seed aside) and eval settings (None if there are none). Another
    generator setting (e.g. the negative control) is another task, not a reference."""
    runs = pd.concat([t.runs for t in tables], ignore_index=True).drop_duplicates("run_id")
    keys = [
        c
        for c in reference.columns
        if c.startswith(("cfg:data.", "cfg:train.", "cfg:eval.")) and c != "cfg:train.seed" and c in runs.columns
    ]
    wanted = {tuple(map(str, row)) for row in reference[keys].itertuples(index=False)}
    same = runs[keys].astype(str).apply(tuple, axis=1).isin(wanted) if keys else False
    chosen = runs[(runs["model"] == "per_frame") & same]
    return (float(chosen["miou"].mean()), len(chosen)) if len(chosen) else None


def _reference_lines(ax: Any, table: Any, tables: list[Any]) -> None:
    """Per-frame (dashed) and chance (dotted) horizontal lines for the table's dataset, where known."""
    dataset = str(table.runs["dataset"].iloc[0])
    per_frame = per_frame_level(tables, table.runs)
    if per_frame is not None and table.ablation != "methods":
        ax.axhline(per_frame[0], ls="--", color="0.2", lw=1, label=f"per-frame baseline (n={per_frame[1]})")
    if dataset in table.chance:
        ax.axhline(
            table.chance[dataset],
            ls=":",
            color="0.5",
            lw=1,
            label=f"chance: majority class ({table.chance[dataset]:.1f})",
        )


def memory_length_figure(table: Any, out_dir: Path, tables: list[Any] | None = None) -> FigureResult:
    """mIoU vs memory length: 95% CI error bars, n per point, per-frame and chance lines, y from 0."""
    frame, settings = table.frame, _settings(table)
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    for setting, rows in frame.groupby(settings, sort=False):
        label = f"TMANet{', ' + setting if setting else ''} (95% CI)"
        ax.errorbar(
            rows[table.factor_label], rows["miou_mean"], yerr=ci_errors(rows), marker="o", capsize=3, label=label
        )
        _annotate_n(ax, rows[table.factor_label], rows["miou_mean"], rows["n"])
    paper = frame[frame["paper_miou"].notna()]
    if not paper.empty:
        ax.scatter(
            paper[table.factor_label], paper["paper_miou"], marker="x", color="black", s=60, label="paper", zorder=3
        )
    _reference_lines(ax, table, tables or [table])
    ax.set_xticks(sorted(frame[table.factor_label].unique()))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("memory length T (past frames)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"{table.name}: mIoU vs memory length\n{ci_caption(frame)}", fontsize=8)
    ax.legend(fontsize=7, loc="lower right")
    name = f"{table.name}_miou_vs_memory_length"
    return FigureResult(name, save(fig, out_dir, name), figure=fig, reading=best_text(table))


def bars_figure(table: Any, out_dir: Path, tables: list[Any] | None = None) -> FigureResult:
    """Bars (mean, 95% CI) with one dot per seed and n per bar, for an aggregation / encoding / other ablation."""
    frame, settings = table.frame, _settings(table)
    order = list(dict.fromkeys(frame[table.factor_label].astype(str)))
    kinds = list(dict.fromkeys(settings))
    width = 0.8 / len(kinds)
    colours = sns.color_palette("tab10", len(kinds))
    fig = Figure(figsize=(max(4.0, 1.2 * len(order) + 2), 3.8))
    ax = fig.subplots()
    for k, kind in enumerate(kinds):
        rows = frame[settings == kind]
        xs = np.array([order.index(str(v)) for v in rows[table.factor_label]]) + (k - (len(kinds) - 1) / 2) * width
        ax.bar(
            xs,
            rows["miou_mean"],
            width * 0.9,
            yerr=ci_errors(rows),
            capsize=4,
            alpha=0.8,
            color=colours[k],
            label=(kind or "mean") + " (95% CI)",
        )
        for x, (_, row) in zip(xs, rows.iterrows()):
            seeds = table.runs.loc[table.runs["run_id"].astype(str).isin(str(row["run_ids"]).split()), "miou"]
            ax.scatter(np.full(len(seeds), x), seeds, color="black", s=10, zorder=3)
            ax.text(
                x,
                1.0,
                f"n={int(row['n'])}",
                ha="center",
                va="bottom",
                fontsize=7,
                bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
            )
    _reference_lines(ax, table, tables or [table])
    oracle = {str(v): o for v, o in zip(frame[table.factor_label], frame["oracle"]) if o}
    ax.set_xticks(
        range(len(order)), [v + ("\n" + ORACLE_MARK.format(oracle[v]).strip() if v in oracle else "") for v in order]
    )
    ax.set_ylim(bottom=0)
    ax.set_xlabel(table.factor_label)
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"{table.name}\n{ci_caption(frame)}; dots = seeds", fontsize=8)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    name = f"{table.name}_bars"
    return FigureResult(name, save(fig, out_dir, name), figure=fig, reading=best_text(table))


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


def _is_keyframe_grid(table: Any) -> bool:
    return table.factor_label == "keyframe_interval"


def comparison_tables(tables: list[Any]) -> list[Any]:
    """The tables the accuracy-vs-cost figure draws: the method comparisons (``methods`` and ``sota``), else
    every table that is not a keyframe-interval grid (those get their own curves), else all."""
    return (
        [t for t in tables if t.ablation in ("methods", "sota")]
        or [t for t in tables if not _is_keyframe_grid(t)]
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


def per_class_figures(tables: list[Any], out_dir: Path) -> list[FigureResult]:
    """One heatmap per dataset: table rows (per-class IoU averaged over seeds) x classes."""
    by_dataset: dict[str, dict[str, pd.Series]] = {}
    seen: set[frozenset[str]] = set()
    for table in tables:
        if table.per_class.empty:
            continue
        for _, row in table.frame.iterrows():
            ids = [i for i in str(row["run_ids"]).split() if i in table.per_class.index]
            if not ids or frozenset(ids) in seen:
                continue
            seen.add(frozenset(ids))
            dataset = str(table.runs.loc[table.runs["run_id"] == ids[0], "dataset"].iloc[0])
            label = f"{table.name}: " + ", ".join(f"{k}={row[k]}" for k in table.key_columns) + f" (n={len(ids)})"
            by_dataset.setdefault(dataset, {})[label] = table.per_class.loc[ids].mean()
    results = []
    for dataset, rows in by_dataset.items():
        grid = pd.DataFrame(rows).T
        name = f"per_class_iou_{dataset}"
        fig = Figure(figsize=(max(6.0, 0.55 * grid.shape[1] + 3), max(2.5, 0.4 * grid.shape[0] + 1.5)))
        ax = fig.subplots()
        sns.heatmap(
            grid,
            annot=grid.shape[1] <= 20,
            fmt=".0f",
            cmap="viridis",
            vmin=0,
            vmax=100,
            ax=ax,
            cbar_kws={"label": "IoU (%)"},
        )
        ax.set_title(f"per-class IoU, {dataset} (each row: mean of its n runs)")
        ax.set_xlabel("class")
        ax.set_ylabel("")
        means = grid.mean(axis=0)
        text = (
            f"hardest class: {means.idxmin()} ({means.min():.1f} IoU mean over rows), "
            f"easiest: {means.idxmax()} ({means.max():.1f})"
        )
        results.append(FigureResult(name, save(fig, out_dir, name), figure=fig, reading=text))
    return results


def _confusion_of(table: Any, ids: list[str]) -> np.ndarray | None:
    """The summed (C, C) confusion counts of the runs ``ids`` from their record.json, or None if one lacks it."""
    total = None
    for run_id in ids:
        run_dir = table.runs.loc[table.runs["run_id"] == run_id, "run_dir"].iloc[0]
        record = RunDir(run_dir).read_record().record if run_dir else None
        matrix = ((record or {}).get("metrics") or {}).get("confusion_matrix")
        if matrix is None:
            return None
        total = np.asarray(matrix, dtype=float) if total is None else total + np.asarray(matrix, dtype=float)
    return total


def confusion_figures(tables: list[Any], out_dir: Path) -> list[FigureResult]:
    """Per dataset: one row-normalised confusion heatmap (%) per table row whose runs all record the matrix."""
    by_dataset: dict[str, dict[str, pd.DataFrame]] = {}
    seen: set[frozenset[str]] = set()
    for table in tables:
        for _, row in table.frame.iterrows():
            ids = str(row["run_ids"]).split()
            counts = None if frozenset(ids) in seen else _confusion_of(table, ids)
            if counts is None:
                continue
            names = list(table.per_class.columns)  # the class names, where the records have per-class IoU
            classes = names if len(names) == len(counts) else [str(c) for c in range(len(counts))]
            seen.add(frozenset(ids))
            dataset = str(table.runs.loc[table.runs["run_id"] == ids[0], "dataset"].iloc[0])
            label = f"{table.name}: " + ", ".join(f"{k}={row[k]}" for k in table.key_columns) + f" (n={len(ids)})"
            share = 100 * counts / np.maximum(counts.sum(1, keepdims=True), 1)
            by_dataset.setdefault(dataset, {})[label] = pd.DataFrame(share, index=classes, columns=classes)
    return [_confusion_grid(dataset, grids, out_dir) for dataset, grids in by_dataset.items()]


def _panel_title(label: str, side_inches: float) -> str:
    """``"table: key=value (n=3)"`` on two lines (table, then settings), each wrapped to the panel's width."""
    width = max(16, int(side_inches * 13))  # characters of 8-pt text per inch, with a margin
    return "\n".join(textwrap.fill(part, width) for part in label.split(": ", 1))


def _confusion_grid(dataset: str, grids: dict[str, pd.DataFrame], out_dir: Path) -> FigureResult:
    name, c = f"confusion_{dataset}", len(next(iter(grids.values())))
    cols = min(3, len(grids))
    rows = math.ceil(len(grids) / cols)
    side = max(3.0, 0.3 * c + 1.6)
    # constrained layout keeps titles, tick labels and the (single, shared) colour bar apart and on the canvas
    fig = Figure(figsize=(side * cols + 1.2, (side + 0.5) * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax, (label, grid) in zip(axes, grids.items()):
        sns.heatmap(
            grid,
            annot=c <= 12,
            fmt=".0f",
            cmap="viridis",
            vmin=0,
            vmax=100,
            ax=ax,
            square=True,
            cbar=False,
            annot_kws={"fontsize": 7},
        )
        ax.set_title(_panel_title(label, side), fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("ground truth")
    for ax in axes[len(grids) :]:
        ax.axis("off")
    fig.colorbar(
        axes[0].collections[0],
        ax=list(axes[: len(grids)]),
        label="% of the ground-truth class",
        shrink=min(1.0, 0.9 / rows**0.5),
    )
    worst = []
    for label, grid in grids.items():
        off = grid.to_numpy().copy()
        np.fill_diagonal(off, -1)
        i, j = np.unravel_index(off.argmax(), off.shape)
        worst.append(f"{label}: {grid.index[i]} -> {grid.columns[j]} ({off[i, j]:.0f}%)")
    text = "largest confusion per row: " + "; ".join(worst)
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
    frame = table.frame.assign(setting=_settings(table).to_numpy())
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


def draw_all(tables: list[Any], out_dir: str | Path) -> list[FigureResult]:
    """Every figure the tables support; a figure that cannot be drawn is reported, not raised."""
    out = Path(out_dir)
    with sns.axes_style("whitegrid"), sns.plotting_context("paper"):  # scoped: the caller's style is kept
        return _draw_all(tables, out)


def _draw_all(tables: list[Any], out: Path) -> list[FigureResult]:
    results: list[FigureResult] = []
    for table in tables:
        if table.ablation == "memory_length":
            results.append(memory_length_figure(table, out, tables))
        elif table.ablation in ("aggregation", "encoding", "other"):
            results.append(bars_figure(table, out, tables))
        if _is_keyframe_grid(table):
            results.append(keyframe_cost_figure(table, out))
    if tables:
        results.append(pareto_figure(tables, out))
    results += per_class_figures(tables, out)
    results += confusion_figures(tables, out)
    synthetic = [t for t in tables if (t.runs["dataset"] == "synthetic").all()]
    strips = [t for t in synthetic if t.ablation == "methods"] or synthetic[:1]
    trained = [t for t in strips if any(d and RunDir(d).has_checkpoint() for d in t.runs["run_dir"])]
    results += [
        FigureResult(f"qualitative_{t.name}", [], "no run of this table has a checkpoint.pt")
        for t in strips
        if not any(t is u for u in trained)
    ]
    if trained:
        # the strip runs the trained models: torch is imported only when a table needs it (start-up time)
        from bench.report.qualitative import qualitative_figure

        results += [qualitative_figure(table, out) for table in trained]
    return results

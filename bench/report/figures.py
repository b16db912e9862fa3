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

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from bench.report.class_figures import confusion_figures, per_class_figures
from bench.report.cost_figures import is_keyframe_grid, keyframe_cost_figure, pareto_figure
from bench.report.plotting import (
    ORACLE_MARK,
    FigureResult,
    annotate_n,
    ci_caption,
    ci_errors,
    new_figure,
    row_settings,
    save,
)
from bench.report.readings import best_text
from bench.run.rundir import RunDir


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
    frame, settings = table.frame, row_settings(table)
    fig = new_figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    for setting, rows in frame.groupby(settings, sort=False):
        label = f"TMANet{', ' + setting if setting else ''} (95% CI)"
        ax.errorbar(
            rows[table.factor_label], rows["miou_mean"], yerr=ci_errors(rows), marker="o", capsize=3, label=label
        )
        annotate_n(ax, rows[table.factor_label], rows["miou_mean"], rows["n"])
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
    frame, settings = table.frame, row_settings(table)
    order = list(dict.fromkeys(frame[table.factor_label].astype(str)))
    kinds = list(dict.fromkeys(settings))
    width = 0.8 / len(kinds)
    colours = sns.color_palette("tab10", len(kinds))
    fig = new_figure(figsize=(max(4.0, 1.2 * len(order) + 2), 3.8))
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
        if is_keyframe_grid(table):
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

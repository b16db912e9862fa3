"""Per-class figures: IoU heatmaps (rows x classes) and confusion matrices normalised per ground-truth class
(``bench.report.figures`` lists every figure).

    per_class_figures(tables, out_dir)         # per_class_iou_<dataset>
    confusion_figures(tables, out_dir)         # confusion_<dataset>
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from bench.report.plotting import (
    FigureResult,
    new_figure,
    save,
)
from bench.report.table_model import row_marks
from bench.run.rundir import RunDir


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
            label = f"{table.name}: " + ", ".join(f"{k}={row[k]}" for k in table.key_columns) + row_marks(row)
            by_dataset.setdefault(dataset, {})[f"{label} (n={len(ids)})"] = table.per_class.loc[ids].mean()
    results = []
    for dataset, rows in by_dataset.items():
        grid = pd.DataFrame(rows).T
        name = f"per_class_iou_{dataset}"
        fig = new_figure(figsize=(max(6.0, 0.55 * grid.shape[1] + 3), max(2.5, 0.4 * grid.shape[0] + 1.5)))
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
        text = _extremes(grid.mean(axis=0).round(1))
        results.append(FigureResult(name, save(fig, out_dir, name), figure=fig, reading=text))
    return results


def _extremes(means: pd.Series) -> str:
    """The hardest and easiest class (IoU mean over rows, one decimal), each named only when no other class ties
    with it; descriptive (no test: the rows' runs are not independent samples of a class)."""
    parts = []
    for word, value in (("hardest", means.min()), ("easiest", means.max())):
        at = list(means.index[means == value])
        shown = at[0] if len(at) == 1 else f"tied: {', '.join(map(str, at))}"
        parts.append(f"{word} class: {shown} ({value:.1f} IoU mean over rows)")
    return "; ".join(parts) if means.nunique() > 1 else f"every class at {means.iloc[0]:.1f} IoU (mean over rows)"


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
            label = f"{table.name}: " + ", ".join(f"{k}={row[k]}" for k in table.key_columns) + row_marks(row)
            label += f" (n={len(ids)})"
            share = 100 * counts / np.maximum(counts.sum(1, keepdims=True), 1)
            by_dataset.setdefault(dataset, {})[label] = pd.DataFrame(share, index=classes, columns=classes)
    return [_confusion_grid(dataset, grids, out_dir) for dataset, grids in by_dataset.items()]


def _panel_title(label: str, side_inches: float) -> str:
    """``"table: key=value (n=3)"`` on two lines (table, then settings), each wrapped to the panel's width."""
    width = max(16, int(side_inches * 13))  # characters of 8-pt text per inch, with a margin
    return "\n".join(textwrap.fill(part, width) for part in label.split(": ", 1))


def _percent_heatmap(ax: Any, grid: pd.DataFrame, annotate: bool) -> None:
    """``grid`` (rows x columns, values 0..100) as a viridis heatmap, rows top to bottom, cells annotated in whole
    numbers. Drawn directly: ``seaborn.heatmap`` redraws the whole figure at every call (to test its tick labels
    for overlap), which made a figure of many panels quadratic in time."""
    values = grid.to_numpy(dtype=float)
    rows, cols = values.shape
    mesh = ax.pcolormesh(values, cmap="viridis", vmin=0, vmax=100)
    ax.set(xlim=(0, cols), ylim=(rows, 0), aspect="equal")
    ax.set_xticks(np.arange(cols) + 0.5, [str(c) for c in grid.columns], rotation=90)
    ax.set_yticks(np.arange(rows) + 0.5, [str(r) for r in grid.index], rotation=0)
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if not annotate:
        return
    for (i, j), value in np.ndenumerate(values):
        rgb = np.asarray(mesh.cmap(mesh.norm(value))[:3])
        linear = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
        light = float(linear @ [0.2126, 0.7152, 0.0722]) > 0.408  # relative luminance: seaborn's text colour rule
        ax.text(j + 0.5, i + 0.5, f"{value:.0f}", ha="center", va="center", fontsize=7, color="0.15" if light else "w")


def _confusion_grid(dataset: str, grids: dict[str, pd.DataFrame], out_dir: Path) -> FigureResult:
    name, c = f"confusion_{dataset}", len(next(iter(grids.values())))
    cols = min(3, len(grids))
    rows = math.ceil(len(grids) / cols)
    side = max(3.0, 0.3 * c + 1.6)
    # constrained layout keeps titles, tick labels and the (single, shared) colour bar apart and on the canvas
    fig = new_figure(figsize=(side * cols + 1.2, (side + 0.5) * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax, (label, grid) in zip(axes, grids.items()):
        _percent_heatmap(ax, grid, annotate=c <= 12)
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

"""Report figures (PNG and PDF, matplotlib Agg + seaborn) drawn from the tables of ``bench.report.collate``.

    bench report ablations/*.yaml            # calls draw_all(tables, "reports/figures")

Figures (one file pair each, under ``<out>/figures``):

* ``<table>_miou_vs_memory_length``: mIoU vs memory length, mean with error bars = sd over seeds, one line per
  other varying key; paper numbers as crosses where they exist;
* ``<table>_bars``: bars (mean, sd over seeds) with the seeds as dots, for aggregation and encoding ablations;
* ``accuracy_vs_latency``: mIoU vs streaming-mode median latency for every method (recompute latency as hollow
  markers), the Pareto front (no other point is both faster and more accurate) highlighted;
* ``per_class_iou_<dataset>``: heatmap, table rows (mean over seeds) x classes;
* ``qualitative_<table>``: one synthetic validation clip (memory frames, current frame, ground truth) and the
  predictions of each model whose run has a checkpoint (a model without one is skipped, with a note).

Every figure comes with a one-line reading for ``reports/index.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

FORMATS: tuple[str, ...] = ("png", "pdf")
IGNORE_COLOUR = (0.0, 0.0, 0.0)


@dataclass
class FigureResult:
    """A drawn figure (or one that could not be drawn: no paths, the reason as ``reading``)."""

    name: str
    paths: list[Path] = field(default_factory=list)
    reading: str = ""


def save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    """``<out_dir>/<name>.png`` (150 dpi) and ``.pdf``; closes the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in FORMATS:
        path = out_dir / f"{name}.{ext}"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _hue(table: Any) -> tuple[pd.DataFrame, str | None]:
    """Runs with a ``setting`` column naming the non-factor key values (None if there are none)."""
    runs = table.runs.copy()
    extra = list(zip(table.key_columns[1:], table.key_sources[1:]))
    if not extra:
        return runs, None
    runs["setting"] = runs.apply(lambda r: ", ".join(f"{label}={r[col]}" for label, col in extra), axis=1)
    return runs, "setting"


def _factor_column(table: Any) -> str:
    """The ``cfg:`` column of the table's factor in ``table.runs``."""
    return table.key_sources[0]


def memory_length_figure(table: Any, out_dir: Path) -> FigureResult:
    """mIoU vs memory length with sd error bars over seeds."""
    runs, hue = _hue(table)
    x = _factor_column(table)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sns.lineplot(data=runs, x=x, y="miou", hue=hue, marker="o", errorbar="sd", err_style="bars", ax=ax)
    paper = table.frame[table.frame["paper_miou"].notna()]
    if not paper.empty:
        ax.scatter(paper[table.factor_label], paper["paper_miou"], marker="x", color="black", s=60, label="paper",
                   zorder=3)
        ax.legend()
    ax.set_xticks(sorted(runs[x].unique()))
    ax.set_xlabel("memory length T (past frames)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"{table.name}: mIoU vs memory length (mean ± sd over seeds)")
    name = f"{table.name}_miou_vs_memory_length"
    best = table.frame.loc[table.frame["miou_mean"].idxmax()]
    std = "" if math.isnan(best["miou_std"]) else f" ± {best['miou_std']:.1f}"
    return FigureResult(name, save(fig, out_dir, name),
                        f"best memory length: {best[table.factor_label]} ({best['miou_mean']:.1f}{std} mIoU)")


def bars_figure(table: Any, out_dir: Path) -> FigureResult:
    """Bars (mean, sd over seeds) with one dot per seed, for an aggregation / encoding / other ablation."""
    runs, hue = _hue(table)
    x = _factor_column(table)
    runs[x] = runs[x].astype(str)
    order = [str(v) for v in table.frame[table.factor_label].drop_duplicates()]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(order) + 2), 3.5))
    sns.barplot(data=runs, x=x, y="miou", hue=hue, order=order, errorbar="sd", capsize=0.15, alpha=0.8, ax=ax)
    sns.stripplot(data=runs, x=x, y="miou", hue=hue, order=order, dodge=hue is not None, color="black", size=4,
                  ax=ax, legend=False)
    ax.set_xlabel(table.factor_label)
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"{table.name} (mean ± sd over seeds; dots = seeds)")
    lo = float(np.nanmin(runs["miou"]))
    ax.set_ylim(max(0.0, lo - 10.0), None)
    name = f"{table.name}_bars"
    frame = table.frame.sort_values("miou_mean", ascending=False)
    text = ", ".join(f"{r[table.factor_label]} {r['miou_mean']:.1f}" for _, r in frame.iterrows())
    return FigureResult(name, save(fig, out_dir, name), f"{table.factor_label} by mIoU: {text}")


def pareto_front(points: pd.DataFrame, x: str = "latency_ms", y: str = "miou_mean") -> pd.DataFrame:
    """Points not dominated by another that is at least as fast and as accurate, and strictly better in one."""
    keep = []
    for i, p in points.iterrows():
        dominated = ((points[x] <= p[x]) & (points[y] >= p[y]) & ((points[x] < p[x]) | (points[y] > p[y]))).any()
        if not dominated:
            keep.append(i)
    return points.loc[keep].sort_values(x)


def _point_label(table: Any, row: pd.Series, many_tables: bool) -> str:
    label = ", ".join(str(row[k]) for k in table.key_columns)
    return f"{table.name}: {label}" if many_tables else label


def pareto_figure(tables: list[Any], out_dir: Path) -> FigureResult:
    """mIoU vs streaming latency for the method tables (or every table if there is none); front highlighted."""
    name = "accuracy_vs_latency"
    chosen = [t for t in tables if t.ablation == "methods"] or tables
    rows = []
    for table in chosen:
        for _, row in table.frame.iterrows():
            if math.isnan(row["latency_ms"]):
                continue
            ids = set(str(row["run_ids"]).split())
            recompute = table.runs.loc[table.runs["run_id"].astype(str).isin(ids), "latency_recompute_ms"].mean()
            rows.append({"label": _point_label(table, row, len(chosen) > 1), "latency_ms": row["latency_ms"],
                         "recompute_ms": recompute, "miou_mean": row["miou_mean"],
                         "miou_std": 0.0 if math.isnan(row["miou_std"]) else row["miou_std"]})
    if not rows:
        return FigureResult(name, [], "no run has a latency measurement yet (run `bench latency CONFIG` per run)")
    points = pd.DataFrame(rows).reset_index(drop=True)
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = sns.color_palette("tab10", len(points))
    for i, p in points.iterrows():
        on_front = i in front.index
        ax.errorbar(p["latency_ms"], p["miou_mean"], yerr=p["miou_std"], fmt="o", color=colours[i],
                    markersize=9 if on_front else 6, markeredgecolor="black" if on_front else colours[i],
                    capsize=3, label=p["label"])
        if not math.isnan(p["recompute_ms"]):
            ax.plot([p["latency_ms"], p["recompute_ms"]], [p["miou_mean"]] * 2, ":", color=colours[i], lw=1)
            ax.scatter(p["recompute_ms"], p["miou_mean"], facecolors="none", edgecolors=colours[i], s=40)
    ax.step(front["latency_ms"], front["miou_mean"], where="post", color="black", lw=1.5, alpha=0.6,
            label="Pareto front")
    ax.set_xlabel("latency per frame, ms (streaming median; hollow = recompute)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title("accuracy vs latency")
    ax.legend(fontsize=7, loc="best")
    text = ", ".join(f"{r['label']} ({r['latency_ms']:.1f} ms, {r['miou_mean']:.1f})" for _, r in front.iterrows())
    return FigureResult(name, save(fig, out_dir, name), f"Pareto front: {text}")


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
            label = f"{table.name}: " + ", ".join(f"{k}={row[k]}" for k in table.key_columns)
            by_dataset.setdefault(dataset, {})[label] = table.per_class.loc[ids].mean()
    results = []
    for dataset, rows in by_dataset.items():
        grid = pd.DataFrame(rows).T
        name = f"per_class_iou_{dataset}"
        fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * grid.shape[1] + 3), max(2.5, 0.4 * grid.shape[0] + 1.5)))
        sns.heatmap(grid, annot=grid.shape[1] <= 20, fmt=".0f", cmap="viridis", vmin=0, vmax=100, ax=ax,
                    cbar_kws={"label": "IoU (%)"})
        ax.set_title(f"per-class IoU, {dataset} (mean over seeds)")
        ax.set_xlabel("class")
        ax.set_ylabel("")
        means = grid.mean(axis=0)
        results.append(FigureResult(name, save(fig, out_dir, name),
                                    f"hardest class: {means.idxmin()} ({means.min():.1f} IoU mean over rows), "
                                    f"easiest: {means.idxmax()} ({means.max():.1f})"))
    return results


# --------------------------------------------------------------------------------------------------
# qualitative strip


def colourise(label: np.ndarray, num_classes: int) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) colours; 255 (ignore) is black."""
    palette = np.array(sns.color_palette("tab20", max(num_classes, 2)))
    out = np.zeros(label.shape + (3,))
    valid = label < num_classes
    out[valid] = palette[label[valid]]
    out[~valid] = IGNORE_COLOUR
    return out


def to_image(frame: Any) -> np.ndarray:
    """ImageNet-normalised (3, H, W) tensor -> (H, W, 3) in [0, 1]."""
    from bench.constants import IMAGENET_MEAN, IMAGENET_STD

    mean = np.array(IMAGENET_MEAN).reshape(3, 1, 1)
    std = np.array(IMAGENET_STD).reshape(3, 1, 1)
    return np.clip((frame.numpy() * std + mean) / 255.0, 0, 1).transpose(1, 2, 0)


def _strip_models(table: Any) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(row label, record of the lowest-seed run with a checkpoint) per table row; notes for rows without one."""
    import json

    chosen, notes = [], []
    for _, row in table.frame.iterrows():
        label = ", ".join(str(row[k]) for k in table.key_columns)
        found = None
        for run_id in str(row["run_ids"]).split():
            run_dir = table.runs.loc[table.runs["run_id"] == run_id, "run_dir"].iloc[0]
            if run_dir and (Path(run_dir) / "checkpoint.pt").is_file():
                found = json.loads((Path(run_dir) / "record.json").read_text())
                found["_run_dir"] = run_dir
                break
        if found is None:
            notes.append(f"{label}: skipped, no checkpoint.pt in its run dirs")
        else:
            chosen.append((label, found))
    return chosen, notes


def qualitative_figure(table: Any, out_dir: Path, clip_index: int = 0) -> FigureResult:
    """Memory frames, current frame, ground truth and each model's prediction for one synthetic val clip."""
    import torch

    from bench.data.build import build_dataset
    from bench.models.build import load_run_model

    name = f"qualitative_{table.name}"
    chosen, notes = _strip_models(table)
    if not chosen:
        return FigureResult(name, [], "no run of this table has a checkpoint; " + "; ".join(notes))
    configs, models = [], []
    for label, record in chosen:
        model, cfg, _ = load_run_model(Path(record["_run_dir"]))
        configs.append(cfg)
        models.append((label, model.eval()))
    longest = max(int(m.memory_length) for _, m in models)
    # the current frame of a synthetic clip does not depend on T, so one clip with the longest memory serves all
    dataset = build_dataset(configs[0].data, configs[0].data.val_split, longest, train=False)
    sample = dataset[clip_index]
    frames, label = sample["frames"], sample["label"].numpy()
    panels: list[tuple[str, np.ndarray]] = []
    for i in range(longest):
        panels.append((f"t-{longest - i}", to_image(frames[i])))
    panels += [("current t", to_image(frames[-1])), ("ground truth", colourise(label, dataset.num_classes))]
    correct = {}
    with torch.inference_mode():
        for label_text, model in models:
            t = int(model.memory_length)
            clip = frames[longest - t:].unsqueeze(0)
            flow = sample["flow"][longest - t:].unsqueeze(0) if t and "flow" in sample else None
            pred = model(clip, flow)["out"].argmax(1)[0].numpy()
            valid = label != dataset.ignore_index
            correct[label_text] = float((pred[valid] == label[valid]).mean() * 100) if valid.any() else math.nan
            panels.append((f"{label_text}\n{correct[label_text]:.0f}% px", colourise(pred, dataset.num_classes)))
    fig, axes = plt.subplots(1, len(panels), figsize=(1.8 * len(panels), 2.3))
    for ax, (title, image) in zip(np.atleast_1d(axes), panels):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{table.name}: {sample['name']}", fontsize=9)
    best = max(correct, key=lambda k: correct[k])
    text = f"clip {sample['name']}: best pixel accuracy {best} ({correct[best]:.0f}%)"
    if notes:
        text += "; " + "; ".join(notes)
    return FigureResult(name, save(fig, out_dir, name), text)


# --------------------------------------------------------------------------------------------------


def draw_all(tables: list[Any], out_dir: str | Path) -> list[FigureResult]:
    """Every figure the tables support; a figure that cannot be drawn is reported, not raised."""
    from bench.run.checkpoint import CheckpointError
    from bench.data.io import DatasetError

    out = Path(out_dir)
    sns.set_theme(style="whitegrid", context="paper")
    results: list[FigureResult] = []
    for table in tables:
        if table.ablation == "memory_length":
            results.append(memory_length_figure(table, out))
        elif table.ablation in ("aggregation", "encoding", "other"):
            results.append(bars_figure(table, out))
    if tables:
        results.append(pareto_figure(tables, out))
    results += per_class_figures(tables, out)
    synthetic = [t for t in tables if (t.runs["dataset"] == "synthetic").all()]
    for table in [t for t in synthetic if t.ablation == "methods"] or synthetic[:1]:
        try:
            results.append(qualitative_figure(table, out))
        except (CheckpointError, DatasetError, RuntimeError) as err:  # e.g. a checkpoint of another architecture
            results.append(FigureResult(f"qualitative_{table.name}", [], f"{type(err).__name__}: {err}"))
    return results

"""What every report figure shares: the result type, saving (PNG + PDF), class colours, CI error bars and captions.

    fig = new_figure(figsize=(5.5, 3.8))      # every report figure: a Figure with its own Agg canvas
    result = FigureResult("name", save(fig, out_dir, "name"), reading="one line for the index")
    ax.errorbar(x, frame["miou_mean"], yerr=ci_errors(frame)); ci_caption(frame)    # 95% CI bars, their caption
    palette = dataset_info(cfg.data).palette     # the dataset's own colours (bench.data.catalog)
    colourise(label, palette)              # (H, W) ids -> (H, W, 3) colours, 255 -> black
    class_legend(class_names, palette)     # legend patches in the same colours

The palette is the dataset's: Cityscapes and CamVid their official colours, the synthetic classes their cue hue
(the class "red" is drawn red, "yellow" yellow), background grey.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bench.report.table_model import is_blank

FORMATS: tuple[str, ...] = ("png", "pdf")
IGNORE_COLOUR = (0.0, 0.0, 0.0)


@dataclass
class FigureResult:
    """A drawn figure (or one that could not be drawn: no paths, the reason as ``reading``)."""

    name: str
    paths: list[Path] = field(default_factory=list)
    reading: str = ""
    figure: Figure | None = field(default=None, repr=False)  # the drawn figure, for inspection


def new_figure(**kwargs: Any) -> Figure:
    """``Figure(**kwargs)`` with its own Agg canvas, so that text is measured with one renderer. Without a canvas,
    every measurement (seaborn's tick-label overlap test in each ``heatmap``) renders the whole figure into a new
    buffer: twelve heatmaps on a 45-panel confusion figure held 5.9 GB instead of 0.2 GB, and the report of
    ``make demo-all`` peaked at 7.4 GB."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """``<out_dir>/<name>.png`` (150 dpi) and ``.pdf``, cropped to what is drawn (``bbox_inches="tight"``: the
    canvas grows to hold text placed outside it; multi-panel figures use constrained layout to keep text apart)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in FORMATS:
        path = out_dir / f"{name}.{ext}"
        # no creation date in the PDF: the same records give byte-identical files (no churn in a committed report)
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"CreationDate": None} if ext == "pdf" else None)
        paths.append(path)
    return paths


Palette = Sequence[Sequence[int]]  # one 0..255 RGB colour per class id


def colourise(label: np.ndarray, palette: Palette) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) colours in [0, 1] from ``palette``; ids outside it (255, ignore) are black."""
    colours = np.asarray(palette, dtype=float).reshape(-1, 3) / 255.0
    out = np.zeros(label.shape + (3,))
    valid = label < len(colours)
    out[valid] = colours[label[valid]]
    out[~valid] = IGNORE_COLOUR
    return out


def class_legend(class_names: Sequence[str], palette: Palette) -> list[Patch]:
    """Legend handles: one colour patch per class (as ``colourise`` paints it), plus black = ignored."""
    return [Patch(color=tuple(v / 255.0 for v in palette[c]), label=name) for c, name in enumerate(class_names)] + [
        Patch(color=IGNORE_COLOUR, label="ignored")
    ]


CI_METHODS = {
    "t over seeds": "mean ± t·s/√n over seeds",
    "images, n = 1": "one run: bootstrap over images",
    "videos, n = 1": "one run: bootstrap over videos",
    "none": "none (n = 1, no per-image counts)",
    "identical runs: no CI": "none (every seed gave the same mIoU)",
}
ORACLE_MARK = " (oracle: {})"


def row_settings(table: Any) -> pd.Series:
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


def annotate_n(ax: Any, xs: Any, ys: Any, ns: Any) -> None:
    for x, y, n in zip(xs, ys, ns):
        ax.annotate(f"n={int(n)}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=6, color="0.3")

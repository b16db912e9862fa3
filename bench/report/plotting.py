"""What every report figure shares: the result type, saving (PNG + PDF) and the class colours.

    result = FigureResult("name", save(fig, out_dir, "name"), reading="one line for the index")
    colourise(label, num_classes)          # (H, W) ids -> (H, W, 3) colours, 255 -> black
    class_legend(class_names)              # legend patches in the same colours
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Patch

FORMATS: tuple[str, ...] = ("png", "pdf")
IGNORE_COLOUR = (0.0, 0.0, 0.0)


@dataclass
class FigureResult:
    """A drawn figure (or one that could not be drawn: no paths, the reason as ``reading``)."""

    name: str
    paths: list[Path] = field(default_factory=list)
    reading: str = ""
    figure: Figure | None = field(default=None, repr=False)  # the drawn figure, for inspection


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """``<out_dir>/<name>.png`` (150 dpi) and ``.pdf``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in FORMATS:
        path = out_dir / f"{name}.{ext}"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


def colourise(label: np.ndarray, num_classes: int) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) colours; 255 (ignore) is black."""
    palette = np.array(sns.color_palette("tab20", max(num_classes, 2)))
    out = np.zeros(label.shape + (3,))
    valid = label < num_classes
    out[valid] = palette[label[valid]]
    out[~valid] = IGNORE_COLOUR
    return out


def class_legend(class_names: list[str]) -> list[Patch]:
    """Legend handles: one colour patch per class (as ``colourise`` paints it), plus black = ignored."""
    palette = sns.color_palette("tab20", max(len(class_names), 2))
    return [Patch(color=palette[c], label=name) for c, name in enumerate(class_names)] + \
        [Patch(color=IGNORE_COLOUR, label="ignored")]

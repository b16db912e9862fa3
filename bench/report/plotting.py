"""What every report figure shares: the result type, saving (PNG + PDF) and the class colours.

    result = FigureResult("name", save(fig, out_dir, "name"), reading="one line for the index")
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

import numpy as np
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

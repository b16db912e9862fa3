"""Prediction PNGs in the layout the field submits and scores: ``result_submission/<video>/<frame>.png``.

Each file is a palette PNG whose pixel values are class ids (0..C-1) and whose colours are the dataset's palette,
as CFFM's ``format_results`` and VSPW_baseline's ``test.py`` write them; index (greyscale) PNGs read the same.

    path = submission_file(out_dir, "1001_5z_lrHGtC1Q", "00000001")      # out_dir/result_submission/<video>/...
    write_prediction(path, pred, info.palette)                           # pred (H, W) class ids
    root = find_submission_root(pred_dir)                                # pred_dir or pred_dir/result_submission
    pred = read_prediction(path, num_classes=124)                        # int64 (H, W), checked

``read_prediction(..., lut=...)`` maps files written in another id space (for VSPW, the mask values 1..124:
``ids="mask"`` of ``bench score``) to class ids; a value the table does not map is an error naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.errors import DatasetError

SUBMISSION_DIR = "result_submission"


def submission_file(out_dir: str | Path, video: str, frame: str) -> Path:
    """``out_dir/result_submission/<video>/<frame>.png``."""
    return Path(out_dir) / SUBMISSION_DIR / video / f"{frame}.png"


def find_submission_root(pred_dir: str | Path) -> Path:
    """The folder holding one subfolder per video: ``pred_dir/result_submission`` if present, else ``pred_dir``."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DatasetError(f"prediction folder not found: {pred_dir} (expected {SUBMISSION_DIR}/<video>/<frame>.png)")
    nested = pred_dir / SUBMISSION_DIR
    return nested if nested.is_dir() else pred_dir


def write_prediction(path: str | Path, pred: np.ndarray, palette: Sequence[Sequence[int]]) -> None:
    """Save class ids ``pred`` (H, W), values < 256, as a palette PNG coloured by ``palette`` (one RGB per class)."""
    ids = np.asarray(pred)
    if ids.size and (ids.min() < 0 or ids.max() > 255):
        raise ValueError(f"class ids must lie in 0..255 to be stored in a PNG; got {ids.min()}..{ids.max()}")
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    colours = [int(v) for colour in palette for v in colour][: 256 * 3]
    image.putpalette(colours + [0] * (256 * 3 - len(colours)))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def read_prediction(path: str | Path, num_classes: int, lut: np.ndarray | None = None) -> np.ndarray:
    """Class ids (H, W) int64 from a palette or index PNG; ``lut`` (256 entries, -1 or 255 = not a class) maps the
    stored values first. Missing files, colour images and values outside the classes raise, naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"prediction not found: {path} (every labelled frame needs one)")
    try:
        with Image.open(path) as image:
            mode, values = image.mode, np.asarray(image)
    except (OSError, SyntaxError, ValueError) as err:
        raise DatasetError(f"cannot read prediction {path}: {err}") from err
    if values.ndim != 2:
        raise DatasetError(
            f"prediction {path} is a {mode} colour image; save class ids as a palette or index PNG (a colour PNG "
            "cannot be read back without its palette)"
        )
    ids = values.astype(np.int64)
    if lut is not None:
        ids = np.where((ids >= 0) & (ids < 256), np.asarray(lut)[np.clip(ids, 0, 255)], -1)
    bad = np.unique(values[(ids < 0) | (ids >= num_classes)])
    if bad.size:
        space = "mask values mapped to classes" if lut is not None else f"class ids 0..{num_classes - 1}"
        raise DatasetError(f"prediction {path} holds values {bad[:10].tolist()} that are not {space}")
    return ids

"""Prediction PNGs of an evaluation (``bench eval RUN_DIR --save-preds DIR``).

    writer = PredictionWriter("preds/", dataset_info(cfg.data))
    writer.write(["frankfurt_000000_000294"], pred)          # pred (B, H, W) int class ids

Per image, for every dataset: ``<name>_color.png``, RGB in the dataset's fixed palette (``bench.data.catalog``;
Cityscapes: its official colours), and ``<name>_index.png``, the predicted class index per pixel (8-bit grey,
0 .. classes-1 in the order of the catalog's class names: what the metrics compare with the labels). For Cityscapes
also ``<name>_labelIds.png``: trainIds mapped to labelIds, the format the Cityscapes test server (and
cityscapesscripts' evalPixelLevelSemanticLabeling) reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from bench.config import check_inside


class PredictionWriter:
    """Writes colour and class-index (and, where the dataset has official label ids, labelId) PNGs under
    ``out_dir``."""

    def __init__(self, out_dir: str | Path, info: Any) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.colours = np.zeros((256, 3), dtype=np.uint8)  # ids outside the classes stay black
        self.colours[: info.num_classes] = np.array(info.palette, dtype=np.uint8)
        self.label_ids: np.ndarray | None = None
        if info.label_ids is not None:
            self.label_ids = np.zeros(256, dtype=np.uint8)
            self.label_ids[: info.num_classes] = np.array(info.label_ids, dtype=np.uint8)
        self.written = 0

    def write(self, names: Sequence[str], pred: Tensor) -> None:
        """Save each image of ``pred`` (B, H, W) under its sample name (a '/' in a name makes a subfolder)."""
        from PIL import Image

        ids = pred.detach().cpu().numpy().astype(np.uint8)
        for name, image in zip(names, ids):
            stem = check_inside(self.out_dir / str(name), self.out_dir, f"prediction of sample {name!r}:")
            stem.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(self.colours[image]).save(f"{stem}_color.png")
            Image.fromarray(image, mode="L").save(f"{stem}_index.png")
            if self.label_ids is not None:
                Image.fromarray(self.label_ids[image]).save(f"{stem}_labelIds.png")
            self.written += 1

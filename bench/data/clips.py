"""``FileClips``: the base of the on-disk video datasets (Cityscapes, CamVid).

A subclass builds its index once, in ``_index()``: one item per labelled frame with ``name``, ``label`` (the
label map's path), ``lut`` (a 256-entry table from stored values to train ids, 255 = ignore) and ``frames``
(the clip's image paths, memory frames oldest first and the current frame last). The memory offsets of each
item come from :func:`bench.data.memory.memory_offsets` (``self.offsets(n)``). Reading a sample is shared:
frames are resized to the label map's size and the clip transform is applied (docs/architecture.md, "Clips").
``decoder`` picks the image decoder of ``bench.data.io`` (default: pyspng when installed, else PIL; the same
pixels either way). The first label maps and frame headers are checked when the dataset is built
(``check_first_files``): files in another format (16-bit frames, train ids under labelId names) stop with one line
before training starts.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from bench.config import DataConfig
from bench.constants import IGNORE_INDEX
from bench.data.errors import DatasetError
from bench.data.io import DEFAULT_DECODER, WIDE_MODES, read_label, read_rgb, resize_to, wide_frame_error
from bench.data.memory import memory_offsets
from bench.data.transforms import ClipTransform, clip_sample

FIRST_FILES = 3  # label maps (and their frames' headers) checked when a dataset is built


class FileClips(Dataset):
    """Labelled frames with their T preceding frames, read from files listed by ``_index()``."""

    num_classes: int
    class_names: list[str]
    palette: list[tuple[int, int, int]]
    ignore_index = IGNORE_INDEX
    label_values: str | None = None  # what a label file may hold, for errors (None: classes and 255)
    decoder = DEFAULT_DECODER

    def __init__(
        self,
        root: str | Path,
        split: str,
        memory_length: int,
        transform: ClipTransform,
        data_cfg: DataConfig | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.memory_length = memory_length
        self.transform = transform
        self.data_cfg = data_cfg if data_cfg is not None else DataConfig()
        self.skipped: list[str] = []  # labelled frames left out by data.first_frames=skip
        self.items = self._index()
        self.check_first_files()

    def offsets(self, num_items: int) -> list[tuple[int, ...]]:
        """Memory offsets (oldest first) of each of ``num_items`` labelled frames, in index order."""
        return memory_offsets(self.data_cfg, self.split, self.memory_length, num_items)

    def _index(self) -> list[dict]:
        """Items ``{"name", "label", "lut", "frames"}``; raise a layout error naming the first bad path."""
        raise NotImplementedError

    def check_first_files(self) -> None:
        """Read the first ``FIRST_FILES`` label maps and the headers of their frames before any work starts: a
        frame of more than 8 bits, a label map of another format (``check_label``) is a one-line
        ``DatasetError`` saying what the files look like and what was expected."""
        for item in self.items[:FIRST_FILES]:
            for path in item["frames"]:
                with Image.open(path) as image:
                    if image.mode in WIDE_MODES:
                        raise wide_frame_error(path, image.mode)
            self.check_label(item, self.read_item_label(item))

    def read_item_label(self, item: dict) -> torch.Tensor:
        """The train-id label map of ``item`` (int64 (H, W))."""
        return read_label(item["label"], item["lut"], self.num_classes, self.label_values, self.decoder)

    def check_label(self, item: dict, label: torch.Tensor) -> None:
        """A dataset's own check of one decoded label map (``check_first_files``); none by default."""

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self._read(self.items[index])

    def _read(self, item: dict) -> dict:
        """The sample of ``item``: its frames resized to its label map's size, then the clip transform."""
        label = self.read_item_label(item)
        size = tuple(label.shape)
        frames = torch.stack([resize_to(read_rgb(path, self.decoder), size, path) for path in item["frames"]])
        return clip_sample(self.transform, frames, label, None, item["name"])


def missing_memory_frame(path: Path | str, name: str, offsets: tuple[int, ...]) -> DatasetError:
    """The one-line error for a memory frame that is not on disk."""
    return DatasetError(
        f"memory frame not found: {path} (memory of {name} at offsets {list(offsets)}; check "
        f"data.memory_offsets / data.memory_stride / model.memory_length and the frame folder)"
    )

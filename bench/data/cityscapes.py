"""Cityscapes video clips: the annotated frame plus its T preceding frames (docs/tmanet.md §2.2).

Layout under ``root`` (the official download names; the sequence package ``leftImg8bit_sequence_trainvaltest.zip``
must be requested from the Cityscapes team)::

    {root}/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png        (or _gtFine_labelTrainIds.png)
    {root}/leftImg8bit_sequence/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png   (memory frames frame-k)
    {root}/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png        (optional, current frame)

The annotated frames are indexed from gtFine. Memory frames are ``frame+o`` for the offsets ``o`` of
``bench.data.memory`` (6-digit zero padding), oldest first; the default is the consecutive ``frame-T .. frame-1``
of the official configs (sequence_range == sequence_num). A missing memory frame is a one-line error. The current
frame is read from ``leftImg8bit_sequence`` if present, else from ``leftImg8bit``. Labels: a
``_gtFine_labelTrainIds.png`` next to the labelIds file is used as is (values 0..18 or 255); otherwise the
raw ``_gtFine_labelIds.png`` is mapped id -> trainId with a 256-entry table (ids outside 0..33 are errors).

Usage::

    dataset = CityscapesClips("/data/cityscapes", "val", memory_length=2, transform=ClipTransform(train=False))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.config import DataConfig
from bench.constants import IGNORE_INDEX
from bench.data.classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, TRAIN_ID_TO_LABEL_ID
from bench.data.clips import FileClips, missing_memory_frame
from bench.data.errors import DatasetError
from bench.data.io import layout_error
from bench.data.transforms import ClipTransform

LAYOUT = """\
  {root}/gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png      (or ..._gtFine_labelTrainIds.png)
  {root}/leftImg8bit_sequence/{split}/{city}/{city}_{seq}_{frame-k}_leftImg8bit.png   k = 1..T (6-digit frame)
  {root}/leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png     (current frame; optional if in
                                                                               leftImg8bit_sequence)
Download gtFine_trainvaltest.zip and leftImg8bit_sequence_trainvaltest.zip from https://www.cityscapes-dataset.com
and unzip both into {root}."""


# a labelIds map with no value above 18 and at least this share of ignored pixels holds trainIds
TRAIN_ID_SUSPECT_IGNORED = 0.5


def label_id_lut() -> np.ndarray:
    """256-entry table labelId -> trainId: 0..18, 255 for ids 0..33 not evaluated, -1 (invalid) above 33."""
    lut = np.full(256, -1, dtype=np.int64)
    lut[:34] = IGNORE_INDEX
    for train_id, label_id in enumerate(TRAIN_ID_TO_LABEL_ID):
        lut[label_id] = train_id
    return lut


def train_id_lut() -> np.ndarray:
    """256-entry table for ``_labelTrainIds.png``: 0..18 kept, 255 ignore, everything else invalid."""
    lut = np.full(256, -1, dtype=np.int64)
    lut[:19] = np.arange(19)
    lut[IGNORE_INDEX] = IGNORE_INDEX
    return lut


def memory_frame_names(stem: str, offsets: tuple[int, ...] | list[int]) -> list[str]:
    """``("aachen_000000_000019", (-2, -1))`` -> ``["aachen_000000_000017", "aachen_000000_000018"]``."""
    city_seq, frame = stem.rsplit("_", 1)
    number = int(frame)
    return [f"{city_seq}_{number + o:0{len(frame)}d}" for o in offsets]


class CityscapesClips(FileClips):
    """Annotated Cityscapes frames with their preceding frames; samples follow docs/architecture.md."""

    num_classes = 19
    class_names = CITYSCAPES_CLASSES
    palette = CITYSCAPES_PALETTE

    def _index(self) -> list[dict]:
        if not str(self.root) or not self.root.is_dir():
            raise layout_error("Cityscapes root folder not found (set data.root)", self.root, LAYOUT)
        label_dir = self.root / "gtFine" / self.split
        if not label_dir.is_dir():
            raise layout_error("Cityscapes label folder not found", label_dir, LAYOUT)
        stems = {}
        for suffix in ("_gtFine_labelIds.png", "_gtFine_labelTrainIds.png"):
            for path in sorted(label_dir.glob(f"*/*{suffix}")):
                stem = path.name[: -len(suffix)]
                if suffix.endswith("TrainIds.png") or stem not in stems:
                    stems[stem] = path
        if not stems:
            raise layout_error("no *_gtFine_labelIds.png files found under", label_dir, LAYOUT)
        sequence_dir = self.root / "leftImg8bit_sequence" / self.split
        image_dir = self.root / "leftImg8bit" / self.split
        items = []
        for stem, offsets in zip(sorted(stems), self.offsets(len(stems))):
            city = stem.split("_")[0]
            current = sequence_dir / city / f"{stem}_leftImg8bit.png"
            if not current.is_file():
                current = image_dir / city / f"{stem}_leftImg8bit.png"
            if not current.is_file():
                raise layout_error(
                    "current frame not found (looked in leftImg8bit_sequence and leftImg8bit)", current, LAYOUT
                )
            memory = [sequence_dir / city / f"{name}_leftImg8bit.png" for name in memory_frame_names(stem, offsets)]
            for path in memory:
                if not path.is_file():
                    raise missing_memory_frame(path, stem, offsets)
            label = stems[stem]
            lut = train_id_lut() if label.name.endswith("_labelTrainIds.png") else label_id_lut()
            items.append({"name": stem, "label": label, "lut": lut, "frames": memory + [current]})
        return items

    def read_item_label(self, item: dict) -> torch.Tensor:
        try:
            return super().read_item_label(item)
        except DatasetError as err:
            raise invalid_label_error(item["label"], item["lut"]) or err from err

    def check_label(self, item: dict, label: torch.Tensor) -> None:
        """A ``*_labelIds.png`` whose values stay within the trainIds (0..18) while most pixels map to ignore
        holds trainIds under a labelId name: read as labelIds, road, building and sky would all be ignored."""
        path = item["label"]
        if path.name.endswith("_labelTrainIds.png"):
            return
        with Image.open(path) as image:
            raw = np.asarray(image)
        ignored = float((label == IGNORE_INDEX).float().mean())
        if raw.size and int(raw.max()) <= 18 and ignored >= TRAIN_ID_SUSPECT_IGNORED:
            raise DatasetError(
                f"label map {path} looks like trainIds saved under a *_labelIds.png name: its values are "
                f"{np.unique(raw)[:20].tolist()} (Cityscapes labelIds of a street scene reach 19..33: vegetation 21, "
                f"sky 23, car 26) and {100 * ignored:.0f}% of its pixels would map to ignore. Expected labelIds "
                f"(0..33); name trainId files *_gtFine_labelTrainIds.png, or create labelIds with cityscapesscripts"
            )


def allowed_label_values(label: Path) -> str:
    """What a Cityscapes label file may hold, for error messages."""
    if label.name.endswith("_labelTrainIds.png"):
        return f"a *_gtFine_labelTrainIds.png holds trainIds 0..18 and {IGNORE_INDEX} (ignore)"
    pairs = ", ".join(f"{label_id}->{train_id}" for train_id, label_id in enumerate(TRAIN_ID_TO_LABEL_ID))
    return (
        f"a *_gtFine_labelIds.png holds Cityscapes labelIds 0..33 (license plate, id -1, is not written into "
        f"label images); labelId->trainId: {pairs}, every other labelId in 0..33 -> {IGNORE_INDEX} (ignore); "
        f"convert other label formats with cityscapesscripts (json2labelImg / createTrainIdLabelImgs)"
    )


def invalid_label_error(label: Path, lut: np.ndarray) -> DatasetError | None:
    """The one-line error for values of ``label`` that ``lut`` marks invalid; None when there are none."""
    try:
        with Image.open(label) as image:
            raw = np.asarray(image).astype(np.int64)
    except OSError:
        return None
    if raw.ndim != 2:
        return None
    bad = np.unique(raw[(raw < 0) | (raw > 255) | (lut[np.clip(raw, 0, 255)] < 0)])
    if not bad.size:
        return None
    hint, kept = "", raw[raw != IGNORE_INDEX]
    if IGNORE_INDEX in bad and not label.name.endswith("_labelTrainIds.png") and (kept.size == 0 or kept.max() <= 18):
        hint = f"; {IGNORE_INDEX} with values 0..18 are trainIds: name such files *_gtFine_labelTrainIds.png"
    return DatasetError(
        f"label map {label} holds invalid values {bad[:20].tolist()}; {allowed_label_values(label)}{hint}"
    )


def build_cityscapes(data_cfg: DataConfig, split: str, memory_length: int, train: bool) -> CityscapesClips:
    """Cityscapes clips of ``split`` under ``data_cfg.root``."""
    return CityscapesClips(data_cfg.root, split, memory_length, ClipTransform.from_config(data_cfg, train), data_cfg)

"""Cityscapes sequences on a tiny on-disk fixture in the official layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_frame as shared_write_frame
from PIL import Image

from bench.data import DatasetError, build_dataset
from bench.data.cityscapes import CITYSCAPES_CLASSES, label_id_lut, memory_frame_names
from bench.data.preview import save_clip_grid
from bench.data.transforms import denormalize

H, W = 16, 32


def data_config(root: Path, **overrides):
    from bench.config import DataConfig

    cfg = DataConfig(dataset="cityscapes", root=str(root), crop_size=[16, 16], base_size=[], cat_max_ratio=1.0)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def write_frame(path: Path, number: int, seq: int) -> None:
    """A frame whose red channel is its frame number and green channel its sequence number."""
    shared_write_frame(path, (H, W), (number, seq, 7))


def write_label(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint8)).save(path)


LABEL_IDS = np.zeros((H, W), dtype=np.uint8)
LABEL_IDS[:, :8], LABEL_IDS[:, 8:16], LABEL_IDS[:, 16:24] = 7, 26, 33  # road, car, bicycle; rest unlabeled (0)


@pytest.fixture
def cityscapes_root(tmp_path: Path) -> Path:
    """aachen seq 1 frame 19 (current in leftImg8bit_sequence) and bremen seq 2 frame 39 (current only in
    leftImg8bit)."""
    root = tmp_path / "cityscapes"
    for city, seq, frame in (("aachen", 1, 19), ("bremen", 2, 39)):
        stem = f"{city}_{seq:06d}_{frame:06d}"
        write_label(root / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png", LABEL_IDS)
        for number in range(frame - 4, frame + (1 if city == "aachen" else 0)):
            write_frame(
                root / "leftImg8bit_sequence" / "val" / city / f"{city}_{seq:06d}_{number:06d}_leftImg8bit.png",
                number,
                seq,
            )
        write_frame(root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png", frame, seq)
    return root


def frame_codes(sample: dict) -> list[tuple[int, int]]:
    pixels = denormalize(sample["frames"]).round().long()
    return [(int(p[0, 0, 0]), int(p[1, 0, 0])) for p in pixels]


def test_memory_frames_are_the_preceding_frames_oldest_first(cityscapes_root):
    dataset = build_dataset(data_config(cityscapes_root), "val", memory_length=2, train=False)
    assert len(dataset) == 2 and dataset.num_classes == 19 and dataset.class_names == CITYSCAPES_CLASSES
    assert dataset.ignore_index == 255
    first, second = dataset[0], dataset[1]
    assert first["name"] == "aachen_000001_000019" and second["name"] == "bremen_000002_000039"
    assert frame_codes(first) == [(17, 1), (18, 1), (19, 1)]
    assert frame_codes(second) == [(37, 2), (38, 2), (39, 2)]  # current frame taken from leftImg8bit
    assert first["frames"].shape == (3, 3, H, W) and "flow" not in first


def test_one_more_memory_frame_and_per_frame(cityscapes_root):
    longer = build_dataset(data_config(cityscapes_root), "val", memory_length=3, train=False)[0]
    assert frame_codes(longer) == [(16, 1), (17, 1), (18, 1), (19, 1)]
    single = build_dataset(data_config(cityscapes_root), "val", memory_length=0, train=False)[0]
    assert frame_codes(single) == [(19, 1)]


def test_label_ids_are_mapped_to_train_ids(cityscapes_root):
    label = build_dataset(data_config(cityscapes_root), "val", memory_length=1, train=False)[0]["label"]
    assert label.dtype == torch.int64
    assert (label[:, :8] == 0).all() and (label[:, 8:16] == 13).all() and (label[:, 16:24] == 18).all()
    assert (label[:, 24:] == 255).all()
    lut = label_id_lut()
    assert lut[7] == 0 and lut[33] == 18 and lut[0] == 255 and lut[34] == -1


def test_label_train_ids_file_is_preferred(cityscapes_root):
    train_ids = np.full((H, W), 255, dtype=np.uint8)
    train_ids[:4] = 11
    write_label(cityscapes_root / "gtFine/val/aachen/aachen_000001_000019_gtFine_labelTrainIds.png", train_ids)
    label = build_dataset(data_config(cityscapes_root), "val", memory_length=1, train=False)[0]["label"]
    assert (label[:4] == 11).all() and (label[4:] == 255).all()


def test_memory_frame_names():
    assert memory_frame_names("aachen_000000_000019", (-2, -1)) == ["aachen_000000_000017", "aachen_000000_000018"]
    assert memory_frame_names("aachen_000000_000019", (-4, -2)) == ["aachen_000000_000015", "aachen_000000_000017"]
    assert memory_frame_names("aachen_000000_000019", ()) == []


def test_missing_root_shows_the_layout(tmp_path):
    with pytest.raises(DatasetError) as error:
        build_dataset(data_config(tmp_path / "nowhere"), "val", memory_length=2, train=False)
    message = str(error.value)
    assert "nowhere" in message and "Expected layout" in message and "leftImg8bit_sequence" in message


def test_missing_memory_frame_is_named(cityscapes_root):
    missing = cityscapes_root / "leftImg8bit_sequence/val/aachen/aachen_000001_000017_leftImg8bit.png"
    missing.unlink()
    with pytest.raises(DatasetError, match="aachen_000001_000017_leftImg8bit.png"):
        build_dataset(data_config(cityscapes_root), "val", memory_length=2, train=False)


def test_bad_label_values_are_reported(cityscapes_root):
    bad = LABEL_IDS.copy()
    bad[0, 0], bad[1, 1] = 40, 77
    write_label(cityscapes_root / "gtFine/val/bremen/bremen_000002_000039_gtFine_labelIds.png", bad)
    with pytest.raises(DatasetError) as error:  # the first label maps are read when the dataset is built
        build_dataset(data_config(cityscapes_root), "val", memory_length=1, train=False)
    assert "bremen_000002_000039_gtFine_labelIds.png" in str(error.value) and "[40, 77]" in str(error.value)


def test_training_crop_and_preview(cityscapes_root, tmp_path):
    dataset = build_dataset(data_config(cityscapes_root), "val", memory_length=2, train=True)
    sample = dataset[0]
    assert sample["frames"].shape == (3, 3, 16, 16) and sample["label"].shape == (16, 16)
    path = save_clip_grid(dataset, [0, 1], tmp_path / "cityscapes.png")
    assert path.stat().st_size > 1000

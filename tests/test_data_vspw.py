"""VSPW on a tiny tree in the release's layout: label mapping, CFFM's memory preset and first-frames table,
clip reversal, per-video sampling, missing and 0-byte files, and the catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.vspw_tree import H, W, frame_name, write_vspw_tree

from bench.config import ConfigError, DataConfig
from bench.data import DatasetError, build_dataset
from bench.data.catalog import dataset_info
from bench.data.memory import CFFM_FIRST_FRAMES, memory_positions
from bench.data.transforms import denormalize
from bench.data.vspw import index_split, vspw_lut


def vspw_config(root: Path, **changes) -> DataConfig:
    values = {"dataset": "vspw", "root": str(root), "crop_size": [H, W], "base_size": [], "cat_max_ratio": 1.0}
    return DataConfig(**{**values, **changes})


@pytest.fixture
def vspw_root(tmp_path: Path) -> Path:
    return write_vspw_tree(tmp_path, {"train": {"1_aaa": 12, "2_bbb": 5}, "val": {"3_ccc": 11}, "test": {"4_ddd": 3}})


def positions(item: dict, key: str = "frames") -> list[int]:
    """Frame positions of an item's clip (memory then current), read back from the file names."""
    return [int(Path(p).stem) - 1 for p in item[key]]


def test_masks_map_to_124_classes_with_others_and_void_ignored(vspw_root):
    lut = vspw_lut()
    assert (lut[0], lut[1], lut[124], lut[255], lut[125]) == (255, 0, 123, 255, -1)
    dataset = build_dataset(vspw_config(vspw_root), "val", memory_length=0, train=False)
    assert len(dataset) == 11 and dataset.num_classes == 124 and dataset.class_names[0] == "wall"
    sample = dataset[4]
    assert sample["name"] == f"3_ccc/{frame_name(4)}"
    label = sample["label"]
    assert label[:, :3].eq(255).all() and label[:, 3:6].eq(4 % 3).all()  # mask 1 + 4 % 3 -> class 4 % 3
    assert label[:, 6:9].eq(123).all() and label[:, 9:].eq(255).all()
    red = denormalize(sample["frames"][-1])[0].mean().item()
    assert abs(red - 80) < 4  # frame position 4 (JPEG keeps a flat colour within a few levels)
    info = dataset_info(vspw_config(vspw_root))
    assert (info.num_classes, info.class_names, len(info.palette)) == (124, tuple(dataset.class_names), 124)


def test_cffm_preset_reads_t9_t6_t3_and_follows_its_first_frames_table(vspw_root):
    dataset = build_dataset(vspw_config(vspw_root, memory_preset="cffm"), "val", memory_length=3, train=False)
    clips = {positions(item)[-1]: positions(item)[:-1] for item in dataset.items}
    assert clips[9] == [0, 3, 6] and clips[10] == [1, 4, 7]
    for current, memory in CFFM_FIRST_FRAMES.items():
        assert clips[current] == list(memory)
    assert clips[0] == [0, 0, 0] and clips[2] == [2, 2, 2]  # CFFM decodes these without memory: current repeated
    skipping = build_dataset(
        vspw_config(vspw_root, memory_preset="cffm", first_frames="skip"), "val", memory_length=3, train=False
    )
    assert [positions(item)[-1] for item in skipping.items] == [9, 10] and len(skipping.skipped) == 9


def test_suite_offsets_count_positions_and_repeat_the_first_frame(vspw_root):
    dataset = build_dataset(vspw_config(vspw_root, memory_offsets=[-4, -2]), "val", memory_length=2, train=False)
    assert positions(dataset.items[5]) == [1, 3, 5] and positions(dataset.items[1]) == [0, 0, 1]
    assert memory_positions(1, (-4, -2), "repeat") == [0, 0]  # the rule CamVid uses too (earliest = 0)


def test_reversed_clips_read_later_frames_mirrored_at_the_end(vspw_root):
    cfg = vspw_config(vspw_root, memory_preset="cffm", reverse_prob=1.0, photometric=False, scale_range=[1.0, 1.0])
    dataset = build_dataset(cfg, "train", memory_length=3, train=True)
    first = [item for item in dataset.items if item["name"].startswith("1_aaa")]  # 12 frames
    assert positions(first[0], "backward") == [9, 6, 3, 0] and positions(first[2], "backward") == [11, 8, 5, 2]
    assert positions(first[11], "backward") == [11, 11, 11, 11]  # the last frame: CFFM's table, mirrored
    assert positions(first[8], "backward") == [11, 10, 9, 8]  # mirrored position 3: 0, 1, 2 -> 11, 10, 9
    red = denormalize(dataset[0]["frames"][0])[0].mean().item()
    assert abs(red - 180) < 4  # reverse_prob=1: the oldest memory slot holds frame 9
    evaluation = build_dataset(cfg, "val", memory_length=3, train=False)
    assert all(item["backward"] is None for item in evaluation.items)  # never reversed outside training


def test_video_sampling_makes_one_item_per_video_drawn_among_frames_with_complete_memory(vspw_root):
    cfg = vspw_config(vspw_root, train_sampling="video", memory_preset="cffm")
    dataset = build_dataset(cfg, "train", memory_length=3, train=True)
    assert len(dataset) == 2
    torch.manual_seed(0)
    names = [{dataset[v]["name"] for _ in range(30)} for v in (0, 1)]
    assert names[0] <= {f"1_aaa/{frame_name(k)}" for k in (9, 10, 11)} and len(names[0]) > 1  # as CFFM's sampler
    assert len(names[1]) > 2  # 2_bbb (5 frames) has no frame with 9 earlier ones: any of its frames
    cfg.first_frames = "skip"
    skipping = build_dataset(cfg, "train", memory_length=3, train=True)
    assert len(skipping) == 1  # with first_frames=skip, 2_bbb has no item at all


def test_a_missing_or_empty_file_is_named_or_skipped_and_counted(vspw_root):
    (vspw_root / "data" / "3_ccc" / "origin" / f"{frame_name(5)}.jpg").unlink()
    with pytest.raises(
        DatasetError, match=rf"VSPW file missing: .*3_ccc/origin/{frame_name(5)}.jpg .*missing_files=skip"
    ):
        build_dataset(vspw_config(vspw_root), "val", 0, train=False)
    dataset = build_dataset(vspw_config(vspw_root, missing_files="skip"), "val", 0, train=False)
    assert len(dataset) == 10 and dataset.skipped_files == [
        str(vspw_root / "data/3_ccc/origin" / f"{frame_name(5)}.jpg")
    ]
    (vspw_root / "data" / "3_ccc" / "mask" / f"{frame_name(2)}.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=rf"VSPW file 0 bytes: .*3_ccc/mask/{frame_name(2)}.png"):
        index_split(vspw_root, "val", "error")
    videos, skipped = index_split(vspw_root, "val", "skip")
    assert len(videos[0].frames) == 9 and len(skipped) == 2


def test_bad_trees_and_options_get_one_line_errors(vspw_root, tmp_path):
    with pytest.raises(DatasetError, match="VSPW root folder not found"):
        build_dataset(vspw_config(tmp_path / "nowhere"), "val", 0, train=False)
    with pytest.raises(DatasetError, match="VSPW split file not found"):
        build_dataset(vspw_config(vspw_root), "trainval", 0, train=False)
    with pytest.raises(DatasetError, match="4_ddd of split 'test' has no mask folder"):
        build_dataset(vspw_config(vspw_root), "test", 0, train=False)
    mask = np.full((H, W), 130, dtype=np.uint8)
    from helpers.vspw_tree import write_mask

    write_mask(vspw_root / "data" / "3_ccc" / "mask" / f"{frame_name(0)}.png", mask)
    with pytest.raises(DatasetError, match=r"holds invalid values \[130\]; allowed are 0 \(others\), 1..124"):
        build_dataset(vspw_config(vspw_root), "val", 0, train=False)[0]
    with pytest.raises(ConfigError, match="data.reverse_prob is implemented for data.dataset=vspw only"):
        build_dataset(DataConfig(dataset="camvid", reverse_prob=0.5), "val", 0, train=False)
    with pytest.raises(ConfigError, match="memory_preset=cffm sets the memory offsets itself"):
        DataConfig(dataset="vspw", memory_preset="cffm", memory_offsets=[-2, -1])
    with pytest.raises(ConfigError, match=r"data.memory_preset=cffm \[-9, -6, -3\] has 3 entries but 2"):
        build_dataset(vspw_config(vspw_root, memory_preset="cffm"), "val", 2, train=False)


def test_the_cffm_line_recipe_config_loads_and_builds_on_a_vspw_tree(vspw_root):
    from bench.config import load_config

    cfg = load_config("configs/vspw_tmanet.yaml", [f"data.root={vspw_root}", "device=cpu"])
    assert (cfg.data.memory_preset, cfg.model.memory_length, cfg.data.crop_size) == ("cffm", 3, [480, 480])
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.head_lr_mult, cfg.train.warmup_iters) == (
        "adamw",
        6e-5,
        10,
        1500,
    )
    train = build_dataset(cfg.data, "train", cfg.model.memory_length, train=True)
    assert len(train) == 2 and train.reverse_prob == 0.5  # one item per video
    assert len(build_dataset(cfg.data, "val", cfg.model.memory_length, train=False)) == 11  # every labelled frame

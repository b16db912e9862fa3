"""``check_vspw`` (bench prepare-vspw): counts per split and every kind of damaged file, named by path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.vspw_tree import H, W, frame_name, write_mask, write_vspw_tree

from bench.data import DatasetError
from bench.data.classes import VSPW_CLASSES
from bench.data.prepare_vspw import check_vspw


def test_a_clean_tree_is_ok_with_its_counts(tmp_path):
    root = write_vspw_tree(tmp_path, {"train": {"1_a": 4, "2_b": 3}, "val": {"3_c": 5}, "test": {"4_d": 2}})
    classes = {"others": 0, **{name: k + 1 for k, name in enumerate(VSPW_CLASSES)}}
    (root / "label_num_dic_final.json").write_text(json.dumps({k: str(v) for k, v in classes.items()}))
    report = check_vspw(root)
    assert report.ok, report.lines()
    train, val, test = (report.splits[s] for s in ("train", "val", "test"))
    assert (train.videos_listed, train.videos_found, train.frames, train.masks) == (2, 2, 7, 7)
    assert (val.frames, test.frames, test.masks) == (5, 2, 0)
    lines = report.lines()
    assert "  train: 2/2 videos (paper: 2806), 7 frames, 7 masks, 0 problems" in lines and lines[-1] == "OK"


def test_every_damaged_file_is_named(tmp_path):
    root = write_vspw_tree(tmp_path, {"val": {"3_c": 5, "5_e": 2}})
    data = root / "data" / "3_c"
    (data / "origin" / f"{frame_name(0)}.jpg").unlink()
    (data / "mask" / f"{frame_name(1)}.png").write_bytes(b"")
    jpg = data / "origin" / f"{frame_name(2)}.jpg"
    jpg.write_bytes(jpg.read_bytes()[:40])  # truncated
    write_mask(data / "mask" / f"{frame_name(3)}.png", np.full((H, W), 200, dtype=np.uint8))
    (root / "val.txt").write_text("3_c\n5_e\n6_missing\n")
    (root / "label_num_dic_final.json").write_text(json.dumps({"wall": "2"}))
    report = check_vspw(root, decode=True)
    text = "\n".join(report.lines())
    assert not report.ok
    assert f"{data / 'origin' / frame_name(0)}.jpg: missing" in text
    assert f"{data / 'mask' / frame_name(1)}.png: 0 bytes" in text
    assert f"{jpg}: does not decode" in text
    assert "values [200] outside 0..124 and 255" in text
    assert f"{root / 'data' / '6_missing' / 'origin'}: missing" in text
    assert "classes differ from the suite's VSPW_CLASSES" in text
    assert report.splits["val"].videos_found == 2 and report.splits["val"].videos_listed == 3
    quick = check_vspw(root, decode=False)  # only what the file system tells: missing and empty files
    assert len(quick.splits["val"].problems) == 3


def test_a_folder_without_split_files_is_a_layout_error(tmp_path):
    with pytest.raises(DatasetError, match="VSPW split file not found"):
        check_vspw(tmp_path)

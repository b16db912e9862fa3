"""Whole videos (bench.data.videos): the synthetic long videos and VSPW's, read frame by frame in order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.vspw_tree import frame_name, mask_of, write_vspw_tree

from bench.config import DataConfig, SyntheticConfig
from bench.data import DatasetError, build_videos
from bench.data.synthetic import SyntheticVideo


def synthetic_config(**changes) -> DataConfig:
    values = {"size": [32, 32], "val_clips": 3, "clip_length": 4, "val_video_length": 12, **changes}
    return DataConfig(synthetic=SyntheticConfig(**values))


def test_synthetic_videos_are_long_enough_for_mvc_8_and_extend_the_clips_into_the_past():
    videos = build_videos(synthetic_config(), "val")
    assert videos.names == ["synthetic-val-000000", "synthetic-val-000001", "synthetic-val-000002"]
    frames = list(videos.frames(videos.names[1]))
    assert [f.name for f in frames] == [f"{k:06d}" for k in range(12)] == videos.frame_names(videos.names[1])
    assert frames[0].image.shape == (3, 32, 32) and frames[0].image.dtype == torch.uint8
    assert all(np.array_equal(f.raw, f.label.numpy()) for f in frames) and videos.gt_lut is None
    clip = SyntheticVideo(size=(32, 32), clip_length=4).render("val", 1, 4, degrade=False)
    assert torch.equal(torch.stack([f.label for f in frames[-4:]]), clip.labels)  # the clip's scene, longer
    assert len(build_videos(synthetic_config(val_video_length=0), "val").frame_names("synthetic-val-000000")) == 4


def test_every_frame_of_a_synthetic_video_may_show_the_cue_or_not():
    video = SyntheticVideo(size=(32, 32), clip_length=4, cue_prob=0.5)
    rendered = video.render_video("val", 0, 40)
    hsv_max = rendered.frames.float().amax(1) - rendered.frames.float().amin(1)  # chroma per pixel
    objects = rendered.labels > 0
    coloured = [(hsv_max[k][objects[k]] > 60).float().mean().item() > 0.5 for k in range(40)]
    assert 5 < sum(coloured) < 35  # hue shown in some frames, grey in others (p = 0.5 per frame)
    visible = SyntheticVideo(size=(32, 32), clip_length=4, current_cue="visible").render_video("val", 0, 10)
    assert torch.equal(visible.labels, video.render_video("val", 0, 10).labels)


def test_vspw_videos_give_labels_and_the_stored_mask_values(tmp_path):
    root = write_vspw_tree(tmp_path, {"val": {"3_ccc": 6}, "test": {"4_ddd": 2}})
    videos = build_videos(DataConfig(dataset="vspw", root=str(root)), "val")
    frames = list(videos.frames("3_ccc"))
    assert [f.name for f in frames] == [frame_name(k) for k in range(6)]
    assert np.array_equal(frames[2].raw, mask_of(2)) and frames[2].label[0, 3].item() == 2 % 3
    assert frames[2].label[0, 0].item() == 255 and videos.gt_lut[124] == 123
    assert next(videos.frames("3_ccc", images=False)).image is None
    test = build_videos(DataConfig(dataset="vspw", root=str(root)), "test")
    assert next(test.frames("4_ddd")).label is None


def test_sparsely_labelled_datasets_have_no_whole_videos():
    with pytest.raises(DatasetError, match="whole-video evaluation needs densely labelled videos"):
        build_videos(DataConfig(dataset="camvid"), "val")

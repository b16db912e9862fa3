"""Synthetic video: determinism, sample format, exact flow, degradation, augmentation, preview."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bench.models.warp import flow_warp
from bench.data import DatasetError, build_dataset, collate_clips
from bench.data.preview import save_clip_grid
from bench.data.synthetic import SyntheticVideo, synthetic_class_names
from bench.data.transforms import denormalize


def data_config(**synthetic):
    """A DataConfig for the synthetic dataset (the lead's dataclass when available)."""
    from bench.config import DataConfig, SyntheticConfig

    return DataConfig(dataset="synthetic", crop_size=[64, 64], synthetic=SyntheticConfig(**synthetic))


def warp(source: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Backward warp (N, C, H, W) with flow (N, 2, H, W) defined on the target: out(p) = source(p + flow(p))."""
    return flow_warp(source, flow, mode=mode, padding_mode="zeros")


def test_same_seed_same_bytes_and_different_seed_differs():
    first = SyntheticVideo(seed=3).render("train", 7, 4)
    second = SyntheticVideo(seed=3).render("train", 7, 4)
    assert torch.equal(first.frames, second.frames)
    assert torch.equal(first.labels, second.labels)
    assert torch.equal(first.flow, second.flow)
    other = SyntheticVideo(seed=4).render("train", 7, 4)
    assert not torch.equal(first.frames, other.frames)
    val = SyntheticVideo(seed=3).render("val", 7, 4)
    assert not torch.equal(first.frames, val.frames)


def test_dataloader_workers_give_identical_samples():
    dataset = build_dataset(data_config(val_clips=4), "val", memory_length=2, train=False)
    direct = collate_clips([dataset[i] for i in range(4)])
    loaded = next(iter(DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate_clips)))
    for key in ("frames", "label", "flow"):
        assert torch.equal(direct[key], loaded[key])
    assert direct["name"] == loaded["name"] == [f"synthetic-val-{i:06d}" for i in range(4)]


def test_sample_format_and_collate():
    dataset = build_dataset(data_config(num_classes=5, size=[64, 96]), "train", memory_length=3, train=False)
    assert dataset.num_classes == 5 and dataset.ignore_index == 255
    assert dataset.class_names == synthetic_class_names(5) and dataset.class_names[0] == "background"
    sample = dataset[0]
    assert sample["frames"].shape == (4, 3, 64, 96) and sample["frames"].dtype == torch.float32
    assert sample["label"].shape == (64, 96) and sample["label"].dtype == torch.int64
    assert sample["flow"].shape == (3, 2, 64, 96) and sample["flow"].dtype == torch.float32
    assert set(sample["label"].unique().tolist()) <= set(range(5))
    batch = collate_clips([dataset[0], dataset[1]])
    assert batch["frames"].shape == (2, 4, 3, 64, 96) and batch["flow"].shape == (2, 3, 2, 64, 96)
    assert batch["label"].shape == (2, 64, 96)


def test_per_frame_model_gets_a_single_frame():
    sample = build_dataset(data_config(), "val", memory_length=0, train=False)[0]
    assert sample["frames"].shape == (1, 3, 64, 64)
    assert sample["flow"].shape == (0, 2, 64, 64)


def test_longer_memory_adds_past_frames_and_keeps_current():
    short = build_dataset(data_config(), "val", memory_length=2, train=False)[5]
    longer = build_dataset(data_config(), "val", memory_length=3, train=False)[5]
    assert torch.equal(short["frames"], longer["frames"][1:])
    assert torch.equal(short["label"], longer["label"])
    assert torch.equal(short["flow"], longer["flow"][1:])


def test_clip_length_limits_memory():
    with pytest.raises(ValueError, match="clip_length"):
        build_dataset(data_config(clip_length=3), "val", memory_length=3, train=False)
    with pytest.raises(DatasetError, match="unknown synthetic split"):
        build_dataset(data_config(), "bogus", memory_length=1, train=False)


def test_ground_truth_flow_warps_memory_onto_current_frame():
    video = SyntheticVideo(camera_motion=3.0)
    label_agreement, pixel_close = [], []
    for index in range(12):
        clip = video.render("val", index, 4, degrade=False)
        current = clip.frames[-1].float()[None]
        for i in range(3):
            flow = clip.flow[i][None]
            inside = warp(torch.ones(1, 1, 64, 64), flow)[0, 0] > 0.999
            warped_label = warp(clip.labels[i].float()[None, None], flow, "nearest")[0, 0].long()
            same = warped_label == clip.labels[-1]
            label_agreement.append(same[inside].float().mean().item())
            # away from label edges, where bilinear sampling mixes two surfaces
            label = clip.labels[-1].float()[None, None]
            edge = (F.max_pool2d(label, 3, 1, 1) != -F.max_pool2d(-label, 3, 1, 1))[0, 0]
            error = (warp(clip.frames[i].float()[None], flow) - current).abs().amax(1)[0]
            pixel_close.append((error[inside & same & ~edge] < 8).float().mean().item())
    # disagreements are occlusions (objects passing in front of each other) and shape edges
    assert sum(label_agreement) / len(label_agreement) > 0.93 and min(label_agreement) > 0.8
    assert sum(pixel_close) / len(pixel_close) > 0.97


def test_flow_is_wrong_when_negated():
    clip = SyntheticVideo(camera_motion=3.0).render("val", 1, 2, degrade=False)
    good = warp(clip.frames[0].float()[None], clip.flow[0][None])
    bad = warp(clip.frames[0].float()[None], -clip.flow[0][None])
    target = clip.frames[-1].float()[None]
    assert (good - target).abs()[..., 8:-8, 8:-8].mean() < 0.5 * (bad - target).abs()[..., 8:-8, 8:-8].mean()


def test_only_the_current_frame_is_degraded():
    video = SyntheticVideo(noise=0.2, occluder_prob=1.0, dropout_prob=0.1)
    degraded, clean = video.render("train", 2, 3), video.render("train", 2, 3, degrade=False)
    assert torch.equal(degraded.frames[:-1], clean.frames[:-1])
    assert torch.equal(degraded.labels, clean.labels) and torch.equal(degraded.flow, clean.flow)
    assert (degraded.frames[-1].float() - clean.frames[-1].float()).abs().mean() > 10
    still = replace(video, noise=0.0, occluder_prob=0.0, dropout_prob=0.0).render("train", 2, 3)
    assert torch.equal(still.frames, clean.frames)


def test_blur_removes_texture_detail_of_the_current_frame_only():
    sharp = SyntheticVideo(noise=0.0, occluder_prob=0.0, dropout_prob=0.0)
    blurred = replace(sharp, blur=2.0).render("val", 4, 3)
    clean = sharp.render("val", 4, 3)

    def detail(frame: torch.Tensor) -> float:  # mean absolute horizontal gradient
        return (frame[..., 1:].float() - frame[..., :-1].float()).abs().mean().item()

    assert torch.equal(blurred.frames[:-1], clean.frames[:-1])
    assert detail(blurred.frames[-1]) < 0.5 * detail(clean.frames[-1])
    assert abs(blurred.frames[-1].float().mean() - clean.frames[-1].float().mean()) < 3  # same colours on average


def test_training_augmentation_transforms_flow_with_the_frames():
    cfg = data_config(noise=0.0, occluder_prob=0.0, dropout_prob=0.0, camera_motion=3.0)
    cfg.photometric = False
    cfg.crop_size = [48, 48]
    dataset = build_dataset(cfg, "train", memory_length=1, train=True)
    torch.manual_seed(0)
    errors = []
    for index in range(16):
        sample = dataset[index]
        assert sample["frames"].shape == (2, 3, 48, 48) and sample["flow"].shape == (1, 2, 48, 48)
        frames = denormalize(sample["frames"])
        valid = sample["label"] != 255
        inside = warp(torch.ones(1, 1, 48, 48), sample["flow"])[0, 0] > 0.999
        error = (warp(frames[:1], sample["flow"]) - frames[1:]).abs().mean(1)[0]
        errors.append(error[valid & inside].median().item())
    assert sum(errors) / len(errors) < 4.0


def test_render_is_fast():
    video = SyntheticVideo()
    video.render("train", 0, 5)
    start = time.perf_counter()
    for index in range(20):
        video.render("train", index, 5)
    assert (time.perf_counter() - start) / 20 < 0.05


def test_preview_png_is_written(tmp_path):
    dataset = build_dataset(data_config(), "val", memory_length=2, train=False)
    path = save_clip_grid(dataset, [0, 1], tmp_path / "grid.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000

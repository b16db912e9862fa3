"""Synthetic video: the class cue lives only in the past, determinism, sample format, exact flow, augmentation."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bench.data import DatasetError, build_dataset, collate_clips
from bench.data.classes import class_hue, synthetic_class_names
from bench.data.preview import save_clip_grid
from bench.data.synthetic import SyntheticVideo
from bench.data.transforms import denormalize
from bench.flow.warp import backward_warp


def data_config(**synthetic):
    """A DataConfig for the synthetic dataset (the lead's dataclass when available)."""
    from bench.config import DataConfig, SyntheticConfig

    return DataConfig(dataset="synthetic", crop_size=[64, 64], synthetic=SyntheticConfig(**synthetic))


def warp(source: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Backward warp (N, C, H, W) with flow (N, 2, H, W) defined on the target: out(p) = source(p + flow(p))."""
    return backward_warp(source, flow, mode=mode, padding_mode="zeros")


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
    """Warping a memory frame with the flow reproduces the current frame's object labels (where a copy of the
    same position does not) and its brightness (HSV value, the max over RGB: identical whether an object shows
    its hue or is grey) where the surface is visible in both frames."""
    video = SyntheticVideo(camera_motion=3.0, classes_per_clip=3)  # distinct classes: same label, same object
    warped_agree, copied_agree, pixel_close = [], [], []
    for index in range(12):
        clip = video.render("val", index, 4)
        current = clip.frames[-1].float().amax(0)[None, None]
        label = clip.labels[-1].float()[None, None]
        # away from label edges, where sampling mixes two surfaces
        edge = (F.max_pool2d(label, 3, 1, 1) != -F.max_pool2d(-label, 3, 1, 1))[0, 0]
        objects = (clip.labels[-1] > 0) & ~edge
        for i in range(3):
            flow = clip.flow[i][None]
            inside = warp(torch.ones(1, 1, 64, 64), flow)[0, 0] > 0.999
            warped_label = warp(clip.labels[i].float()[None, None], flow, "nearest")[0, 0].long()
            same = warped_label == clip.labels[-1]
            warped_agree.append(same[inside & objects].float().mean().item())
            copied_agree.append((clip.labels[i] == clip.labels[-1])[objects].float().mean().item())
            error = (warp(clip.frames[i].float().amax(0)[None, None], flow) - current).abs()[0, 0]
            pixel_close.append((error[inside & same & ~edge] < 8).float().mean().item())
    # the rest are occlusions: objects passing in front of each other
    assert sum(warped_agree) / len(warped_agree) > 0.88
    assert sum(copied_agree) / len(copied_agree) < 0.6
    assert sum(pixel_close) / len(pixel_close) > 0.97


def test_flow_is_wrong_when_negated():
    clip = SyntheticVideo(camera_motion=3.0).render("val", 1, 2, degrade=False)
    good = warp(clip.frames[0].float()[None], clip.flow[0][None])
    bad = warp(clip.frames[0].float()[None], -clip.flow[0][None])
    target = clip.frames[-1].float()[None]
    assert (good - target).abs()[..., 8:-8, 8:-8].mean() < 0.5 * (bad - target).abs()[..., 8:-8, 8:-8].mean()


def object_pixels(clip, frame: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (N, 3) floats in [0, 1] and classes (N,) of the object pixels of ``frame``."""
    mask = clip.labels[frame] > 0
    return clip.frames[frame].permute(1, 2, 0)[mask].float() / 255, clip.labels[frame][mask]


def saturation(rgb: torch.Tensor) -> torch.Tensor:
    high, low = rgb.max(-1).values, rgb.min(-1).values
    return (high - low) / high.clamp_min(1e-6)


def hue_class(rgb: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class whose cue hue is nearest to each pixel's hue (pixels (N, 3) in [0, 1])."""
    from bench.data.transforms import rgb_to_hsv

    hue = rgb_to_hsv(rgb.T[:, :, None])[0, :, 0]
    hues = torch.tensor([class_hue(k, num_classes) for k in range(1, num_classes)])
    distance = (hue[:, None] - hues[None]).abs()
    return torch.minimum(distance, 1 - distance).argmin(1) + 1


def test_current_frame_hides_the_class_and_memory_frames_show_it():
    video = SyntheticVideo(size=(48, 48), num_classes=6, clip_length=6, cue_prob=1.0)
    values = {k: [] for k in range(1, 6)}
    for index in range(40):
        clip = video.render("train", index, 3)
        rgb, classes = object_pixels(clip, -1)
        assert saturation(rgb).max() < 0.02  # grey: no hue at all, only the silhouette and its pattern
        for k in classes.unique().tolist():
            values[k].append(rgb[classes == k].mean().item())
        for past in range(2):  # cue_prob=1: every memory frame shows every object's class hue
            rgb, classes = object_pixels(clip, past)
            assert saturation(rgb).min() > 0.5
            assert (hue_class(rgb, 6) == classes).float().mean() > 0.99
    # the brightness of a grey object is drawn independently of its class
    means = [sum(v) / len(v) for v in values.values() if v]
    assert len(means) == 5 and max(means) - min(means) < 0.12


def test_memory_frames_show_the_cue_with_cue_prob():
    video = SyntheticVideo(size=(32, 32), clip_length=6, cue_prob=0.5)
    shown = []
    for index in range(200):
        rgb, _ = object_pixels(video.render("val", index, 2), 0)
        shown.append(saturation(rgb).mean().item() > 0.5)
    assert 0.4 < sum(shown) / len(shown) < 0.6
    never = replace(video, cue_prob=0.0).render("val", 0, 6)
    assert all(saturation(object_pixels(never, f)[0]).max() < 0.02 for f in range(6))


def test_negative_control_shows_the_cue_in_the_current_frame_only_difference():
    hidden = SyntheticVideo(size=(32, 32), clip_length=6, cue_prob=0.5)
    visible = replace(hidden, current_cue="visible")
    for index in range(10):
        a, b = hidden.render("test", index, 4), visible.render("test", index, 4)
        assert torch.equal(a.frames[:-1], b.frames[:-1])
        assert torch.equal(a.labels, b.labels) and torch.equal(a.flow, b.flow)
        rgb, classes = object_pixels(b, -1)
        assert (hue_class(rgb, 6) == classes).float().mean() > 0.99
        background = a.labels[-1] == 0
        assert torch.equal(a.frames[-1][:, background], b.frames[-1][:, background])
    with pytest.raises(ValueError, match="current_cue"):
        SyntheticVideo(current_cue="sometimes")


def test_clean_render_shows_every_cue_and_keeps_labels_and_flow():
    video = SyntheticVideo(cue_prob=0.0, noise=0.2, occluder_prob=1.0, dropout_prob=0.1)
    degraded, clean = video.render("train", 2, 3), video.render("train", 2, 3, degrade=False)
    assert torch.equal(degraded.labels, clean.labels) and torch.equal(degraded.flow, clean.flow)
    assert all(saturation(object_pixels(clean, f)[0]).min() > 0.5 for f in range(3))
    assert (degraded.frames[-1].float() - clean.frames[-1].float()).abs().mean() > 10


def test_objects_move_more_than_a_position_copy_tolerates():
    """Two frames apart, most object pixels of the current frame were elsewhere (flow longer than 4 px at
    32x32) and a same-position copy of the past label is wrong on a large part of the objects."""
    video = SyntheticVideo(size=(32, 32), clip_length=6, object_speed=0.15)
    moved, wrong = [], []
    for index in range(30):
        clip = video.render("val", index, 3)
        objects = clip.labels[-1] > 0
        moved.append((clip.flow[0].norm(dim=0)[objects] > 4).float().mean().item())
        wrong.append((clip.labels[0][objects] != clip.labels[-1][objects]).float().mean().item())
    assert sum(moved) / len(moved) > 0.8 and sum(wrong) / len(wrong) > 0.4


def test_classes_per_clip():
    for distinct in (1, 2):
        video = SyntheticVideo(num_classes=6, classes_per_clip=distinct)
        counts = [len(video.render("train", i, 1).labels.unique()) - 1 for i in range(30)]
        assert max(counts) == distinct and min(counts) >= 1
    assert synthetic_class_names(6) == ["background", "red", "yellow", "spring", "azure", "magenta"]


def test_blur_and_noise_touch_the_current_frame_only():
    sharp = SyntheticVideo()
    blurred = replace(sharp, blur=2.0, noise=0.1).render("val", 4, 3)
    clean = sharp.render("val", 4, 3)

    def detail(frame: torch.Tensor) -> float:  # mean absolute horizontal gradient
        return (frame[..., 1:].float() - frame[..., :-1].float()).abs().mean().item()

    assert torch.equal(blurred.frames[:-1], clean.frames[:-1])
    assert detail(blurred.frames[-1]) != detail(clean.frames[-1])


def test_training_augmentation_transforms_flow_with_the_frames():
    cfg = data_config(camera_motion=3.0, cue_prob=1.0, current_cue="visible")
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

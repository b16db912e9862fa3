"""Clip-consistent augmentation: identical geometry across frames, flow consistency, crop, pad, photometric."""

from __future__ import annotations

import torch

from bench.constants import IMAGENET_MEAN
from bench.data.transforms import (
    ClipTransform,
    choose_crop,
    denormalize,
    hsv_to_rgb,
    normalize,
    photometric_distortion,
    rescaled_size,
    rgb_to_hsv,
)


def coordinate_clip(num_frames: int = 3, height: int = 40, width: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames whose R/G channels encode x/y (B = frame index); label = x // 8 (6 classes)."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    frames = torch.stack([torch.stack((xs * 4, ys * 4, torch.full_like(xs, 50 * f))) for f in range(num_frames)]).to(
        torch.uint8
    )
    return frames, (xs // 8).long()


def test_geometry_is_identical_across_frames_and_label():
    frames, label = coordinate_clip()
    transform = ClipTransform(
        train=True, crop_size=(24, 24), scale_range=(1.0, 1.0), cat_max_ratio=1.0, photometric=False
    )
    flips = set()
    for seed in range(12):
        out, out_label, _ = transform(frames, label, None, torch.Generator().manual_seed(seed))
        pixels = denormalize(out).round()
        assert out.shape == (3, 3, 24, 24)
        assert torch.equal(pixels[0, :2], pixels[1, :2]) and torch.equal(pixels[0, :2], pixels[2, :2])
        assert torch.equal((pixels[0, 0] / 4).long() // 8, out_label)  # label still matches the x code
        assert [pixels[f, 2].unique().item() for f in range(3)] == [0.0, 50.0, 100.0]  # frame order kept
        flips.add(bool(pixels[0, 0, 0, 0] > pixels[0, 0, 0, -1]))
    assert flips == {True, False}


def test_photometric_distortion_is_drawn_per_frame_geometry_shared():
    frames = torch.stack([coordinate_clip(1)[0][0]] * 4)
    label = coordinate_clip(1)[1]
    plain = ClipTransform(train=True, crop_size=(32, 32), scale_range=(0.8, 1.2), photometric=False)
    distorted = ClipTransform(train=True, crop_size=(32, 32), scale_range=(0.8, 1.2), photometric=True)
    for seed in range(5):
        out_plain, label_plain, _ = plain(frames, label, None, torch.Generator().manual_seed(seed))
        out, out_label, _ = distorted(frames, label, None, torch.Generator().manual_seed(seed))
        # geometry is drawn before the colours: the same crop/flip/scale with or without photometric distortion
        assert torch.equal(out_label, label_plain)
        assert all(torch.equal(frame, out_plain[0]) for frame in out_plain)
    assert len({tuple(frame.flatten().tolist()) for frame in out}) > 1  # colours drawn per frame


def test_flow_is_rescaled_cropped_and_negated_on_flip():
    frames, label = coordinate_clip(2, 16, 16)
    flow = torch.stack((torch.full((16, 16), 1.5), torch.full((16, 16), -0.5)))[None]
    transform = ClipTransform(
        train=True, crop_size=(32, 32), scale_range=(2.0, 2.0), cat_max_ratio=1.0, photometric=False
    )
    seen = set()
    for seed in range(10):
        out, out_label, out_flow = transform(frames, label, flow, torch.Generator().manual_seed(seed))
        assert out.shape == (2, 3, 32, 32) and out_flow.shape == (1, 2, 32, 32) and out_label.shape == (32, 32)
        flipped = bool(denormalize(out)[0, 0, 0, 0] > denormalize(out)[0, 0, 0, -1])
        assert torch.allclose(out_flow[0, 0], torch.full((32, 32), -3.0 if flipped else 3.0))
        assert torch.allclose(out_flow[0, 1], torch.full((32, 32), -1.0))
        seen.add(flipped)
    assert seen == {True, False}


def test_pad_to_crop_size_with_zero_image_and_ignore_label():
    frames, label = coordinate_clip(2, 20, 20)
    flow = torch.ones(1, 2, 20, 20)
    transform = ClipTransform(
        train=True, crop_size=(32, 40), scale_range=(1.0, 1.0), cat_max_ratio=1.0, flip=False, photometric=False
    )
    out, out_label, out_flow = transform(frames, label, flow, torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 32, 40)
    assert (out_label[20:] == 255).all() and (out_label[:, 20:] == 255).all() and (out_label[:20, :20] != 255).all()
    assert (out[..., 20:, :] == 0).all() and (out_flow[..., 20:, :] == 0).all()


def test_cat_max_ratio_prefers_crops_with_several_classes():
    label = torch.zeros(64, 64, dtype=torch.long)
    label[40:, 40:] = 1

    def mixed_fraction(ratio: float) -> float:
        mixed = 0
        for seed in range(60):
            top, left, h, w = choose_crop(label, (20, 20), ratio, torch.Generator().manual_seed(seed))
            assert (h, w) == (20, 20)
            mixed += label[top : top + h, left : left + w].unique().numel() > 1
        return mixed / 60

    assert mixed_fraction(0.75) > mixed_fraction(1.0) + 0.2


def test_rescaled_size_follows_mmcv_keep_ratio():
    assert rescaled_size((1024, 2048), [1024, 2048], 0.5) == (512, 1024)
    assert rescaled_size((720, 960), [720, 960], 2.0) == (1440, 1920)
    assert rescaled_size((360, 480), [720, 960], 1.0) == (720, 960)
    assert rescaled_size((64, 64), [], 1.5) == (96, 96)


def test_eval_resizes_to_base_size_without_augmentation():
    frames, label = coordinate_clip(2, 20, 24)
    transform = ClipTransform(train=False, base_size=(40, 48))
    out, out_label, _ = transform(frames, label, None)
    assert out.shape == (2, 3, 40, 48) and out_label.shape == (40, 48)
    same, _, _ = ClipTransform(train=False)(frames, label, None)
    assert torch.allclose(denormalize(same), frames.float(), atol=1e-3)


def test_hsv_round_trip_and_photometric_range():
    rgb = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, atol=1e-5)
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)) * 255
    for seed in range(10):
        out = photometric_distortion(image, torch.Generator().manual_seed(seed))
        assert out.shape == image.shape and out.min() >= 0 and out.max() <= 255


def test_normalize_uses_imagenet_statistics():
    mean_image = torch.tensor(IMAGENET_MEAN).view(3, 1, 1).expand(3, 4, 4)
    assert torch.allclose(normalize(mean_image), torch.zeros(3, 4, 4), atol=1e-6)

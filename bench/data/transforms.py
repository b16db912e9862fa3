"""Clip-consistent augmentation and normalisation (the mmseg pipeline of the official TMANet configs).

Training, in the order of the official pipeline (docs/tmanet.md §2.1, §3)::

    Resize(img_scale=base_size, ratio_range=scale_range, keep_ratio) -> RandomCrop(crop_size, cat_max_ratio)
    -> RandomFlip(0.5) -> PhotoMetricDistortion -> Normalize -> Pad(crop_size, img 0, label 255)

Every geometric step is drawn once per clip and applied identically to all frames, to the label and to the
ground-truth flow (flow is rescaled when resized, cropped with the image, and its dx negated when flipped).
Only the photometric distortion is drawn independently for each frame, as in the official code.
Evaluation only resizes to ``base_size`` (if set) and normalises.

Resize and crop are fused (``ClipTransform.window_resize``, on by default): the scale is drawn first, the crop
is chosen on the label resized lazily (nearest: the exact index map of ``F.interpolate``, so the crop and the
label are the same as resizing the whole label), and only the crop window of the frames and the flow is
interpolated (bilinear, ``align_corners=False``: PyTorch's source indices and weights, :func:`linear_taps`). A
2048x1024 Cityscapes frame scaled up to 4096x2048 for a 769x769 crop then costs the crop, not the whole frame.
The frames agree with resizing whole frames with ``F.interpolate`` and cropping (``window_resize=False``, the
reference) to within float rounding: at most ``WINDOW_RESIZE_TOLERANCE`` (on the 0..255 scale) apart, tested
in ``tests/test_data_loader_speed.py``; PyTorch's CPU kernel itself rounds differently with one thread than
with several, while the window path gives the same bits for any thread count.

Usage::

    transform = ClipTransform.from_config(data_cfg, train=True)
    frames, label, flow = transform(frames_uint8, label, flow)   # (N,3,H,W) uint8, (H,W) int64, (T,2,H,W) | None

Randomness comes from torch's global generator (seeded per DataLoader worker) unless a
``torch.Generator`` is passed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bench.config import DataConfig
from bench.constants import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD

Box = tuple[int, int, int, int]  # top, left, height, width
# largest difference (0..255 scale) between a window-resized frame and F.interpolate then crop; measured up
# to 5e-5 (different rounding of the same bilinear formula), the bound leaves room for other CPU kernels
WINDOW_RESIZE_TOLERANCE = 1e-3
WINDOW_CHUNK = 2**18  # output pixels resized per step by resize_window (about 1 MiB of float32)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _coin(generator: torch.Generator | None, p: float = 0.5) -> bool:
    return torch.rand((), generator=generator).item() < p


def _randint(low: int, high_inclusive: int, generator: torch.Generator | None) -> int:
    return int(torch.randint(low, high_inclusive + 1, (), generator=generator).item())


def rescaled_size(size: tuple[int, int], base_size: list[int] | tuple[int, ...], ratio: float) -> tuple[int, int]:
    """Output (H, W) of mmcv's keep-ratio rescale of an image of ``size`` to ``base_size * ratio``.

    The scale factor is ``min(long_target / long_side, short_target / short_side)``; an empty
    ``base_size`` means the native size (factor = ``ratio``).
    """
    h, w = size
    if base_size:
        long_target, short_target = max(base_size) * ratio, min(base_size) * ratio
        factor = min(long_target / max(h, w), short_target / min(h, w))
    else:
        factor = ratio
    return max(1, int(h * factor + 0.5)), max(1, int(w * factor + 0.5))


def resize_clip(
    frames: torch.Tensor, label: torch.Tensor, flow: torch.Tensor | None, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Resize frames (bilinear, float), label (nearest) and flow (bilinear, displacements rescaled)."""
    h, w = label.shape
    if (h, w) == tuple(size):
        return frames.float(), label, flow
    frames = F.interpolate(frames.float(), size=size, mode="bilinear", align_corners=False)
    label = F.interpolate(label[None, None].float(), size=size, mode="nearest")[0, 0].long()
    if flow is not None:
        flow = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
        flow = flow * torch.tensor([size[1] / w, size[0] / h], dtype=flow.dtype).view(1, 2, 1, 1)
    return frames, label, flow


@functools.lru_cache(maxsize=4096)  # small images repeat the same few sizes; callers never modify the taps
def linear_taps(in_size: int, out_size: int, start: int, length: int) -> tuple[torch.Tensor, ...]:
    """Source taps of output pixels ``start .. start+length-1`` of a bilinear resize ``in_size -> out_size``
    (``align_corners=False``): indices ``i0``, ``i1`` (int64) and weights ``w0``, ``w1`` (float32), each
    ``(length,)``, so that ``out = src[i0] * w0 + src[i1] * w1``. PyTorch's rule: scale = in/out in float32,
    source = scale * (dst + 0.5) - 0.5 rounded once to float32 and clamped at 0 (numpy: small arrays are cheaper
    there than in torch)."""
    scale = np.float64(np.float32(in_size) / np.float32(out_size))
    dst = np.arange(start, start + length, dtype=np.float64)
    source = np.maximum((scale * (dst + 0.5) - 0.5).astype(np.float32), np.float32(0))
    i0 = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    w1 = np.clip(source - i0.astype(np.float32), np.float32(0), np.float32(1))
    i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
    return tuple(torch.from_numpy(a) for a in (i0, i1, np.float32(1) - w1, w1))


def nearest_indices(in_size: int, out_size: int) -> torch.Tensor:
    """Source index of every output pixel of ``F.interpolate(mode="nearest")`` along one axis: ``(out_size,)``
    int64, PyTorch's rule (floor(dst * (in/out in float32)), with its exact shortcuts for 1x and 2x)."""
    if out_size == in_size:
        return torch.arange(out_size)
    if out_size == 2 * in_size:
        return torch.arange(out_size) // 2
    scale = np.float32(in_size) / np.float32(out_size)
    indices = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return torch.from_numpy(np.minimum(indices, in_size - 1))


class ResizedLabel:
    """A label map ``(H, W)`` resized (nearest) to ``size`` without building it: ``shape`` and ``window(box)``
    give what ``F.interpolate(label, size, mode="nearest")`` and a crop of it would, exactly."""

    def __init__(self, label: torch.Tensor, size: tuple[int, int]) -> None:
        self.label = label
        self.shape = tuple(size)
        self.rows = nearest_indices(label.shape[0], size[0])
        self.cols = nearest_indices(label.shape[1], size[1])

    def window(self, box: Box) -> torch.Tensor:
        """The ``(height, width)`` window at (top, left) of the resized label."""
        top, left, height, width = box
        rows = self.label.index_select(0, self.rows[top : top + height])
        return rows.index_select(1, self.cols[left : left + width])


def resize_window(images: torch.Tensor, size: tuple[int, int], box: Box) -> torch.Tensor:
    """The ``box`` window of ``images`` ``(..., H, W)`` (any dtype) bilinearly resized to ``size``: float32
    ``(..., height, width)``; equal to ``F.interpolate(images.float(), size)[..., window]`` within
    ``WINDOW_RESIZE_TOLERANCE`` x (value range / 255). Only the source rows and columns the window reads are
    touched, a few ``(H, W)`` planes at a time (``WINDOW_CHUNK`` output pixels: the arrays stay in the CPU
    cache, while small images go in one step)."""
    top, left, height, width = box
    in_h, in_w = images.shape[-2:]
    if (in_h, in_w) == tuple(size):
        return images[..., top : top + height, left : left + width].float()
    y0, y1, h0, h1 = linear_taps(in_h, size[0], top, height)
    x0, x1, w0, w1 = linear_taps(in_w, size[1], left, width)
    first, last = int(x0.min()), int(x1.max()) + 1
    x0, x1, h0, h1 = x0 - first, x1 - first, h0[:, None], h1[:, None]
    planes = images.reshape(-1, in_h, in_w)[..., first:last]
    out = torch.empty((planes.shape[0], height, width), dtype=torch.float32)

    def row_mix(chunk: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:  # horizontal pass over source rows
        picked = chunk.index_select(-2, rows)
        if picked.numel() > WINDOW_CHUNK:  # gathers along the last axis are slow: gather rows of the transpose
            picked = picked.transpose(-1, -2).contiguous()  # (planes, w_src, height)
            left_tap = picked.index_select(-2, x0).transpose(-1, -2).contiguous().float()
            right_tap = picked.index_select(-2, x1).transpose(-1, -2).contiguous().float()
        else:  # small: fewer steps (the same values)
            left_tap, right_tap = picked.index_select(-1, x0).float(), picked.index_select(-1, x1).float()
        return left_tap.mul_(w0).add_(right_tap.mul_(w1))

    step = max(1, WINDOW_CHUNK // (height * width))
    for k in range(0, planes.shape[0], step):
        chunk = planes[k : k + step]
        torch.add(row_mix(chunk, y0).mul_(h0), row_mix(chunk, y1).mul_(h1), out=out[k : k + step])
    return out.reshape(*images.shape[:-2], height, width)


def _random_box(size: tuple[int, int], crop: tuple[int, int], generator: torch.Generator | None) -> Box:
    h, w = size
    ch, cw = min(crop[0], h), min(crop[1], w)
    return _randint(0, h - ch, generator), _randint(0, w - cw, generator), ch, cw


def choose_crop(
    label: torch.Tensor | ResizedLabel,
    crop: tuple[int, int],
    cat_max_ratio: float,
    generator: torch.Generator | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> Box:
    """mmseg RandomCrop: redraw (up to 10 times) until no class covers ``cat_max_ratio`` of the crop.

    Only the current frame's label is inspected (docs/tmanet.md §2.1): a ``(H, W)`` tensor or a
    :class:`ResizedLabel`. Returns (top, left, height, width).
    """
    box = _random_box(tuple(label.shape), crop, generator)
    if cat_max_ratio >= 1.0:
        return box
    for _ in range(10):
        top, left, ch, cw = box
        window = label.window(box) if isinstance(label, ResizedLabel) else label[top : top + ch, left : left + cw]
        counts = torch.bincount(window[window != ignore_index].flatten())
        counts = counts[counts > 0]
        if counts.numel() > 1 and counts.max().item() / counts.sum().item() < cat_max_ratio:
            break
        box = _random_box(tuple(label.shape), crop, generator)
    return box


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` RGB in [0, 1] -> HSV in [0, 1] (hue as a fraction of the circle)."""
    r, g, b = rgb.unbind(0)
    maxc, _ = rgb.max(0)
    minc, _ = rgb.min(0)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(maxc == r, ((g - b) / safe) % 6, torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(delta > 0, hue / 6, torch.zeros_like(hue))
    sat = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack((hue, sat, maxc))


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = hsv.unbind(0)
    k = torch.stack([(n + h * 6) % 6 for n in (5.0, 3.0, 1.0)])
    return v - v * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def photometric_distortion(image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """mmseg PhotoMetricDistortion on one float ``(3, H, W)`` frame in 0..255.

    Brightness +-32, contrast 0.5..1.5 (before or after the HSV steps, chosen at random), saturation
    0.5..1.5 and hue +-18 (OpenCV's 0..180 hue scale), each applied with probability 0.5.
    """
    image = image.clone()
    if _coin(generator):
        image = (image + _uniform(-32, 32, generator)).clamp(0, 255)
    contrast_first = _coin(generator)
    if contrast_first and _coin(generator):
        image = (image * _uniform(0.5, 1.5, generator)).clamp(0, 255)
    saturation = _uniform(0.5, 1.5, generator) if _coin(generator) else None
    hue_shift = _randint(-18, 18, generator) / 180.0 if _coin(generator) else None
    if saturation is not None or hue_shift is not None:
        hsv = rgb_to_hsv(image / 255.0)
        if saturation is not None:
            hsv[1] = (hsv[1] * saturation).clamp(0, 1)
        if hue_shift is not None:
            hsv[0] = (hsv[0] + hue_shift) % 1.0
        image = (hsv_to_rgb(hsv) * 255.0).clamp(0, 255)
    if not contrast_first and _coin(generator):
        image = (image * _uniform(0.5, 1.5, generator)).clamp(0, 255)
    return image


def normalize(frames: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` RGB 0..255 -> ImageNet-normalised float32."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return (frames.float() - mean) / std


def denormalize(frames: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`, clamped to 0..255 (float)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1).to(frames.device)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1).to(frames.device)
    return (frames * std + mean).clamp(0, 255)


def pad_clip(
    frames: torch.Tensor, label: torch.Tensor, flow: torch.Tensor | None, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Pad bottom/right to ``size``: normalised frames with 0, label with 255, flow with 0 (mmseg Pad)."""
    h, w = label.shape
    pad = (0, max(size[1] - w, 0), 0, max(size[0] - h, 0))
    if pad == (0, 0, 0, 0):
        return frames, label, flow
    frames = F.pad(frames, pad, value=0.0)
    label = F.pad(label, pad, value=IGNORE_INDEX)
    if flow is not None:
        flow = F.pad(flow, pad, value=0.0)
    return frames, label, flow


@dataclass
class ClipTransform:
    """Joint augmentation of a clip (training) or plain resize + normalisation (evaluation)."""

    train: bool
    crop_size: tuple[int, int] = (64, 64)
    base_size: tuple[int, ...] = ()
    scale_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    flip: bool = True
    photometric: bool = True
    window_resize: bool = True  # resize only the crop window (False: whole frames, then crop; the reference)

    @classmethod
    def from_config(cls, data_cfg: DataConfig, train: bool) -> ClipTransform:
        """Read ``crop_size``, ``base_size``, ``scale_range``, ``cat_max_ratio``, ``flip``, ``photometric``."""
        return cls(
            train=train,
            crop_size=tuple(int(v) for v in data_cfg.crop_size),
            base_size=tuple(int(v) for v in data_cfg.base_size),
            scale_range=tuple(float(v) for v in data_cfg.scale_range),
            cat_max_ratio=float(data_cfg.cat_max_ratio),
            flip=bool(data_cfg.flip),
            photometric=bool(data_cfg.photometric),
        )

    def __call__(
        self,
        frames: torch.Tensor,
        label: torch.Tensor,
        flow: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """frames uint8/float ``(N, 3, H, W)`` 0..255, label int64 ``(H, W)``, flow ``(T, 2, H, W)`` or None.

        Returns normalised float32 frames, the label and the flow, all at the same (H', W').
        """
        size = tuple(label.shape)
        if not self.train:
            if self.base_size:
                size = rescaled_size(size, self.base_size, 1.0)
            frames, label, flow = resize_clip(frames, label, flow, size)
            return normalize(frames), label, flow

        ratio = _uniform(self.scale_range[0], self.scale_range[1], generator)
        scaled = rescaled_size(size, self.base_size, ratio)
        if self.window_resize:
            frames, label, flow = self._window_crop(frames, label, flow, scaled, generator)
        else:
            frames, label, flow = resize_clip(frames, label, flow, scaled)
            top, left, ch, cw = choose_crop(label, self.crop_size, self.cat_max_ratio, generator)
            frames = frames[..., top : top + ch, left : left + cw]
            label = label[top : top + ch, left : left + cw]
            if flow is not None:
                flow = flow[..., top : top + ch, left : left + cw]
        if self.flip and _coin(generator):
            frames, label = frames.flip(-1), label.flip(-1)
            if flow is not None:
                flow = flow.flip(-1) * torch.tensor([-1.0, 1.0], dtype=flow.dtype).view(1, 2, 1, 1)
        if self.photometric:
            frames = torch.stack([photometric_distortion(frame, generator) for frame in frames])
        frames, label, flow = pad_clip(normalize(frames), label, flow, self.crop_size)
        return frames.contiguous(), label.contiguous(), None if flow is None else flow.contiguous()

    def _window_crop(
        self,
        frames: torch.Tensor,
        label: torch.Tensor,
        flow: torch.Tensor | None,
        size: tuple[int, int],
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Resize to ``size`` and crop in one step: the crop is drawn on the lazily resized label, then only its
        window of the frames and the flow is interpolated (same draws from ``generator`` as the reference)."""
        h, w = label.shape
        resized = ResizedLabel(label, size)
        box = choose_crop(resized, self.crop_size, self.cat_max_ratio, generator)
        label = resized.window(box)
        if flow is None:
            frames = resize_window(frames, size, box)
        else:  # one call for both (the same values as two; fewer steps for small clips)
            planes = frames.shape[0] * frames.shape[1]
            both = resize_window(torch.cat([frames.reshape(planes, h, w).float(), flow.reshape(-1, h, w)]), size, box)
            frames = both[:planes].reshape(*frames.shape[:2], *both.shape[-2:])
            flow = both[planes:].reshape(*flow.shape[:2], *both.shape[-2:])
            if (h, w) != tuple(size):
                flow = flow * torch.tensor([size[1] / w, size[0] / h], dtype=flow.dtype).view(1, 2, 1, 1)
        return frames, label, flow


def clip_sample(
    transform: ClipTransform, frames: torch.Tensor, label: torch.Tensor, flow: torch.Tensor | None, name: str
) -> dict:
    """Apply ``transform`` and pack the sample dict of docs/architecture.md ("Clips")."""
    frames, label, flow = transform(frames, label, flow)
    sample = {"frames": frames.float(), "label": label.long(), "name": name}
    if flow is not None:
        sample["flow"] = flow.float()
    return sample

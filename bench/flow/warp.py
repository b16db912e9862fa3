"""Backward warping with optical flow (docs/baselines.md §1).

Convention (the dataset contract and RAFT agree): ``flow`` is defined on the TARGET frame (the current frame t)
and points into the SOURCE frame (a past frame), channel 0 = dx, 1 = dy, in pixels, so that
``source(p + flow(p)) ~ target(p)``. RAFT gives it as ``raft(img_t, img_src)[-1]``. Warping samples the source
at ``p + flow(p)`` with ``grid_sample(align_corners=True)`` (pixel centres at integer coordinates, the
normalisation torchvision's own RAFT helpers use).

Usage::

    from bench.flow.warp import backward_warp, resize_flow, warp_valid_mask
    f = resize_flow(flow, (h, w))                 # (B, 2, H, W) -> (B, 2, h, w), displacements rescaled
    warped = backward_warp(past_features, f)          # (B, C, h, w), aligned with the current frame
    labels_t = backward_warp(labels_past[:, None].float(), flow, mode="nearest")
    valid = warp_valid_mask(flow)                 # (B, 1, H, W) bool: sampled fully inside the source
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _sampling_grid(flow: Tensor) -> Tensor:
    """(B, 2, H, W) flow in pixels -> (B, H, W, 2) grid in [-1, 1] (x, y) for ``align_corners=True``."""
    b, _, h, w = flow.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=flow.device, dtype=flow.dtype),
        torch.arange(w, device=flow.device, dtype=flow.dtype),
        indexing="ij",
    )
    gx = 2.0 * (xs + flow[:, 0]) / max(w - 1, 1) - 1.0
    gy = 2.0 * (ys + flow[:, 1]) / max(h - 1, 1) - 1.0
    return torch.stack((gx, gy), dim=-1)


def backward_warp(src: Tensor, flow: Tensor, mode: str = "bilinear", padding_mode: str = "zeros") -> Tensor:
    """Warp ``src`` (B, C, H, W) of the source frame into the target frame with ``flow`` (B, 2, H, W).

    ``out(p) = src(p + flow(p))``; ``mode`` "bilinear" for features/images, "nearest" for label maps;
    ``padding_mode`` "zeros" | "border" | "reflection" for samples outside the source.
    """
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be (B, 2, H, W), got {tuple(flow.shape)}")
    if src.shape[0] != flow.shape[0] or src.shape[-2:] != flow.shape[-2:]:
        raise ValueError(
            f"src {tuple(src.shape)} and flow {tuple(flow.shape)} need the same batch and size; use resize_flow first"
        )
    grid = _sampling_grid(flow.to(src.dtype))
    return F.grid_sample(src, grid, mode=mode, padding_mode=padding_mode, align_corners=True)


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize flow (B, 2, H, W) -> (B, 2, h, w) and rescale the displacements to the new pixel grid.

    With ``align_corners=True`` a displacement of ``d`` pixels at width W becomes ``d * (w-1)/(W-1)``.
    """
    h_in, w_in = flow.shape[-2:]
    h, w = int(size[0]), int(size[1])
    if (h, w) == (h_in, w_in):
        return flow
    resized = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=True)
    scale = torch.tensor([(w - 1) / max(w_in - 1, 1), (h - 1) / max(h_in - 1, 1)], device=flow.device, dtype=flow.dtype)
    return resized * scale.view(1, 2, 1, 1)


def warp_valid_mask(flow: Tensor) -> Tensor:
    """(B, 2, H, W) -> (B, 1, H, W) bool: True where ``p + flow(p)`` lies inside the source image.

    Warping a ones image bilinearly with zero padding and keeping pixels that stay at 1 (docs/baselines.md §1);
    occlusions are not detected.
    """
    ones = torch.ones(flow.shape[0], 1, *flow.shape[-2:], device=flow.device, dtype=flow.dtype)
    return backward_warp(ones, flow, mode="bilinear", padding_mode="zeros") > 1.0 - 1e-4


def warp_labels(labels: Tensor, flow: Tensor, ignore_index: int = 255) -> Tensor:
    """Warp an id map (B, H, W) int with ``flow`` (B, 2, H, W) by nearest sampling; outside -> ``ignore_index``."""
    warped = backward_warp(labels[:, None].to(flow.dtype), flow, mode="nearest", padding_mode="zeros")
    warped = warped.round().long()[:, 0]
    return torch.where(warp_valid_mask(flow)[:, 0], warped, torch.full_like(warped, ignore_index))

"""Inference of one batch: whole-image, or sliding windows averaged (``eval.mode``).

    logits = predict_logits(model, frames, flow, mode="slide", crop_size=(769, 769), stride=(513, 513))
    frames, flow = current_clip(batch, model)    # the evaluated frame's own clip of a batch with extra past frames

Sliding-window inference follows mmseg's ``slide_inference``: windows of ``eval.crop_size`` every
``eval.stride`` pixels, the last window of a row/column shifted back to end at the border, every memory frame
(and the ground-truth flow) cropped with the same window, overlapping logits averaged. Where the image is
smaller than the window in a dimension, the window is the image's extent there and runs unpadded, as in mmseg
and the official TMANet ("the small patch will be used to decode without padding"; tests/test_oracle_mmseg.py
compares the logits with mmseg's ``slide_inference``). Slide is for large images: the official TMANet configs
slide 769x769 windows every 513 pixels over Cityscapes' 1024x2048 frames and 640/512 over CamVid's 720x960. A
window that covers the whole image in both dimensions (e.g. the default 769x769 on 64x64 synthetic frames) is
one pass over the whole image, as whole-image inference; a warning says so. Test-time augmentation (scales,
flip) is ``bench.evaluation.tta``.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

log = logging.getLogger("bench.evaluation.inference")

Window = tuple[int, int, int, int]  # y1, y2, x1, x2


# --------------------------------------------------------------------------------------------------
# inference


def slide_windows(size: tuple[int, int], crop: tuple[int, int], stride: tuple[int, int]) -> list[Window]:
    """Window boxes covering an image of ``size`` (H, W), mmseg's grid: the last window ends at the border."""
    (h, w), (ch, cw), (sh, sw) = size, crop, stride
    if min(ch, cw, sh, sw) < 1:
        raise ValueError(f"eval crop_size {crop} and stride {stride} must be positive")
    rows = max(h - ch + sh - 1, 0) // sh + 1
    cols = max(w - cw + sw - 1, 0) // sw + 1
    windows = []
    for i in range(rows):
        for j in range(cols):
            y2, x2 = min(i * sh + ch, h), min(j * sw + cw, w)
            windows.append((max(y2 - ch, 0), y2, max(x2 - cw, 0), x2))
    return windows


_WARNED: set[tuple[tuple[int, int], tuple[int, int]]] = set()


def _warn_whole_image(size: tuple[int, int], crop: tuple[int, int]) -> None:
    """Once per (image size, window): slide inference with a window that covers the image is whole-image."""
    if crop == size or (size, crop) in _WARNED:
        return
    _WARNED.add((size, crop))
    log.warning(
        f"eval.mode=slide: the window eval.crop_size={list(crop)} covers the whole {size[0]}x{size[1]} "
        f"image, so slide is one pass over the whole image, as eval.mode=whole; slide is for large images "
        f"(Cityscapes, CamVid): give eval.mode=whole, or an eval.crop_size smaller than the image"
    )


def predict_logits(
    model: nn.Module,
    frames: Tensor,
    flow: Tensor | None,
    mode: str = "whole",
    crop_size: tuple[int, int] = (769, 769),
    stride: tuple[int, int] = (513, 513),
) -> Tensor:
    """Logits (B, C, H, W) for the current frame of ``frames`` (B, T+1, 3, H, W); ``flow`` (B, T, 2, H, W) or None.

    ``mode`` "whole" runs the model once; "slide" averages windowed predictions (module docstring).
    """
    if mode == "whole":
        return model(frames, flow)["out"].float()
    if mode != "slide":
        raise ValueError(f"unknown eval mode {mode!r}; choose 'whole' or 'slide'")
    h, w = frames.shape[-2:]
    crop = (int(crop_size[0]), int(crop_size[1]))
    if crop[0] >= h and crop[1] >= w:  # one window holding the whole image: whole-image inference, unpadded
        _warn_whole_image((h, w), crop)
        return model(frames, flow)["out"].float()
    summed: Tensor | None = None
    count = torch.zeros(1, 1, h, w, device=frames.device)
    for y1, y2, x1, x2 in slide_windows((h, w), crop, (int(stride[0]), int(stride[1]))):
        window_flow = None if flow is None else flow[..., y1:y2, x1:x2]
        logits = model(frames[..., y1:y2, x1:x2], window_flow)["out"].float()  # a short window runs unpadded
        if summed is None:
            summed = torch.zeros(logits.shape[0], logits.shape[1], h, w, device=frames.device)
        summed[..., y1:y2, x1:x2] += logits
        count[..., y1:y2, x1:x2] += 1
    assert summed is not None
    return summed / count


def needs_flow_input(model: nn.Module) -> bool:
    """True for models that read ground-truth flow from the batch (flow_warp with flow_source='ground_truth')."""
    model = getattr(model, "module", model)
    return getattr(model, "flow_source", None) == "ground_truth"


def current_clip(batch: dict, model: nn.Module) -> tuple[Tensor, Tensor | None]:
    """The evaluated frame's own clip of a batch that may hold extra past frames for TC: frames
    (B, T+1, 3, H, W) and flow (B, T, 2, H, W) or None (T = the model's ``memory_length``)."""
    memory = int(getattr(getattr(model, "module", model), "memory_length", 0))
    frames, flow = batch["frames"], batch.get("flow")
    return frames[:, frames.shape[1] - memory - 1 :], None if flow is None else flow[:, flow.shape[1] - memory :]

"""Test-time augmentation as mmseg does it: the image at several scales, and mirrored, softmax outputs averaged.

    protocol = Protocol.from_eval(cfg.eval)           # eval.mode, crop_size, stride, scales, flip
    scores = predict_scores(model, frames, flow, protocol)   # (B, C, H, W); argmax(1) is the prediction
    protocol.label()                                  # "single-scale", "flip", "ms (0.5-1.75)", "ms+flip (0.5-1.75)"

mmseg's protocol (0.x ``EncoderDecoder.aug_test`` / ``inference``, 1.x ``SegTTAModel.merge_preds`` and
``EncoderDecoder.postprocess_result``; ``test.py --aug-test`` (mmseg) sets ratios 0.5, 0.75, 1.0, 1.25, 1.5, 1.75
and flip): for every scale s and flip, the input is resized to (int(H*s + 0.5), int(W*s + 0.5)) (mmcv's
``rescale_size`` rounding) and mirrored, run through the usual whole or slide inference, its logits resized back to
(H, W) (bilinear, the model's ``align_corners``) and mirrored back; the softmax of each is averaged. Memory frames
take the same scale and flip as the current frame (official TMANet's pipeline transforms the sequence images with
the key frame); a flow input (B, T, 2, H, W) in pixels is resized with its vectors scaled, and mirrored with its
x component negated. With one scale of 1.0 and no flip the scores are the logits themselves, unchanged.

Images are resized here as normalised float tensors (bilinear, half-pixel centres: OpenCV's INTER_LINEAR, which
mmseg applies to the 8-bit image before normalising), so an up- or down-scaled input differs from mmseg's by the
8-bit rounding of the resized image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.evaluation.inference import predict_logits
from bench.evaluation.protocols import MMSEG_SCALES, Protocol, augmentation_label, scaled_size
from bench.models.streaming import StreamingSegmenter

__all__ = [
    "MMSEG_SCALES",
    "AugmentedStream",
    "Protocol",
    "augment",
    "augmentation_label",
    "predict_scores",
    "scaled_size",
]


def augment(frames: Tensor, flow: Tensor | None, size: tuple[int, int], mirrored: bool) -> tuple[Tensor, Tensor | None]:
    """Every frame of ``frames`` (B, T+1, 3, H, W) resized to ``size`` and mirrored; ``flow`` (B, T, 2, H, W) in
    pixels resized with its vectors scaled, mirrored with dx negated."""
    b, t, c, h, w = frames.shape
    if (h, w) != tuple(size):
        frames = F.interpolate(frames.flatten(0, 1), size=size, mode="bilinear", align_corners=False)
        frames = frames.view(b, t, c, *size)
        if flow is not None:
            scale = flow.new_tensor([size[1] / w, size[0] / h]).view(1, 1, 2, 1, 1)
            resized = F.interpolate(flow.flatten(0, 1), size=size, mode="bilinear", align_corners=False)
            flow = resized.view(*flow.shape[:3], *size) * scale
    if mirrored:
        frames = frames.flip(-1)
        if flow is not None:
            flow = flow.flip(-1) * flow.new_tensor([-1.0, 1.0]).view(1, 1, 2, 1, 1)
    return frames, flow


def _back(logits: Tensor, size: tuple[int, int], mirrored: bool, align_corners: bool) -> Tensor:
    """Logits of an augmented pass -> softmax at the original ``size``, unmirrored (mmseg: resize, softmax, flip)."""
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=align_corners)
    probs = logits.softmax(dim=1)
    return probs.flip(-1) if mirrored else probs


def predict_scores(model: nn.Module, frames: Tensor, flow: Tensor | None, protocol: Protocol) -> Tensor:
    """Class scores (B, C, H, W) of the current frame of ``frames`` (B, T+1, 3, H, W): the logits for a single
    pass, else the mean softmax over ``protocol.augmentations()`` (module docstring). ``argmax(1)`` predicts."""
    window = dict(mode=protocol.mode, crop_size=protocol.crop_size, stride=protocol.stride)
    if protocol.single:
        return predict_logits(model, frames, flow, **window)
    size = (frames.shape[-2], frames.shape[-1])
    align_corners = bool(getattr(getattr(model, "module", model), "align_corners", False))
    total: Tensor | None = None
    for scale, mirrored in protocol.augmentations():
        scaled, scaled_flow = augment(frames, flow, scaled_size(size, scale), mirrored)
        probs = _back(predict_logits(model, scaled, scaled_flow, **window), size, mirrored, align_corners)
        total = probs if total is None else total + probs
    assert total is not None
    return total / len(protocol.augmentations())


class AugmentedStream:
    """``StreamingSegmenter`` under test-time augmentation: one stream (and so one memory feature cache) per
    (scale, flip), each fed the frame (and its flow) at its scale and mirroring; ``step`` returns the mean softmax
    (whole-image inference, as streaming is). With ``scales=(1.0,)`` and no flip it is the plain stream's logits.
    ``memory_positions`` / ``max_lag``: as ``StreamingSegmenter`` (whole-video evaluation's memory rule)."""

    def __init__(
        self,
        model: nn.Module,
        protocol: Protocol,
        mode: str = "streaming",
        memory_positions: Callable[[int], Sequence[int]] | None = None,
        max_lag: int | None = None,
    ) -> None:
        self.model = model
        self.protocol = protocol
        self.align_corners = bool(getattr(model, "align_corners", False))
        self.streams = {
            aug: StreamingSegmenter(model, mode, memory_positions, max_lag) for aug in protocol.augmentations()
        }

    def reset(self) -> None:
        for stream in self.streams.values():
            stream.reset()

    @torch.no_grad()
    def step(self, frame: Tensor, flow: Tensor | None = None) -> Tensor:
        """``frame`` (B, 3, H, W), ``flow`` (B, T, 2, H, W) or None -> scores (B, C, H, W)."""
        if self.protocol.single:
            return next(iter(self.streams.values())).step(frame, flow)
        size = (frame.shape[-2], frame.shape[-1])
        total = None
        for (scale, mirrored), stream in self.streams.items():
            scaled, scaled_flow = augment(frame[:, None], flow, scaled_size(size, scale), mirrored)
            probs = _back(stream.step(scaled[:, 0], scaled_flow), size, mirrored, self.align_corners)
            total = probs if total is None else total + probs
        return total / len(self.streams)

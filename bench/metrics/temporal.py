"""Two measures of the temporal consistency of consecutive predictions, warped by optical flow.

    agreement = PixelAgreement()               # metrics key "pixel_agreement"
    agreement.update(pred_t, pred_prev, flow)  # flow (B, 2, H, W): frame t -> frame t-1, pixels
    agreement.value()                          # fraction of comparable pixels whose prediction agrees

    etc = EtcConsistency(num_classes=19)       # metrics key "etc_tc"
    etc.update(pred_t, pred_prev, flow)        # once per consecutive pair (t-1 -> t) of every clip
    etc.value()                                # mean over pairs of mIoU(warped pred_prev, pred_t)

* ``pixel_agreement``: pooled over the split, the fraction of pixels whose prediction at t equals the
  flow-warped prediction at t-1 (pixels whose source leaves frame t-1 are not counted). One pair per clip.
* ``etc_tc``: the temporal consistency of ETC (Liu et al., ECCV 2020, "Efficient Semantic Video Segmentation
  with Per-frame Inference"): for each consecutive pair, the mIoU between the prediction at t and the prediction
  at t-1 warped into t, over the classes present in either (the warped map plays the ground truth; invalid
  warped pixels excluded); averaged over all pairs. Every clip contributes the same number of pairs, so this is
  also the mean over clips of the per-clip mean.

VSPW's video consistency (mVC_C), which needs no flow, is ``bench.metrics.video_consistency``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from bench.flow.warp import warp_labels
from bench.metrics.segmentation import confusion_matrix, mean_iou


def warp_prediction(pred_prev: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    """(warped (B, H, W) long, valid (B, H, W) bool): ``pred_prev`` (B, H, W) sampled at ``p + flow(p)``.

    ``flow`` (B, 2, H, W) is defined on frame t and points into frame t-1 (pixels); nearest-neighbour
    sampling; pixels whose source lies outside frame t-1 are not valid.
    """
    outside = -1  # never a class id, so it marks pixels that left the frame
    warped = warp_labels(pred_prev.long(), flow.float(), ignore_index=outside)
    return warped, warped != outside


def temporal_agreement(pred_t: Tensor, pred_prev: Tensor, flow: Tensor) -> tuple[int, int]:
    """(agreeing pixels, comparable pixels) between the prediction at t and the one at t-1 warped into t.

    ``pred_t``, ``pred_prev`` (B, H, W) int class ids; ``flow`` (B, 2, H, W) from t into t-1 (``warp_prediction``).
    """
    warped, valid = warp_prediction(pred_prev, flow)
    agree = (warped == pred_t.long()) & valid
    return int(agree.sum()), int(valid.sum())


class PixelAgreement:
    """Pixel agreement of consecutive predictions over a split: ``value()`` = agreeing / comparable pixels.

    Not ETC's temporal consistency (that is ``EtcConsistency``): this pools pixels, not per-pair mIoU.
    """

    def __init__(self) -> None:
        self.counts = torch.zeros(2, dtype=torch.int64)  # agreeing, comparable

    def update(self, pred_t: Tensor, pred_prev: Tensor, flow: Tensor) -> None:
        agree, valid = temporal_agreement(pred_t, pred_prev, flow)
        self.counts += torch.tensor([agree, valid])

    def value(self) -> float | None:
        """Fraction in [0, 1], or None when no pixel was comparable."""
        agree, valid = (int(v) for v in self.counts)
        return agree / valid if valid else None


def pair_miou(pred_t: Tensor, pred_prev: Tensor, flow: Tensor, num_classes: int) -> list[float]:
    """ETC's per-pair consistency, one value per image of the batch (images without a valid pixel are left out).

    mIoU between ``pred_t`` (B, H, W) and ``pred_prev`` (B, H, W) warped into t with ``flow`` (B, 2, H, W, t -> t-1),
    over the classes present in either map at the valid pixels.
    """
    warped, valid = warp_prediction(pred_prev, flow)
    values = []
    for cur, prev, keep in zip(pred_t.long(), warped, valid):
        if keep.any():
            values.append(mean_iou(confusion_matrix(cur[keep], prev[keep], num_classes, ignore_index=-1)))
    return values


class EtcConsistency:
    """ETC's temporal consistency (Liu et al., ECCV 2020) over a split: the mean of ``pair_miou`` over all pairs.

    Pair values are kept (one float per pair) and summed with ``math.fsum``, so the result does not depend on
    how pairs were split across DDP ranks.
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.values: list[float] = []

    def update(self, pred_t: Tensor, pred_prev: Tensor, flow: Tensor) -> None:
        """Add the B pairs (prediction at t-1 -> prediction at t) of a batch."""
        self.values += pair_miou(pred_t, pred_prev, flow, self.num_classes)

    def value(self) -> float | None:
        """Mean pair mIoU in [0, 1], or None when no pair had a valid pixel."""
        return math.fsum(self.values) / len(self.values) if self.values else None

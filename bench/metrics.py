"""Segmentation metrics over a whole split: confusion matrix, mIoU, per-class IoU, pixel accuracy, and two
measures of the temporal consistency of consecutive predictions.

    cm = ConfusionMatrix(num_classes=19)
    cm.update(pred, label)                     # pred, label (B, H, W) int; label 255 = ignore
    cm.matrix = all_reduce_sum(cm.matrix, env) # DDP: the caller sums the state tensors (bench.distributed)
    summary = segmentation_summary(cm.matrix, class_names)   # miou, pixel_acc, macc, per_class_iou, confusion_matrix

    agreement = PixelAgreement()               # metrics key "pixel_agreement"
    agreement.update(pred_t, pred_prev, flow)  # flow (B, 2, H, W): frame t -> frame t-1, pixels
    agreement.value()                          # fraction of comparable pixels whose prediction agrees

    etc = EtcConsistency(num_classes=19)       # metrics key "etc_tc"
    etc.update(pred_t, pred_prev, flow)        # once per consecutive pair (t-1 -> t) of every clip
    etc.value()                                # mean over pairs of mIoU(warped pred_prev, pred_t)

The two temporal measures:

* ``pixel_agreement``: pooled over the split, the fraction of pixels whose prediction at t equals the
  flow-warped prediction at t-1 (pixels whose source leaves frame t-1 are not counted). One pair per clip.
* ``etc_tc``: the temporal consistency of ETC (Liu et al., ECCV 2020, "Efficient Semantic Video Segmentation
  with Per-frame Inference"): for each consecutive pair, the mIoU between the prediction at t and the prediction
  at t-1 warped into t, over the classes present in either (the warped map plays the ground truth; invalid
  warped pixels excluded); averaged over all pairs. Every clip contributes the same number of pairs, so this is
  also the mean over clips of the per-clip mean.

mIoU is computed from the dataset-level confusion matrix (rows = ground truth, columns = prediction) and
averages only classes present in the ground truth or the predictions: a class absent from both has IoU 0/0
and is skipped, as mmseg's ``nanmean`` and cityscapesscripts do (docs/baselines.md §4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from bench.constants import IGNORE_INDEX
from bench.flow.warp import warp_labels


def confusion_matrix(pred: Tensor, label: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """(C, C) int64 counts, rows = ground truth, columns = prediction, on ``label``'s device.

    ``pred`` and ``label`` have the same shape; pixels with ``label == ignore_index`` are dropped. Labels other
    than ``ignore_index`` must lie in ``[0, C)``, predictions in ``[0, C)``.
    """
    if pred.shape != label.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and label {tuple(label.shape)} differ in shape")
    keep = label != ignore_index
    gt, pr = label[keep].long(), pred[keep].long().to(label.device)
    if gt.numel():
        lo, hi = torch.aminmax(torch.cat([gt, pr]))
        if int(lo) < 0 or int(hi) >= num_classes:
            raise ValueError(
                f"labels/predictions must lie in [0, {num_classes}) or equal {ignore_index}; "
                f"found values in [{int(lo)}, {int(hi)}]"
            )
    counts = torch.bincount(gt * num_classes + pr, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(matrix: Tensor) -> Tensor:
    """(C,) float64 IoU = TP / (TP + FP + FN); NaN for a class absent from both ground truth and predictions."""
    matrix = matrix.double()
    tp = matrix.diag()
    union = matrix.sum(0) + matrix.sum(1) - tp
    return tp / union  # 0/0 -> NaN


def mean_iou(matrix: Tensor) -> float:
    """Mean of the per-class IoU over classes that are not NaN (NaN if every class is absent)."""
    return float(torch.nanmean(iou_per_class(matrix)))


def pixel_accuracy(matrix: Tensor) -> float:
    """Correct pixels / evaluated (non-ignored) pixels; NaN when nothing was evaluated."""
    total = matrix.sum()
    return float(matrix.diag().sum().double() / total) if total > 0 else math.nan


def mean_class_accuracy(matrix: Tensor) -> float:
    """mAcc: mean over classes present in the ground truth of TP / ground-truth pixels (NaN if none is present)."""
    matrix = matrix.double()
    return float(torch.nanmean(matrix.diag() / matrix.sum(1)))  # absent class: 0/0 -> NaN, skipped


def segmentation_summary(matrix: Tensor, class_names: Sequence[str]) -> dict[str, Any]:
    """``{"miou", "pixel_acc", "macc", "per_class_iou": {name: iou or None}, "confusion_matrix": [C][C] ints}``.

    None marks a class absent from both ground truth and predictions (IoU) or a split with no evaluated pixel;
    ``confusion_matrix`` rows are ground truth, columns predictions, in ``class_names`` order.
    """
    ious = iou_per_class(matrix.cpu())
    if len(class_names) != len(ious):
        raise ValueError(f"{len(class_names)} class names for a {len(ious)}-class confusion matrix")
    per_class = {name: (None if math.isnan(v) else float(v)) for name, v in zip(class_names, ious.tolist())}
    miou = mean_iou(matrix.cpu())
    acc = pixel_accuracy(matrix.cpu())
    macc = mean_class_accuracy(matrix.cpu())
    return {
        "miou": None if math.isnan(miou) else miou,
        "pixel_acc": None if math.isnan(acc) else acc,
        "macc": None if math.isnan(macc) else macc,
        "per_class_iou": per_class,
        "confusion_matrix": matrix.cpu().long().tolist(),
    }


class ConfusionMatrix:
    """Accumulates a (C, C) int64 confusion matrix over batches, on the device of the first update."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: Tensor, label: Tensor) -> None:
        """Add a batch: ``pred`` and ``label`` (B, H, W) or (H, W)."""
        counts = confusion_matrix(pred, label, self.num_classes, self.ignore_index)
        self.matrix = self.matrix.to(counts.device) + counts

    def summary(self, class_names: Sequence[str]) -> dict[str, Any]:
        return segmentation_summary(self.matrix, class_names)


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

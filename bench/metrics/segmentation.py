"""Segmentation metrics over a whole split: confusion matrix, mIoU (two conventions), per-class IoU, accuracy.

    cm = ConfusionMatrix(num_classes=19)
    cm.update(pred, label)                     # pred, label (B, H, W) int; label 255 = ignore
    cm.matrix = all_reduce_sum(cm.matrix, env) # DDP: the caller sums the state tensors (bench.distributed)
    summary = segmentation_summary(cm.matrix, class_names)   # miou, pixel_acc, macc, per_class_iou, confusion_matrix
    miou_by_convention(cm.matrix, "present_in_gt")             # VSPW's official code (see below)

mIoU is computed from the dataset-level confusion matrix (rows = ground truth, columns = prediction). Two
conventions circulate, and on a split where some class is predicted but never labelled they differ:

* ``nonzero_union`` (the suite's default, ``mean_iou``): the mean over classes present in the ground truth or
  the predictions; a class absent from both has IoU 0/0 and is skipped, as mmseg's ``nanmean`` and
  cityscapesscripts do (docs/baselines.md §4). A class predicted but never labelled counts with IoU 0.
* ``present_in_gt`` (``mean_iou_present_in_gt``): the mean over the classes present in the ground truth only,
  as the VSPW authors' evaluator does (``Evaluator.Mean_Intersection_over_Union`` of VSPW_baseline and of the
  ``VC_perclip.py`` that CFFM ships): a class that is only predicted does not enter the mean (its false
  positives still lower the IoU of the classes it was predicted on).

``MIOU_CONVENTIONS`` names both; a record says which one its ``miou`` is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from bench.constants import IGNORE_INDEX


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


def mean_iou_present_in_gt(matrix: Tensor) -> float:
    """Mean IoU over the classes with ground-truth pixels (VSPW's evaluator); NaN if no class is labelled."""
    matrix = matrix.double()
    present = matrix.sum(1) > 0
    if not bool(present.any()):
        return math.nan
    return float(iou_per_class(matrix)[present].mean())


MIOU_CONVENTIONS = {
    "nonzero_union": "mean over classes present in the ground truth or the predictions (mmseg, cityscapesscripts)",
    "present_in_gt": "mean over classes present in the ground truth (VSPW's evaluator, VSPW_baseline / CFFM)",
}


def miou_by_convention(matrix: Tensor, convention: str) -> float:
    """mIoU of a confusion matrix under ``convention`` (a key of ``MIOU_CONVENTIONS``)."""
    if convention == "nonzero_union":
        return mean_iou(matrix)
    if convention == "present_in_gt":
        return mean_iou_present_in_gt(matrix)
    raise ValueError(f"unknown mIoU convention {convention!r}; choose one of {', '.join(MIOU_CONVENTIONS)}")

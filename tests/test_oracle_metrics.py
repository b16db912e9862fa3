"""The suite's split metrics (``bench.metrics``) against mmsegmentation's ``IoUMetric`` and ``torchmetrics`` on the
same random labels and predictions, with ignored pixels: mIoU, per-class IoU, pixel accuracy (mmseg's aAcc) and
mAcc, including a class absent from both (NaN, left out of the means by all three) and one only predicted.

Skips (with the install command) without the oracle extra; fails instead under ``BENCH_ORACLE=1`` (CI).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers.oracle import require_oracle

from bench.constants import IGNORE_INDEX
from bench.metrics import ConfusionMatrix

CLASSES = 6
NAMES = [f"class{i}" for i in range(CLASSES)]


def labels_and_predictions(seed: int, absent: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, predictions) (4, 37, 53): 70% correct, 10% of the labels ignored; ``absent`` classes appear in
    neither the labels nor the predictions, except that the last class of ``absent`` is predicted a few times."""
    g = torch.Generator().manual_seed(seed)
    present = torch.tensor([c for c in range(CLASSES) if c not in absent])
    labels = present[torch.randint(len(present), (4, 37, 53), generator=g)]
    noise = present[torch.randint(len(present), labels.shape, generator=g)]
    predictions = torch.where(torch.rand(labels.shape, generator=g) < 0.7, labels, noise)
    if absent:
        predictions[0, :2, :3] = absent[-1]  # predicted, never in the ground truth: IoU 0, no accuracy
    labels[torch.rand(labels.shape, generator=g) < 0.1] = IGNORE_INDEX
    return labels, predictions


def suite(labels: torch.Tensor, predictions: torch.Tensor) -> dict:
    matrix = ConfusionMatrix(CLASSES)
    for label, prediction in zip(labels, predictions):  # one image per update, as evaluation does
        matrix.update(prediction, label)
    return matrix.summary(NAMES)


def mmseg_metrics(labels: torch.Tensor, predictions: torch.Tensor) -> dict:
    """mmseg 1.2.2 ``IoUMetric``: ``process`` per image, then its own ``total_area_to_metrics`` on the summed areas
    (``compute_metrics`` rounds to two decimals, so the unrounded values are read one step earlier)."""
    require_oracle()
    from mmseg.evaluation import IoUMetric

    metric = IoUMetric(ignore_index=IGNORE_INDEX, iou_metrics=["mIoU"])
    metric.dataset_meta = {"classes": NAMES}
    samples = [
        {"pred_sem_seg": {"data": p[None]}, "gt_sem_seg": {"data": lab[None]}} for lab, p in zip(labels, predictions)
    ]
    metric.process({}, samples)
    areas = [sum(r[i] for r in metric.results) for i in range(4)]
    found = IoUMetric.total_area_to_metrics(*areas, metrics=["mIoU"])
    return {
        "miou": np.nanmean(found["IoU"]),
        "iou": found["IoU"],
        "pixel_acc": found["aAcc"],
        "macc": np.nanmean(found["Acc"]),
    }


def _per_class(summary: dict) -> list[float]:
    return [math.nan if v is None else v for v in summary["per_class_iou"].values()]


@pytest.mark.parametrize("absent", [(), (2, 4)], ids=["all-present", "absent-classes"])
def test_metrics_equal_mmsegs_iou_metric(absent):
    labels, predictions = labels_and_predictions(seed=len(absent), absent=absent)
    ours, theirs = suite(labels, predictions), mmseg_metrics(labels, predictions)
    # mmseg divides float32 pixel counts (exact below 2**24): agreement to float32 precision, NaN where it has NaN
    np.testing.assert_allclose(_per_class(ours), theirs["iou"], rtol=0, atol=1e-6)
    for key in ("miou", "pixel_acc", "macc"):
        assert ours[key] == pytest.approx(float(theirs[key]), abs=1e-6), key
    if absent:
        assert ours["per_class_iou"]["class2"] is None and ours["per_class_iou"]["class4"] == 0.0


@pytest.mark.parametrize("absent", [(), (2, 4)], ids=["all-present", "absent-classes"])
def test_metrics_equal_torchmetrics(absent):
    """torchmetrics scores a class absent from labels and predictions 0 (``zero_division``), not NaN: its per-class
    values are compared on the classes present, and the means are recomputed over them."""
    torchmetrics = require_oracle("torchmetrics")
    labels, predictions = labels_and_predictions(seed=10 + len(absent), absent=absent)
    ours = suite(labels, predictions)
    cls = torchmetrics.classification
    kwargs = dict(num_classes=CLASSES, ignore_index=IGNORE_INDEX)
    iou = cls.MulticlassJaccardIndex(average="none", **kwargs)(predictions, labels).double()
    accuracy = cls.MulticlassAccuracy(average="none", **kwargs)(predictions, labels).double()
    pixel_acc = cls.MulticlassAccuracy(average="micro", **kwargs)(predictions, labels)
    kept = [c for c in range(CLASSES) if c not in absent[:-1]]  # the predicted-only class counts (IoU 0)
    in_truth = [c for c in range(CLASSES) if c not in absent]
    per_class = _per_class(ours)
    np.testing.assert_allclose([per_class[c] for c in kept], iou[kept].numpy(), rtol=0, atol=1e-6)
    assert ours["miou"] == pytest.approx(float(iou[kept].mean()), abs=1e-6)
    assert ours["macc"] == pytest.approx(float(accuracy[in_truth].mean()), abs=1e-6)
    assert ours["pixel_acc"] == pytest.approx(float(pixel_acc), abs=1e-6)

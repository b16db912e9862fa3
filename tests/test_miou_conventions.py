"""The two mIoU conventions (bench.metrics.segmentation): by hand, and against a transcription of VSPW's evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.metrics import MIOU_CONVENTIONS, confusion_matrix, mean_iou, mean_iou_present_in_gt, miou_by_convention


def vspw_evaluator_miou(matrix: np.ndarray) -> float:
    """VSPW's ``Evaluator.Mean_Intersection_over_Union`` (VSPW_baseline utils / CFFM VC_perclip.py), written out:
    per-class IoU, summed over the classes with ground-truth pixels, divided by their number."""
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.diag(matrix) / (matrix.sum(1) + matrix.sum(0) - np.diag(matrix))
    present = matrix.sum(1) > 0
    return float(np.nansum(iou * present) / present.sum())


def test_a_class_only_predicted_counts_in_one_convention_and_not_the_other():
    label = torch.tensor([[0, 0, 1, 1]])
    pred = torch.tensor([[0, 2, 1, 1]])  # class 2 never labelled: IoU 0 under nonzero_union, left out otherwise
    cm = confusion_matrix(pred, label, num_classes=4)
    # IoU: class 0 = 1/2, class 1 = 1, class 2 = 0 (union 1), class 3 absent
    assert mean_iou(cm) == pytest.approx((0.5 + 1 + 0) / 3)
    assert mean_iou_present_in_gt(cm) == pytest.approx((0.5 + 1) / 2)
    assert miou_by_convention(cm, "nonzero_union") == mean_iou(cm)
    assert miou_by_convention(cm, "present_in_gt") == mean_iou_present_in_gt(cm)
    assert set(MIOU_CONVENTIONS) == {"nonzero_union", "present_in_gt"}


def test_present_in_gt_equals_vspws_evaluator_on_random_labels():
    rng = np.random.default_rng(0)
    label = torch.from_numpy(rng.choice([0, 1, 2, 5, 255], size=(4, 16, 16)))
    pred = torch.from_numpy(rng.integers(0, 7, size=(4, 16, 16)))  # 3, 4, 6 predicted, never labelled
    cm = confusion_matrix(pred, label, num_classes=7)
    assert mean_iou_present_in_gt(cm) == pytest.approx(vspw_evaluator_miou(cm.numpy()), abs=1e-12)
    assert mean_iou(cm) < mean_iou_present_in_gt(cm)


def test_no_labelled_class_gives_nan_and_an_unknown_convention_is_refused():
    assert math.isnan(mean_iou_present_in_gt(torch.zeros(3, 3, dtype=torch.int64)))
    with pytest.raises(ValueError, match="choose one of nonzero_union, present_in_gt"):
        miou_by_convention(torch.zeros(3, 3), "mmseg")

"""Evaluation outputs: mAcc and the confusion matrix in the summary, prediction PNGs (``--save-preds``)."""

from __future__ import annotations

import pytest
import torch

from bench.metrics import confusion_matrix, segmentation_summary


def test_summary_has_macc_and_the_confusion_counts():
    label = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 1]])
    summary = segmentation_summary(confusion_matrix(pred, label, 4), ["a", "b", "c", "d"])
    assert summary["confusion_matrix"] == [[1, 1, 0, 0], [0, 3, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    # per present class: a 1/2, b 3/3, c 1/2; d is absent from the ground truth and skipped
    assert summary["macc"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert summary["pixel_acc"] == pytest.approx(5 / 7)


def test_macc_is_none_without_evaluated_pixels():
    summary = segmentation_summary(torch.zeros(2, 2, dtype=torch.int64), ["a", "b"])
    assert summary["macc"] is None and summary["confusion_matrix"] == [[0, 0], [0, 0]]

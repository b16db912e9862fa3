"""Metric correctness: hand-computed confusion matrices, NaN-skipping of absent classes, the ignore index,
the two temporal measures (pixel agreement, ETC's TC against a numpy reference), and agreement with
cityscapesscripts' official evaluator."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
from PIL import Image

from bench.metrics import (
    ConfusionMatrix,
    EtcConsistency,
    PixelAgreement,
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pair_miou,
    pixel_accuracy,
    segmentation_summary,
    temporal_agreement,
)


def test_confusion_matrix_by_hand_with_ignore_and_absent_class():
    label = torch.tensor([[0, 0, 1, 1], [1, 255, 2, 2]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 3, 2, 0]])  # the 3 sits on an ignored pixel: it must not count
    cm = confusion_matrix(pred, label, num_classes=4)
    expected = torch.tensor(
        [
            [1, 1, 0, 0],  # GT 0: one right, one predicted 1
            [1, 2, 0, 0],  # GT 1: two right, one predicted 0
            [1, 0, 1, 0],  # GT 2: one right, one predicted 0
            [0, 0, 0, 0],
        ]
    )  # class 3 absent from GT and (non-ignored) predictions
    assert torch.equal(cm, expected)
    iou = iou_per_class(cm)
    # IoU = TP / (row + col - TP): class 0: 1/(2+3-1), class 1: 2/(3+3-2), class 2: 1/(2+1-1)
    assert iou[:3].tolist() == pytest.approx([1 / 4, 2 / 4, 1 / 2])
    assert math.isnan(iou[3])
    assert mean_iou(cm) == pytest.approx((1 / 4 + 2 / 4 + 1 / 2) / 3)  # NaN class skipped, not counted as 0
    assert pixel_accuracy(cm) == pytest.approx(4 / 7)


def test_class_predicted_but_absent_from_ground_truth_scores_zero():
    label = torch.tensor([0, 0, 0, 0])
    pred = torch.tensor([0, 0, 1, 1])
    cm = confusion_matrix(pred, label, num_classes=3)
    iou = iou_per_class(cm)
    assert iou[0] == pytest.approx(0.5) and iou[1] == 0.0 and math.isnan(iou[2])
    assert mean_iou(cm) == pytest.approx(0.25)


def test_accumulation_equals_one_big_matrix_and_summary_uses_class_names():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (6, 8, 8), generator=g)
    labels[labels == 4] = 255
    preds = torch.randint(0, 4, (6, 8, 8), generator=g)
    acc = ConfusionMatrix(num_classes=5)
    for p, t in zip(preds.split(2), labels.split(2)):
        acc.update(p, t)
    assert torch.equal(acc.matrix, confusion_matrix(preds, labels, 5))
    summary = segmentation_summary(acc.matrix, ["a", "b", "c", "d", "e"])
    assert set(summary) == {"miou", "pixel_acc", "macc", "per_class_iou", "confusion_matrix"}
    assert summary["per_class_iou"]["e"] is None  # absent from both -> None in JSON, skipped in the mean
    valid = [v for v in summary["per_class_iou"].values() if v is not None]
    assert summary["miou"] == pytest.approx(sum(valid) / len(valid))
    keep = labels != 255
    assert summary["pixel_acc"] == pytest.approx(float((preds[keep] == labels[keep]).float().mean()))


def test_out_of_range_labels_are_an_error():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), num_classes=3)


def test_temporal_agreement_with_a_shift():
    # previous prediction: a vertical edge at x=4; the scene moved right by 1 px, so flow t -> t-1 is dx=-1
    prev = torch.zeros(1, 6, 8, dtype=torch.long)
    prev[..., 4:] = 1
    cur = torch.zeros(1, 6, 8, dtype=torch.long)
    cur[..., 5:] = 1
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0] = -1.0
    agree, valid = temporal_agreement(cur, prev, flow)
    assert valid == 6 * 7  # column x=0 samples x=-1, outside frame t-1
    assert agree == valid  # perfectly consistent after warping
    # without motion compensation the edge column disagrees
    agree0, valid0 = temporal_agreement(cur, prev, torch.zeros_like(flow))
    assert (agree0, valid0) == (6 * 7, 6 * 8)
    agreement = PixelAgreement()
    agreement.update(cur, prev, flow)
    agreement.update(cur, prev, torch.zeros_like(flow))
    assert agreement.value() == pytest.approx((42 + 42) / (42 + 48))
    assert PixelAgreement().value() is None


def _numpy_pair_miou(cur: np.ndarray, prev: np.ndarray, flow: np.ndarray) -> float:
    """ETC's per-pair TC by hand: nearest-neighbour backward warp, drop pixels sampled outside, mIoU over the
    classes present in either map."""
    h, w = cur.shape
    ys, xs = np.mgrid[0:h, 0:w]
    sx, sy = np.rint(xs + flow[0]).astype(int), np.rint(ys + flow[1]).astype(int)
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    warped = prev[sy.clip(0, h - 1), sx.clip(0, w - 1)]
    a, b = cur[inside], warped[inside]
    ious = [np.sum((a == c) & (b == c)) / np.sum((a == c) | (b == c)) for c in np.union1d(a, b)]
    return float(np.mean(ious))


def test_etc_tc_equals_a_numpy_reference_on_random_predictions_and_integer_flows():
    g = torch.Generator().manual_seed(3)
    pairs = [
        (
            torch.randint(0, 4, (2, 7, 9), generator=g),
            torch.randint(0, 4, (2, 7, 9), generator=g),
            torch.randint(-3, 4, (2, 2, 7, 9), generator=g).float(),
        )
        for _ in range(3)
    ]  # 3 clips' pairs, B = 2
    etc = EtcConsistency(num_classes=4)
    expected = []
    for cur, prev, flow in pairs:
        etc.update(cur, prev, flow)
        expected += [_numpy_pair_miou(c.numpy(), p.numpy(), f.numpy()) for c, p, f in zip(cur, prev, flow)]
    assert etc.value() == pytest.approx(np.mean(expected), abs=1e-12)
    assert pair_miou(*pairs[0], num_classes=4) == pytest.approx(expected[:2], abs=1e-12)
    assert EtcConsistency(4).value() is None


def test_etc_tc_is_one_for_identical_or_exactly_warped_predictions():
    pred = torch.randint(0, 5, (3, 8, 10), generator=torch.Generator().manual_seed(0))
    zero = torch.zeros(3, 2, 8, 10)
    assert pair_miou(pred, pred, zero, 5) == pytest.approx([1.0, 1.0, 1.0])
    # the scene moves 2 px right and 1 px down: cur(p) = prev(p - (2, 1)), so the flow t -> t-1 is (-2, -1)
    cur = torch.zeros_like(pred)
    cur[:, 1:, 2:] = pred[:, :-1, :-2]
    shift = zero.clone()
    shift[:, 0], shift[:, 1] = -2.0, -1.0
    etc = EtcConsistency(5)
    etc.update(cur, pred, shift)
    assert etc.value() == pytest.approx(1.0)
    unwarped = EtcConsistency(5)
    unwarped.update(cur, pred, zero)
    assert unwarped.value() < 0.5


# --------------------------------------------------------------------------------------------------
# cityscapesscripts cross-check (docs/baselines.md §3.1)

# Cityscapes label id of each trainId 0..18
TRAIN_TO_ID = np.array([7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33], dtype=np.uint8)
IGNORED_IDS = np.array([0, 1, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30], dtype=np.uint8)


def test_miou_equals_cityscapesscripts(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tmp_path))  # read by the module at import
    cs_eval = importlib.import_module("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    monkeypatch.setattr(cs_eval.args, "JSONOutput", False)
    monkeypatch.setattr(cs_eval.args, "quiet", True)
    monkeypatch.setattr(cs_eval.args, "evalInstLevelScore", False)

    rng = np.random.default_rng(0)
    ours = ConfusionMatrix(num_classes=19)
    preds, gts = [], []
    for i in range(3):
        gt_train = rng.integers(0, 19, size=(64, 128))
        gt_train[gt_train == 16] = 3  # class 16 ("train") absent from GT ...
        pred_train = rng.integers(0, 19, size=(64, 128))
        pred_train[pred_train == 16] = 5  # ... and from predictions: NaN on both sides
        pred_train[pred_train == 17] = 4  # class 17: in GT, never predicted -> IoU 0
        gt_ids = TRAIN_TO_ID[gt_train]
        ignored = rng.random((64, 128)) < 0.15
        gt_ids[ignored] = rng.choice(IGNORED_IDS, size=int(ignored.sum()))
        gt_path = tmp_path / "gtFine" / "val" / "city" / f"city_000000_{i:06d}_gtFine_labelIds.png"
        pred_path = tmp_path / "results" / f"city_000000_{i:06d}_pred.png"
        gt_path.parent.mkdir(parents=True, exist_ok=True)
        pred_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(gt_ids).save(gt_path)
        Image.fromarray(TRAIN_TO_ID[pred_train]).save(pred_path)
        gts.append(str(gt_path))
        preds.append(str(pred_path))
        label = torch.from_numpy(np.where(ignored, 255, gt_train))
        ours.update(torch.from_numpy(pred_train), label)

    result = cs_eval.evaluateImgLists(preds, gts, cs_eval.args)
    names = [cs_eval.trainId2label[t].name for t in range(19)]
    summary = ours.summary(names)
    assert summary["miou"] == pytest.approx(result["averageScoreClasses"], abs=1e-6)
    for name in names:
        theirs = result["classScores"][name]
        if math.isnan(theirs):
            assert summary["per_class_iou"][name] is None
        else:
            assert summary["per_class_iou"][name] == pytest.approx(theirs, abs=1e-6)
    assert summary["per_class_iou"]["train"] is None
    assert summary["per_class_iou"]["motorcycle"] == 0.0

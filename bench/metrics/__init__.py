"""Metrics: pure tensor/array code (no config, data or models; pyproject's import contracts).

* ``bench.metrics.segmentation``: confusion matrix, mIoU under its two conventions, per-class IoU, accuracies;
* ``bench.metrics.temporal``: flow-warped consistency of consecutive predictions (pixel agreement, ETC's TC);
* ``bench.metrics.video_consistency``: VSPW's mVC_C (official and the variants in circulation);
* ``bench.metrics.video_scores``: all of it per video, for whole-video evaluation and scoring prediction folders.

The names below are importable from ``bench.metrics`` directly, as before the package was split.
"""

from bench.metrics.segmentation import (
    MIOU_CONVENTIONS,
    ConfusionMatrix,
    confusion_matrix,
    iou_per_class,
    mean_class_accuracy,
    mean_iou,
    mean_iou_present_in_gt,
    miou_by_convention,
    pixel_accuracy,
    segmentation_summary,
)
from bench.metrics.temporal import (
    EtcConsistency,
    PixelAgreement,
    pair_miou,
    temporal_agreement,
    warp_prediction,
)
from bench.metrics.video_consistency import VC_VARIANTS, VcVariant, VideoConsistency, mvc
from bench.metrics.video_scores import VideoScores

__all__ = [
    "MIOU_CONVENTIONS",
    "VC_VARIANTS",
    "ConfusionMatrix",
    "EtcConsistency",
    "PixelAgreement",
    "VcVariant",
    "VideoConsistency",
    "VideoScores",
    "confusion_matrix",
    "iou_per_class",
    "mean_class_accuracy",
    "mean_iou",
    "mean_iou_present_in_gt",
    "miou_by_convention",
    "mvc",
    "pair_miou",
    "pixel_accuracy",
    "segmentation_summary",
    "temporal_agreement",
    "warp_prediction",
]

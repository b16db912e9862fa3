"""Everything a whole-video evaluation reports, accumulated video by video: mIoU (both conventions), per-class IoU,
accuracies and mVC (every window length and variant), with per-video counts for a bootstrap over videos.

    scores = VideoScores(num_classes=124, windows=(8, 16), gt_lut=vspw_lut)
    for video in videos:
        scores.begin_video(video)
        for frame, pred in ...:                     # frames in order
            scores.add_frame(frame.label, frame.raw, pred)   # (H, W) class ids / 255, stored values, prediction
        scores.end_video()
    summary = scores.summary(class_names, "nonzero_union")   # miou under that convention; see ``summary``

Whole-video evaluation (a model's predictions) and the neutral scorer (a folder of PNGs made by any codebase)
both feed this class, so their numbers are computed by the same code. Per video it keeps the intersection, union
and labelled pixels per class (the format of ``metrics.per_image``, with videos as the unit:
``bench.report.stats`` resamples videos, the independent unit of VSPW) and each video's window scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bench.constants import IGNORE_INDEX
from bench.metrics.segmentation import MIOU_CONVENTIONS, confusion_matrix, miou_by_convention, segmentation_summary
from bench.metrics.video_consistency import VC_VARIANTS, VideoConsistency


def _as_tensor(values: Any) -> torch.Tensor:
    return values.long() if isinstance(values, torch.Tensor) else torch.from_numpy(np.asarray(values, dtype=np.int64))


class VideoScores:
    """Per-video confusion counts and mVC windows; ``summary`` gives the split's numbers (module docstring)."""

    def __init__(
        self,
        num_classes: int,
        windows: Sequence[int] = (8, 16),
        variants: Sequence[str] = tuple(VC_VARIANTS),
        gt_lut: np.ndarray | None = None,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.vc = VideoConsistency(windows, variants, gt_lut, ignore_index)
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.per_video: dict[str, list] = {
            "names": [],
            "intersection": [],
            "union": [],
            "label_pixels": [],
            "frames": [],
        }
        self._video_matrix: torch.Tensor | None = None

    def begin_video(self, name: str) -> None:
        self.vc.begin_video(name)
        self._video_matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def add_frame(self, label: Any, raw: Any, pred: Any) -> None:
        """One frame: ``label`` (H, W) class ids with ``ignore_index`` as void, ``raw`` the stored values it was
        mapped from (None: the same as ``label``), ``pred`` (H, W) class ids in [0, num_classes)."""
        label, pred = _as_tensor(label), _as_tensor(pred)
        self._video_matrix += confusion_matrix(pred, label, self.num_classes, self.ignore_index).cpu()
        self.vc.add_frame((label if raw is None else _as_tensor(raw)).numpy(), pred.numpy())

    def end_video(self) -> None:
        matrix, self._video_matrix = self._video_matrix, None
        video = self.vc.end_video()
        tp = matrix.diag()
        for key, values in (
            ("names", video.name),
            ("intersection", tp.tolist()),
            ("union", (matrix.sum(0) + matrix.sum(1) - tp).tolist()),
            ("label_pixels", matrix.sum(1).tolist()),
            ("frames", video.frames),
        ):
            self.per_video[key].append(values)
        self.matrix += matrix

    def summary(self, class_names: Sequence[str], convention: str) -> dict[str, Any]:
        """``segmentation_summary`` of the pooled confusion matrix with ``miou`` under ``convention`` (named in
        ``miou_convention``), ``miou_<convention>`` for both, ``mvc`` (``VideoConsistency.summary``: every variant
        and window), ``num_videos``, ``num_frames`` and ``per_video`` (names, intersection, union, label_pixels,
        frames, and ``vc``: {variant: {C: [[window sum, windows] per video]}})."""
        if convention not in MIOU_CONVENTIONS:
            raise ValueError(f"unknown mIoU convention {convention!r}; choose one of {', '.join(MIOU_CONVENTIONS)}")
        out = segmentation_summary(self.matrix, class_names)
        by_convention = {name: miou_by_convention(self.matrix, name) for name in MIOU_CONVENTIONS}
        for name, value in by_convention.items():
            out[f"miou_{name}"] = None if np.isnan(value) else value
        out["miou"], out["miou_convention"] = out[f"miou_{convention}"], convention
        out["mvc"] = self.vc.summary()
        out["num_videos"], out["num_frames"] = len(self.per_video["names"]), sum(self.per_video["frames"])
        vc = {
            variant.name: {
                str(c): [[total, count] for _, total, count in self.vc.per_video(c, variant.name)]
                for c in self.vc.windows
            }
            for variant in self.vc.variants
        }
        out["per_video"] = {**self.per_video, "vc": vc}
        return out

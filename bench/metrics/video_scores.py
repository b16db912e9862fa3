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
    """Per-video confusion counts and mVC windows; ``summary`` gives the split's numbers (module docstring).

    DDP: each rank scores its videos; ``parts()`` (picklable) of every rank go to ``absorb`` on each, with the
    pooled confusion matrices summed into ``matrix`` (``bench.evaluation.videos`` does both).
    """

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
        self.videos: list[dict[str, Any]] = []  # per video: name, frames, intersection, union, label_pixels, vc
        self._video_matrix: torch.Tensor | None = None

    def empty_like(self) -> VideoScores:
        """A new, empty ``VideoScores`` with the same classes, windows, variants and label table."""
        vc = self.vc
        return VideoScores(self.num_classes, vc.windows, [v.name for v in vc.variants], vc.gt_lut, self.ignore_index)

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
        union = matrix.sum(0) + matrix.sum(1) - tp
        self.videos.append(
            {
                "name": video.name,
                "frames": video.frames,
                "intersection": tp.tolist(),
                "union": union.tolist(),
                "label_pixels": matrix.sum(1).tolist(),
                "vc": video,
            }
        )
        self.matrix += matrix

    def parts(self) -> list[dict[str, Any]]:
        """This instance's per-video entries (picklable), for a gather across ranks."""
        return list(self.videos)

    def absorb(self, parts: list[dict[str, Any]], order: Sequence[str]) -> None:
        """Take every rank's ``parts`` as the videos, in the split's ``order``; ``matrix`` is the caller's to sum."""
        position = {name: i for i, name in enumerate(order)}
        self.videos = sorted(parts, key=lambda part: position[part["name"]])
        self.vc.videos = [part["vc"] for part in self.videos]

    def per_video(self) -> dict[str, Any]:
        """``{"names", "frames", "intersection", "union", "label_pixels", "vc"}``: lists over videos in order;
        ``vc`` = {variant: {C: [[window sum, windows] per video]}} (a bootstrap over videos resamples them)."""
        out: dict[str, Any] = {"names": [v["name"] for v in self.videos]}
        for key in ("frames", "intersection", "union", "label_pixels"):
            out[key] = [v[key] for v in self.videos]
        out["vc"] = {
            variant.name: {
                str(c): [[total, count] for _, total, count in self.vc.per_video(c, variant.name)]
                for c in self.vc.windows
            }
            for variant in self.vc.variants
        }
        return out

    def summary(self, class_names: Sequence[str], convention: str) -> dict[str, Any]:
        """``segmentation_summary`` of the pooled confusion matrix with ``miou`` under ``convention`` (named in
        ``miou_convention``), ``miou_<convention>`` for both, ``mvc`` (``VideoConsistency.summary``: every variant
        and window), ``num_videos``, ``num_frames`` and ``per_video`` (``per_video()``)."""
        if convention not in MIOU_CONVENTIONS:
            raise ValueError(f"unknown mIoU convention {convention!r}; choose one of {', '.join(MIOU_CONVENTIONS)}")
        out = segmentation_summary(self.matrix, class_names)
        for name in MIOU_CONVENTIONS:
            value = miou_by_convention(self.matrix, name)
            out[f"miou_{name}"] = None if np.isnan(value) else value
        out["miou"], out["miou_convention"] = out[f"miou_{convention}"], convention
        out["mvc"] = self.vc.summary()
        out["num_videos"], out["num_frames"] = len(self.videos), sum(v["frames"] for v in self.videos)
        out["per_video"] = self.per_video()
        return out

"""Whole videos, every labelled frame in order: the input of whole-video evaluation and of scoring predictions.

    videos = build_videos(cfg.data, "val")        # bench.data.build: VSPW or the synthetic long videos
    for video in videos.names:                     # video ids in split order (shard them by rank for DDP)
        for frame in videos.frames(video):         # VideoFrame, in the video's frame order
            frame.image, frame.label, frame.raw    # uint8 (3, H, W); int64 (H, W) class ids / 255; stored values
    videos.gt_lut                                  # stored mask value -> class id, or None when they are the same

``raw`` is what a dataset stores before its label mapping (VSPW: 0 "others", 1..124, 255 void): the official
mVC compares those values (``bench.metrics.video_consistency``); ``label`` is what mIoU is computed on.
``frames(video, images=False)`` reads the labels only (scoring external predictions).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from bench.constants import IGNORE_INDEX


@dataclass
class VideoFrame:
    """One frame of a video: its name (the stem of its submission PNG), image, label and stored label values."""

    name: str
    image: torch.Tensor | None  # uint8 (3, H, W); None when images were not asked for
    label: torch.Tensor | None  # int64 (H, W): class ids and 255; None for an unlabelled frame
    raw: np.ndarray | None  # int64 (H, W): the stored values the label was mapped from
    flow: torch.Tensor | None = None  # float32 (2, H, W): this frame -> the previous one (synthetic: exact); zero
    # for a video's first frame (its "previous" frame is itself); None where the dataset has no flow


class VideoSet:
    """A split as whole videos. Subclasses set the class description, ``names`` and ``gt_lut`` and implement
    ``frame_names`` and ``frames``."""

    num_classes: int
    class_names: list[str]
    ignore_index = IGNORE_INDEX
    gt_lut: np.ndarray | None = None  # stored value -> class id (255 = void); None: labels are stored as is
    names: list[str]
    skipped_files: list[str]  # files left out by data.missing_files=skip

    def frame_names(self, video: str) -> list[str]:
        """The frame names of ``video`` in order."""
        raise NotImplementedError

    def frames(self, video: str, images: bool = True) -> Iterator[VideoFrame]:
        """The frames of ``video`` in order (labels only when ``images`` is False)."""
        raise NotImplementedError

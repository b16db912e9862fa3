"""The synthetic clips as whole videos for whole-video evaluation (``bench.data.videos``).

videos = build_synthetic_videos(cfg.data, "val")   # val_clips videos of data.synthetic.val_video_length frames
for frame in videos.frames(videos.names[0]):       # every frame labelled (SyntheticVideo.render_video)
    ...
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from bench.config import DataConfig
from bench.data.classes import synthetic_class_names
from bench.data.errors import DatasetError
from bench.data.synthetic import SPLIT_CODES, SyntheticVideo, synthetic_video
from bench.data.videos import VideoFrame, VideoSet


class SyntheticVideos(VideoSet):
    """The clips of a split rendered as whole videos of ``length`` frames (``SyntheticVideo.render_video``), every
    frame labelled: the synthetic input of whole-video evaluation (``data.synthetic.val_video_length``)."""

    def __init__(self, video: SyntheticVideo, split: str, count: int, length: int) -> None:
        self.skipped_files: list[str] = []  # nothing is read from disk
        if split not in SPLIT_CODES:
            raise DatasetError(f"unknown synthetic split {split!r}; choose one of {sorted(SPLIT_CODES)}")
        self.video, self.split, self.length = video, split, length
        self.num_classes = video.num_classes
        self.class_names = synthetic_class_names(video.num_classes)
        self.names = [f"synthetic-{split}-{index:06d}" for index in range(count)]

    def frame_names(self, video: str) -> list[str]:
        return [f"{k:06d}" for k in range(self.length)]

    def frames(self, video: str, images: bool = True) -> Iterator[VideoFrame]:
        rendered = self.video.render_video(self.split, self.names.index(video), self.length)
        flows = torch.cat([torch.zeros_like(rendered.step_flow[:1]), rendered.step_flow])  # frame k -> k-1
        for name, image, label, flow in zip(self.frame_names(video), rendered.frames, rendered.labels, flows):
            yield VideoFrame(name, image if images else None, label, label.numpy(), flow)


def build_synthetic_videos(data_cfg: DataConfig, split: str) -> SyntheticVideos:
    """The clips of ``split`` as videos of ``data.synthetic.val_video_length`` frames (0: ``clip_length``)."""
    cfg = data_cfg.synthetic
    count = int(cfg.train_clips) if split == "train" else int(cfg.val_clips)
    return SyntheticVideos(synthetic_video(data_cfg), split, count, int(cfg.val_video_length or cfg.clip_length))

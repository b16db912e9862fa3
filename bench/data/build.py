"""Build a clip dataset (or a split as whole videos) from a ``DataConfig`` and batch its samples.

Usage::

    from bench.data.build import build_dataset, build_videos, collate_clips
    dataset = build_dataset(cfg.data, "train", memory_length=2, train=True)
    loader = DataLoader(dataset, batch_size=8, shuffle=True, collate_fn=collate_clips)
    batch = next(iter(loader))  # frames (B, T+1, 3, H, W), label (B, H, W), flow (B, T, 2, H, W), name [B]
    videos = build_videos(cfg.data, "val")   # bench.data.videos.VideoSet: every labelled frame of each video

Every dataset exposes ``num_classes``, ``class_names`` and ``ignore_index`` (255). Asking for
``memory_length + 1`` (e.g. for temporal consistency) just returns one more past frame.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from bench.config import ConfigError, DataConfig
from bench.data.camvid import build_camvid
from bench.data.cityscapes import build_cityscapes
from bench.data.errors import DatasetError
from bench.data.memory import is_consecutive
from bench.data.synthetic import build_synthetic
from bench.data.synthetic_videos import build_synthetic_videos
from bench.data.videos import VideoSet
from bench.data.vspw import VspwVideos, build_vspw

DATASETS = ("synthetic", "cityscapes", "camvid", "vspw")


def build_dataset(data_cfg: DataConfig, split: str, memory_length: int, train: bool) -> Dataset:
    """The dataset named by ``data_cfg.dataset`` for ``split``; ``train`` turns the augmentation on."""
    if memory_length < 0:
        raise ValueError(f"memory_length must be >= 0, got {memory_length}")
    name = data_cfg.dataset
    check_memory_support(data_cfg)
    if name == "synthetic":
        return build_synthetic(data_cfg, split, memory_length, train)
    if name == "cityscapes":
        return build_cityscapes(data_cfg, split, memory_length, train)
    if name == "camvid":
        return build_camvid(data_cfg, split, memory_length, train)
    if name == "vspw":
        return build_vspw(data_cfg, split, memory_length, train)
    raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def build_videos(data_cfg: DataConfig, split: str) -> VideoSet:
    """``split`` as whole videos, every labelled frame in order (``bench.data.videos``): VSPW, or the synthetic
    clips rendered as videos of ``data.synthetic.val_video_length`` frames. Other datasets label one frame per
    snippet (Cityscapes) or one per second (CamVid), too sparse for whole-video metrics."""
    if data_cfg.dataset == "vspw":
        return VspwVideos(data_cfg.root, split, data_cfg.missing_files)
    if data_cfg.dataset == "synthetic":
        return build_synthetic_videos(data_cfg, split)
    raise DatasetError(
        f"whole-video evaluation needs densely labelled videos (vspw, synthetic); {data_cfg.dataset} labels too "
        "few frames per video"
    )


def check_memory_support(data_cfg: DataConfig) -> None:
    """Memory options a dataset cannot honour are errors rather than silently ignored."""
    if data_cfg.memory_source == "labelled" and data_cfg.dataset != "camvid":
        raise ConfigError(
            f"data.memory_source=labelled is for label-only video sets (camvid); "
            f"{data_cfg.dataset} has video frames: use data.memory_source=video"
        )
    vspw_only = {
        "data.reverse_prob": data_cfg.reverse_prob != 0.0,
        "data.train_sampling": data_cfg.train_sampling != "frame",
        "data.missing_files": data_cfg.missing_files != "error",
    }
    for key, changed in vspw_only.items():
        if changed and data_cfg.dataset != "vspw":
            raise ConfigError(
                f"{key} is implemented for data.dataset=vspw only; leave it at its default for {data_cfg.dataset}"
            )
    if data_cfg.dataset == "synthetic" and not is_consecutive(data_cfg):
        raise ConfigError(
            "synthetic clips only have consecutive memory frames; leave data.memory_offsets, "
            "data.memory_stride and data.memory_sampling at their defaults"
        )


def collate_clips(samples: list[dict]) -> dict:
    """Stack samples: frames ``(B, T+1, 3, H, W)``, label ``(B, H, W)``, flow ``(B, T, 2, H, W)`` if all
    samples have it, name a list of B strings."""
    if not samples:
        raise ValueError("collate_clips needs at least one sample")
    batch = {
        "frames": torch.stack([s["frames"] for s in samples]),
        "label": torch.stack([s["label"] for s in samples]),
        "name": [s["name"] for s in samples],
    }
    if all("flow" in s for s in samples):
        batch["flow"] = torch.stack([s["flow"] for s in samples])
    return batch

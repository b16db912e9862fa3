"""Checks that involve several fields of a config, the device, and safe names and paths.

validate(cfg)                     # every check across fields; from_dict(Config, ...) ends with it
check_device("cuda:1")            # the device exists on this machine (imports torch only for CUDA)
check_safe_name(name, "run id")   # a folder name: letters, digits, '.', '_', '+', '-'
check_inside(path, root, "run dir")
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.config.fields import ConfigError
from bench.config.schema import Config
from bench.constants import MIN_FEATURE_CELLS, OUTPUT_STRIDE

_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
# names that become file or folder names (grid names, model names in run ids): one path component, no "..", "/"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def check_safe_name(value: Any, what: str) -> str:
    """``value`` if it is a safe file name (``SAFE_NAME``), else a ``ConfigError`` naming ``what``."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise ConfigError(
            f"{what} {value!r} is not a safe name: use letters, digits, '.', '_', '+', '-' (at most "
            "128, starting with a letter or digit; no '/', no '..'); rename it"
        )
    return value


def check_inside(path: str | Path, root: str | Path, what: str) -> Path:
    """``path`` if it resolves inside ``root`` (links followed), else a ``ConfigError`` naming ``what``."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise ConfigError(
            f"{what} {path} resolves to {resolved}, outside {base}; use a plain name (no '..', no "
            "absolute path, no link out of the folder)"
        )
    return Path(path)


def validate(cfg: Config) -> None:
    """Checks that involve several fields or a whole list; ``from_dict(Config, ...)`` ends with it.

    They hold on any machine (a sweep validates on a login node for GPU nodes); ``check_device`` asks
    whether the device exists here.
    """
    if not _DEVICE.fullmatch(cfg.device):
        raise ConfigError(f"device: invalid value {cfg.device!r}; valid: auto, cpu, cuda, cuda:N (N = GPU index)")
    check_safe_name(cfg.model.name, "model.name")  # the run id (a folder name) starts with it
    sizes = {
        "data.crop_size": cfg.data.crop_size,
        "data.base_size": cfg.data.base_size,
        "data.synthetic.size": cfg.data.synthetic.size,
        "eval.crop_size": cfg.eval.crop_size,
        "eval.stride": cfg.eval.stride,
    }
    for key, size in sizes.items():
        if any(v <= 0 for v in size):
            raise ConfigError(f"{key}: sizes must be positive, got {size}; give [H, W] with H, W >= 1")
    _check_image_sizes({k: v for k, v in sizes.items() if k != "eval.stride"})
    low, high = cfg.data.scale_range
    if not 0 < low <= high:
        raise ConfigError(
            f"data.scale_range: {cfg.data.scale_range} must be two positive scales with low <= high, "
            "e.g. [0.5, 2.0] (or [1.0, 1.0] for no rescaling)"
        )
    if cfg.model.pretrained_path and not cfg.model.pretrained:  # loading it anyway would contradict the flag
        raise ConfigError(
            f"model.pretrained_path={cfg.model.pretrained_path!r} is set but model.pretrained is false; set "
            f"model.pretrained=true to start from that file, or remove model.pretrained_path to train from scratch"
        )
    if cfg.model.window_size % 2 == 0:
        raise ConfigError(
            f"model.window_size={cfg.model.window_size} must be odd (the window is centred on the "
            f"query position); use {cfg.model.window_size - 1} or {cfg.model.window_size + 1}"
        )
    if not cfg.model.pool_scales or min(cfg.model.pool_scales) < 1:
        raise ConfigError(f"model.pool_scales={cfg.model.pool_scales} must be positive bin sizes, e.g. [1, 2, 3, 6]")
    _check_tc_loss(cfg)
    _check_whole_videos(cfg)
    if cfg.data.dataset != "synthetic":
        return
    syn, memory = cfg.data.synthetic, cfg.model.memory_length
    if syn.train_clips < cfg.train.batch_size:
        raise ConfigError(
            f"data.synthetic.train_clips={syn.train_clips} is fewer than one batch "
            f"(train.batch_size={cfg.train.batch_size}); "
            "raise data.synthetic.train_clips or lower train.batch_size"
        )
    if syn.clip_length < memory + 1:
        raise ConfigError(
            f"data.synthetic.clip_length={syn.clip_length} is too short for "
            f"model.memory_length={memory}: a sample needs memory_length + 1 = {memory + 1} "
            f"frames; raise it to at least {memory + 1} ({memory + 2} to also measure temporal "
            "consistency)"
        )


def _check_whole_videos(cfg: Config) -> None:
    """Whole-video evaluation needs densely labelled videos, whole-image inference and windows of >= 2 frames."""
    ev = cfg.eval
    if not cfg.eval.whole_videos:
        return
    if cfg.data.dataset not in ("vspw", "synthetic"):
        raise ConfigError(
            f"eval.whole_videos=true needs densely labelled videos (data.dataset vspw or synthetic); "
            f"{cfg.data.dataset} labels too few frames per video: set eval.whole_videos=false"
        )
    if ev.mode != "whole":
        raise ConfigError("eval.whole_videos=true streams whole frames: set eval.mode=whole")
    if not ev.vc_windows or min(ev.vc_windows) < 2:
        raise ConfigError(f"eval.vc_windows={ev.vc_windows}: give window lengths of at least 2 frames, e.g. [8, 16]")
    if cfg.data.memory_sampling == "random" and cfg.data.sequence_range > 0:
        raise ConfigError(
            "eval.whole_videos=true streams fixed memory offsets; data.memory_sampling=random draws them per "
            "image: set data.memory_sampling=fixed (or data.sequence_range=0)"
        )


def _check_image_sizes(sizes: dict[str, list[int]]) -> None:
    """Every image side covers at least ``MIN_FEATURE_CELLS`` cells of the output-stride-8 feature map."""
    smallest = OUTPUT_STRIDE * MIN_FEATURE_CELLS
    for key, size in sizes.items():
        if size and min(size) < smallest:
            raise ConfigError(
                f"{key}: {size} is too small for the network (output stride {OUTPUT_STRIDE}: at least "
                f"{smallest} pixels a side); give [H, W] >= [{smallest}, {smallest}]"
            )


def _check_tc_loss(cfg: Config) -> None:
    """A TC-loss weight needs a usable flow source: the dataset's flow exists for synthetic data only, and RAFT
    with random weights gives no flow worth matching."""
    t = cfg.train
    if t.tc_loss_weight <= 0:
        return
    if t.tc_loss_flow == "ground_truth" and cfg.data.dataset != "synthetic":
        raise ConfigError(
            f"train.tc_loss_weight={t.tc_loss_weight} with train.tc_loss_flow=ground_truth needs the "
            f"dataset's flow, which only the synthetic dataset has; set train.tc_loss_flow to dis, "
            f"farneback or raft (with train.tc_loss_raft_weights)"
        )
    if t.tc_loss_flow == "raft" and not t.tc_loss_raft_weights:
        raise ConfigError(
            f"train.tc_loss_weight={t.tc_loss_weight} with train.tc_loss_flow=raft needs RAFT weights "
            "(random RAFT gives no usable flow): set train.tc_loss_raft_weights=/path/raft_small.pth, "
            "or use train.tc_loss_flow=dis"
        )


def check_device(device: str) -> None:
    """``device`` can be used on this machine; imports torch only for a CUDA device."""
    if not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"device={device}: CUDA is not available here; use device=cpu or device=auto")
    index, count = device.partition(":")[2], torch.cuda.device_count()
    if index and int(index) >= count:
        raise ConfigError(
            f"device={device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}; "
            "pick one of them or use device=cuda"
        )

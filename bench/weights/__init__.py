"""Checkpoints from outside and inside the suite: reading, recognising, mapping, strict loading, exporting.

    from bench.weights import load_weights, read_checkpoint, mmseg_checkpoint
    report = load_weights(model, "tmanet_r50-d8_769x769_80k_cityscapes_video.pth")   # official TMANet weights
    report.describe()     # "official TMANet (mmseg layout), ResNet-50 (deep stem), T = 2, 19 classes: ... tensors"
    container = mmseg_checkpoint(model.state_dict(), classes, align_corners=True)   # -> torch.save(container, p)

Modules, one job each: ``files`` (containers -> tensors; ``weights_only``), ``layouts`` (which layout the keys
are in: official TMANet / mmseg PSPNet, FCN / mmcv or timm ResNet / the suite's own), ``keymap`` (mmseg <-> suite
names), ``mapping`` (a checkpoint under suite names), ``structure`` (model settings read from keys and shapes),
``mismatch`` (strict fit and its one-line error with the likely cause), ``loading`` (into a model; a backbone's
initial weights), ``export`` (a suite model in the mmseg layout). Errors: ``errors.WeightsError`` and subclasses.

This package sits below the models (``bench.models.backbone`` reads ``model.pretrained_path`` through it) and
imports nothing from the suite: it knows the suite's module names, never its classes or configs.
"""

from bench.weights.errors import (
    CheckpointFileError,
    LayoutError,
    MissingCheckpointFile,
    WeightsError,
    WeightsMismatchError,
)
from bench.weights.export import mmseg_checkpoint, mmseg_model_config, mmseg_state
from bench.weights.files import Checkpoint, read_checkpoint, sha256_of
from bench.weights.layouts import CHECKPOINT_FORMATS, Layout, detect_layout
from bench.weights.loading import LoadReport, backbone_weights, built_with_weights, describe_file, load_weights

__all__ = [
    "CHECKPOINT_FORMATS",
    "Checkpoint",
    "CheckpointFileError",
    "Layout",
    "LayoutError",
    "LoadReport",
    "MissingCheckpointFile",
    "WeightsError",
    "WeightsMismatchError",
    "backbone_weights",
    "built_with_weights",
    "describe_file",
    "detect_layout",
    "load_weights",
    "mmseg_checkpoint",
    "mmseg_model_config",
    "mmseg_state",
    "read_checkpoint",
    "sha256_of",
]

"""Evaluation: whole-image or sliding-window inference over a split, mIoU / pixel accuracy / temporal consistency.

From the command line (``bench eval``)::

    bench eval configs/synthetic_tmanet.yaml checkpoint=results/runs/<id>/checkpoint.pt eval.mode=slide

From Python::

    metrics = evaluate_checkpoint(cfg)                         # also writes eval.json next to the checkpoint
    metrics = evaluate_model(model, dataset, cfg.eval, env)    # used by the trainer at the end of a run

Sliding-window inference follows mmseg's ``slide_inference``: windows of ``eval.crop_size`` every
``eval.stride`` pixels, the last window of a row/column shifted back to end at the border, every memory frame
(and the ground-truth flow) cropped with the same window, overlapping logits averaged. A window larger than
the image is padded at the bottom/right (image 0 = the mean colour after normalisation) and the padded logits
are dropped.

Temporal consistency (TC) needs the prediction at t-1 too, so the dataset is built with ``memory_length + 1``
past frames and the model runs on ``frames[:, 1:]`` (current frame t) and ``frames[:, :-1]`` (current frame t-1).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from bench.metrics import ConfusionMatrix, TemporalConsistency

log = logging.getLogger("bench.run.evaluate")

Window = tuple[int, int, int, int]  # y1, y2, x1, x2


# --------------------------------------------------------------------------------------------------
# inference


def slide_windows(size: tuple[int, int], crop: tuple[int, int], stride: tuple[int, int]) -> list[Window]:
    """Window boxes covering an image of ``size`` (H, W), mmseg's grid: the last window ends at the border."""
    (h, w), (ch, cw), (sh, sw) = size, crop, stride
    if min(ch, cw, sh, sw) < 1:
        raise ValueError(f"eval crop_size {crop} and stride {stride} must be positive")
    rows = max(h - ch + sh - 1, 0) // sh + 1
    cols = max(w - cw + sw - 1, 0) // sw + 1
    windows = []
    for i in range(rows):
        for j in range(cols):
            y2, x2 = min(i * sh + ch, h), min(j * sw + cw, w)
            windows.append((max(y2 - ch, 0), y2, max(x2 - cw, 0), x2))
    return windows


def _pad_bottom_right(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Zero-pad the last two dims of ``x`` up to ``size`` (no-op if already that large)."""
    ph, pw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    if ph <= 0 and pw <= 0:
        return x
    shape = x.shape
    padded = F.pad(x.reshape(-1, *shape[-3:]), (0, max(pw, 0), 0, max(ph, 0)))
    return padded.reshape(*shape[:-2], *padded.shape[-2:])


def predict_logits(model: nn.Module, frames: Tensor, flow: Tensor | None, mode: str = "whole",
                   crop_size: tuple[int, int] = (769, 769), stride: tuple[int, int] = (513, 513)) -> Tensor:
    """Logits (B, C, H, W) for the current frame of ``frames`` (B, T+1, 3, H, W); ``flow`` (B, T, 2, H, W) or None.

    ``mode`` "whole" runs the model once; "slide" averages windowed predictions (module docstring).
    """
    if mode == "whole":
        return model(frames, flow)["out"].float()
    if mode != "slide":
        raise ValueError(f"unknown eval mode {mode!r}; choose 'whole' or 'slide'")
    h, w = frames.shape[-2:]
    crop = (int(crop_size[0]), int(crop_size[1]))
    summed: Tensor | None = None
    count = torch.zeros(1, 1, h, w, device=frames.device)
    for y1, y2, x1, x2 in slide_windows((h, w), crop, (int(stride[0]), int(stride[1]))):
        window = _pad_bottom_right(frames[..., y1:y2, x1:x2], crop)
        window_flow = None if flow is None else _pad_bottom_right(flow[..., y1:y2, x1:x2], crop)
        logits = model(window, window_flow)["out"].float()[..., : y2 - y1, : x2 - x1]
        if summed is None:
            summed = torch.zeros(logits.shape[0], logits.shape[1], h, w, device=frames.device)
        summed[..., y1:y2, x1:x2] += logits
        count[..., y1:y2, x1:x2] += 1
    assert summed is not None
    return summed / count


# --------------------------------------------------------------------------------------------------
# temporal consistency plan


def needs_flow_input(model: nn.Module) -> bool:
    """True for models that read ground-truth flow from the batch (flow_warp with flow_source='ground_truth')."""
    model = getattr(model, "module", model)
    return getattr(model, "flow_source", None) == "ground_truth"


def tc_plan(cfg: Any, model: nn.Module) -> tuple[bool, str | None]:
    """(compute TC?, reason when not). Decided before the eval dataset is built (TC needs one more frame)."""
    ev = cfg.eval
    if not ev.temporal_consistency:
        return False, "eval.temporal_consistency is false"
    if ev.tc_flow == "ground_truth" and cfg.data.dataset != "synthetic":
        return False, (f"eval.tc_flow=ground_truth needs ground-truth flow, which only the synthetic dataset has; "
                       f"use eval.tc_flow=raft with eval.tc_raft_weights for {cfg.data.dataset}")
    if ev.tc_flow == "raft" and not ev.tc_raft_weights:
        return False, ("TC with RAFT flow needs weights: download raft_small_C_T_V2-01064c6d.pth "
                       "(torchvision Raft_Small_Weights.C_T_V2) and set eval.tc_raft_weights=/path/to/it")
    if needs_flow_input(model):
        return False, ("the model reads ground-truth flow defined on the current frame, which does not exist "
                       "for its prediction at t-1")
    memory = int(getattr(getattr(model, "module", model), "memory_length", 0))
    if cfg.data.dataset == "synthetic" and memory + 2 > cfg.data.synthetic.clip_length:
        return False, (f"TC needs memory_length + 2 = {memory + 2} frames per clip but "
                       f"data.synthetic.clip_length is {cfg.data.synthetic.clip_length}")
    return True, None


def build_eval_dataset(cfg: Any, model: nn.Module) -> tuple[Dataset, bool, str | None]:
    """The validation dataset (``cfg.data.val_split``) with one extra past frame when TC is computed.

    Returns (dataset, tc enabled, reason TC is skipped or None).
    """
    from bench.data.build import build_dataset

    memory = int(getattr(getattr(model, "module", model), "memory_length", 0))
    with_tc, reason = tc_plan(cfg, model)
    dataset = build_dataset(cfg.data, cfg.data.val_split, memory + 1 if with_tc else memory, train=False)
    return dataset, with_tc, reason


def dataset_num_classes(cfg: Any) -> int:
    """Number of classes of the configured dataset (read from its validation split; datasets load lazily)."""
    from bench.data.build import build_dataset

    return int(build_dataset(cfg.data, cfg.data.val_split, 0, train=False).num_classes)


def _raft_flow_fn(weights: str, device: torch.device) -> Callable[[Tensor, Tensor], Tensor]:
    """RAFT-small from a local weights file: (target (B,3,H,W), source) ImageNet-normalised -> flow (B,2,H,W)."""
    from bench.models.raft import RaftFlow

    if not Path(weights).expanduser().is_file():
        raise FileNotFoundError(f"eval.tc_raft_weights={weights!r} does not exist; download "
                                f"raft_small_C_T_V2-01064c6d.pth (torchvision Raft_Small_Weights.C_T_V2) and point "
                                f"eval.tc_raft_weights at it")
    raft = RaftFlow("small", weights=str(Path(weights).expanduser()), iters=12, freeze=True).to(device).eval()
    return lambda target, source: raft(target, source)


# --------------------------------------------------------------------------------------------------
# evaluation loop


def _progress(iterable: Any, total: int, desc: str, enabled: bool) -> Any:
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)
    return iterable


@torch.no_grad()
def evaluate_model(model: nn.Module, dataset: Dataset, eval_cfg: Any, env: Any = None, *,
                   with_tc: bool = False, tc_skipped: str | None = None, num_workers: int = 0) -> dict[str, Any]:
    """Evaluate ``model`` (unwrapped, any device) on ``dataset``; every DDP rank takes a share and counts are
    all-reduced.

    Returns ``{"miou", "pixel_acc", "per_class_iou", "tc", "tc_flow", "tc_skipped", "num_images", "mode"}``.
    With ``with_tc`` the dataset must hold ``memory_length + 1`` past frames.
    """
    from bench.data.build import collate_clips
    from bench.distributed import DistEnv, all_reduce_sum

    env = env or DistEnv(device=next(model.parameters()).device)
    model = getattr(model, "module", model)
    was_training = model.training
    model.eval()
    indices = list(range(len(dataset)))
    if eval_cfg.max_images:
        indices = indices[: eval_cfg.max_images]
    shard = indices[env.rank :: env.world_size]
    loader = DataLoader(Subset(dataset, shard), batch_size=eval_cfg.batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=collate_clips)
    num_classes = dataset.num_classes
    confusion = ConfusionMatrix(num_classes, getattr(dataset, "ignore_index", 255))
    consistency = TemporalConsistency()
    raft = _raft_flow_fn(eval_cfg.tc_raft_weights, env.device) if with_tc and eval_cfg.tc_flow == "raft" else None
    window = dict(mode=eval_cfg.mode, crop_size=tuple(eval_cfg.crop_size), stride=tuple(eval_cfg.stride))
    images = torch.zeros(1, dtype=torch.int64)
    try:
        for batch in _progress(loader, len(loader), "eval", env.is_main):
            frames = batch["frames"].to(env.device, non_blocking=True)
            label = batch["label"].to(env.device, non_blocking=True)
            flow = batch.get("flow")
            flow = None if flow is None else flow.to(env.device, non_blocking=True)
            if with_tc:
                current = frames[:, 1:]
                logits = predict_logits(model, current, None if flow is None else flow[:, 1:], **window)
                previous = predict_logits(model, frames[:, :-1], None, **window)
                pred, pred_prev = logits.argmax(1), previous.argmax(1)
                tc_flow = flow[:, -1] if raft is None else raft(frames[:, -1], frames[:, -2])
                consistency.update(pred, pred_prev, tc_flow)
            else:
                pred = predict_logits(model, frames, flow, **window).argmax(1)
            confusion.update(pred, label)
            images += frames.shape[0]
    finally:
        model.train(was_training)
    confusion.all_reduce(env)
    consistency.all_reduce(env)
    images = all_reduce_sum(images.to(env.device), env).cpu()
    metrics = confusion.summary(dataset.class_names)
    metrics.update({
        "tc": consistency.value() if with_tc else None,
        "tc_flow": eval_cfg.tc_flow if with_tc else None,
        "tc_skipped": None if with_tc else tc_skipped,
        "num_images": int(images),
        "mode": eval_cfg.mode,
    })
    return metrics


# --------------------------------------------------------------------------------------------------
# bench eval


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [f"{prefix.rstrip('.')}: checkpoint {a!r} vs config {b!r}"]


def build_model_for(cfg: Any) -> nn.Module:
    """The config's model (its plugins imported first) with the class count of the config's dataset."""
    from bench.models.registry import build_model, load_plugins

    load_plugins(cfg.plugins)
    return build_model(cfg.model, dataset_num_classes(cfg))


def evaluate_checkpoint(cfg: Any) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` on ``cfg.data.val_split``; write ``eval.json`` next to it; return the metrics.

    The model is built from ``cfg.model``, which must match the model section stored in the checkpoint.
    """
    from bench.run.checkpoint import CheckpointError, load_checkpoint, model_state_from
    from bench.config import ConfigError, to_dict
    from bench.distributed import init_distributed, shutdown_distributed
    from bench.run.records import write_json_atomic

    if not cfg.checkpoint:
        raise ConfigError("bench eval needs the checkpoint to evaluate: add checkpoint=PATH "
                         "(e.g. checkpoint=results/runs/<run id>/checkpoint.pt)")
    path = Path(cfg.checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train first (bench train CONFIG) or fix the path")
    model = build_model_for(cfg)
    env = init_distributed(cfg.device)
    try:
        state = load_checkpoint(path)
        stored = state.get("config", {}).get("model") if isinstance(state.get("config"), dict) else None
        if stored is not None:
            diff = _differences(stored, to_dict(cfg)["model"], "model.")
            if diff:
                raise CheckpointError(f"checkpoint {path} was trained with a different model config; pass the "
                                      f"run's config (or the same model.* overrides):\n  " + "\n  ".join(diff))
        model.load_state_dict(model_state_from(state))
        dataset, with_tc, reason = build_eval_dataset(cfg, model)
        model.to(env.device)
        if reason:
            log.warning("temporal consistency skipped: %s", reason)
        metrics = evaluate_model(model, dataset, cfg.eval, env, with_tc=with_tc, tc_skipped=reason,
                                 num_workers=cfg.data.num_workers)
        if env.is_main:
            write_json_atomic(path.parent / "eval.json", {
                "checkpoint": str(path), "iteration": state.get("iteration"), "split": cfg.data.val_split,
                "dataset": cfg.data.dataset, "eval": to_dict(cfg.eval), "metrics": metrics,
            })
        return metrics
    finally:
        shutdown_distributed(env)

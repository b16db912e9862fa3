"""Evaluation: whole-image or sliding-window inference over a split, mIoU / pixel accuracy / temporal consistency.

From the command line (``bench eval``)::

    bench eval checkpoint=results/runs/<id>/checkpoint.pt eval.mode=slide     # the config comes from the run
    bench eval results/runs/<id> --save-preds preds/                          # + prediction PNGs

From Python::

    metrics = evaluate_checkpoint(["checkpoint=results/runs/<id>", "eval.mode=slide"])   # + eval.json there
    dataset, with_tc, reason = build_eval_dataset(cfg, model)   # the validation split the model needs
    metrics = evaluate_model(model, dataset, cfg.eval, env, with_tc=with_tc)   # pure inference + metrics

Evaluation never builds a model: ``evaluate_model`` takes one (the trainer's in-memory model, or
``bench.models.build.load_run_model`` for a stored run). ``bench eval`` takes the config from the run; overrides
may change only ``eval.*``, ``data.val_split`` and ``data.root``.

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
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from bench.constants import IGNORE_INDEX
from bench.metrics import TemporalConsistency, confusion_matrix, segmentation_summary

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
# counts per image and over the split


def per_image_confusion(pred: Tensor, label: Tensor, num_classes: int, ignore_index: int) -> Tensor:
    """(B, C, C) int64 confusion matrices, one per image of ``pred`` / ``label`` (B, H, W); ignored pixels dropped."""
    return torch.stack([confusion_matrix(p, l, num_classes, ignore_index) for p, l in zip(pred, label)])


class SplitCounts:
    """Per-image intersection / union / label-pixel counts of one rank's images, and their sum (C, C)."""

    def __init__(self, num_classes: int, ignore_index: int) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.total = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.rows: list[tuple[int, str, list[int], list[int], list[int]]] = []  # index, name, I, U, label pixels

    def add(self, indices: list[int], names: list[str], pred: Tensor, label: Tensor) -> None:
        """Count a batch: dataset ``indices`` and sample ``names`` of its B images, ``pred``/``label`` (B, H, W)."""
        per = per_image_confusion(pred, label, self.num_classes, self.ignore_index).cpu()
        self.total += per.sum(0)
        tp = per.diagonal(dim1=1, dim2=2)
        labelled, predicted = per.sum(2), per.sum(1)
        union = labelled + predicted - tp
        for i, index in enumerate(indices):
            self.rows.append((index, names[i], tp[i].tolist(), union[i].tolist(), labelled[i].tolist()))

    def gather(self, env: Any) -> None:
        """Sum the totals over DDP ranks and collect every rank's rows, in dataset order, on every rank."""
        from bench.distributed import all_reduce_sum

        self.total = all_reduce_sum(self.total.to(env.device), env).cpu()
        parts = [self.rows]
        if env.distributed:
            import torch.distributed as dist

            parts = [None] * env.world_size  # type: ignore[list-item]
            dist.all_gather_object(parts, self.rows)
        self.rows = sorted((row for part in parts for row in part), key=lambda row: row[0])

    def per_image(self) -> dict[str, list]:
        """``{"names", "intersection", "union", "label_pixels"}``: lists over images in dataset order."""
        return {"names": [r[1] for r in self.rows], "intersection": [r[2] for r in self.rows],
                "union": [r[3] for r in self.rows], "label_pixels": [r[4] for r in self.rows]}


# --------------------------------------------------------------------------------------------------
# evaluation loop


def _progress(iterable: Any, total: int, desc: str, enabled: bool) -> Any:
    """``iterable`` with a bar on a terminal, else status lines (``bench.progress``)."""
    from bench.progress import Progress

    with Progress(total, desc, enabled=enabled, unit="batch", leave=False) as bar:
        for item in iterable:
            yield item
            bar.update(1)


def _predict_batch(model: nn.Module, batch: dict, device: torch.device, window: dict[str, Any], with_tc: bool,
                   raft: Callable[[Tensor, Tensor], Tensor] | None, consistency: TemporalConsistency) -> Tensor:
    """Predicted classes (B, H, W) of the batch's current frames; with TC also the t-1 prediction, counted."""
    frames = batch["frames"].to(device, non_blocking=True)
    flow = batch.get("flow")
    flow = None if flow is None else flow.to(device, non_blocking=True)
    if not with_tc:
        return predict_logits(model, frames, flow, **window).argmax(1)
    pred = predict_logits(model, frames[:, 1:], None if flow is None else flow[:, 1:], **window).argmax(1)
    pred_prev = predict_logits(model, frames[:, :-1], None, **window).argmax(1)
    tc_flow = flow[:, -1] if raft is None else raft(frames[:, -1], frames[:, -2])
    consistency.update(pred, pred_prev, tc_flow)
    return pred


@torch.no_grad()
def evaluate_model(model: nn.Module, dataset: Dataset, eval_cfg: Any, env: Any = None, *,
                   with_tc: bool = False, tc_skipped: str | None = None, num_workers: int = 0,
                   on_batch: Callable[[list[str], Tensor], None] | None = None) -> dict[str, Any]:
    """Evaluate ``model`` (unwrapped, any device) on ``dataset``; every DDP rank takes a share and counts are
    all-reduced (per-image counts gathered), so every rank returns the same metrics.

    Returns ``{"miou", "pixel_acc", "per_class_iou", "tc", "tc_flow", "tc_skipped", "num_images", "mode",
    "per_image"}``; ``per_image`` = ``{"names": [N], "intersection" / "union" / "label_pixels": [N][C] ints}`` in
    dataset order, ignored pixels excluded (their sums over images give the split's confusion-matrix counts).
    With ``with_tc`` the dataset must hold ``memory_length + 1`` past frames. ``on_batch(names, pred (B, H, W))``
    sees every batch's predicted classes (e.g. ``bench.run.predictions.PredictionWriter.write``).
    """
    from bench.data.build import collate_clips
    from bench.distributed import DistEnv

    env = env or DistEnv(device=next(model.parameters()).device)
    model = getattr(model, "module", model)
    was_training = model.training
    model.eval()
    indices = list(range(len(dataset)))[: eval_cfg.max_images or None]
    shard = indices[env.rank :: env.world_size]
    loader = DataLoader(Subset(dataset, shard), batch_size=eval_cfg.batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=collate_clips)
    counts = SplitCounts(dataset.num_classes, getattr(dataset, "ignore_index", IGNORE_INDEX))
    consistency = TemporalConsistency()
    raft = _raft_flow_fn(eval_cfg.tc_raft_weights, env.device) if with_tc and eval_cfg.tc_flow == "raft" else None
    window = dict(mode=eval_cfg.mode, crop_size=tuple(eval_cfg.crop_size), stride=tuple(eval_cfg.stride))
    done = 0
    try:
        for batch in _progress(loader, len(loader), "eval", env.is_main):
            pred = _predict_batch(model, batch, env.device, window, with_tc, raft, consistency)
            size = pred.shape[0]
            counts.add(shard[done:done + size], list(batch["name"]), pred, batch["label"].to(pred.device))
            if on_batch is not None:
                on_batch(list(batch["name"]), pred)
            done += size
    finally:
        model.train(was_training)
    counts.gather(env)
    consistency.all_reduce(env)
    metrics = segmentation_summary(counts.total, dataset.class_names)
    metrics.update({
        "tc": consistency.value() if with_tc else None,
        "tc_flow": eval_cfg.tc_flow if with_tc else None,
        "tc_skipped": None if with_tc else tc_skipped,
        "num_images": len(counts.rows),
        "mode": eval_cfg.mode,
        "per_image": counts.per_image(),
    })
    return metrics


# --------------------------------------------------------------------------------------------------
# bench eval

# what `bench eval` may change in a run's config: where and how it is evaluated, never what was trained
EVAL_OVERRIDABLE: tuple[str, ...] = ("eval.", "data.val_split:", "data.root:")


def eval_config(run_cfg: Any, overrides: Sequence[str], config_file: str | Path | None = None) -> Any:
    """The config ``bench eval`` evaluates with: the run's config (or ``config_file``) plus ``overrides``.

    Only ``eval.*``, ``data.val_split`` and ``data.root`` may differ from the run's config (and settings that do
    not change results: device, workers, paths); anything else is a ``ConfigError`` listing the differences.
    """
    from bench.config import Config, ConfigError, apply_overrides, from_dict, read_yaml_with_base, to_dict
    from bench.run.identity import differences

    base = read_yaml_with_base(config_file) if config_file else to_dict(run_cfg)
    cfg = from_dict(Config, apply_overrides(base, overrides))
    changed = [line for line in differences(to_dict(run_cfg), cfg) if not line.startswith(EVAL_OVERRIDABLE)]
    if changed:
        raise ConfigError(f"bench eval takes the config from the run and may change only eval.*, data.val_split and "
                          f"data.root; drop these overrides: {'; '.join(changed)}")
    return cfg


def evaluate_checkpoint(overrides: Sequence[str] = (), config_file: str | Path | None = None,
                        save_preds: str | Path | None = None) -> dict[str, Any]:
    """``bench eval [CONFIG] checkpoint=PATH [overrides]``: evaluate a run's checkpoint (a file, or a run folder)
    on ``data.val_split``; write ``eval.json`` next to it; return the metrics. ``save_preds``: a folder for
    prediction PNGs (``bench.run.predictions``).

    The model and its config come from the run (``bench.models.build.load_run_model``); see ``eval_config``.
    """
    from bench.config import ConfigError, load_config, to_dict
    from bench.distributed import init_distributed, shutdown_distributed
    from bench.models.build import checkpoint_path, load_run_model
    from bench.run import rundir
    from bench.run.checkpoint import CheckpointError
    from bench.run.records import write_json_atomic

    requested = load_config(config_file, overrides)  # checks the override keys and names the checkpoint
    if not requested.checkpoint:
        raise ConfigError("bench eval needs the checkpoint to evaluate: add checkpoint=PATH "
                          "(e.g. checkpoint=results/runs/<run id>/checkpoint.pt)")
    path = checkpoint_path(requested.checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train first (bench train CONFIG) or fix the path")
    model, run_cfg, meta = load_run_model(path)
    cfg = eval_config(run_cfg, overrides, config_file)
    env = init_distributed(cfg.device)
    try:
        dataset, with_tc, reason = build_eval_dataset(cfg, model)
        if reason:
            log.warning("temporal consistency skipped: %s", reason)
        writer = _prediction_writer(cfg, save_preds)
        metrics = evaluate_model(model.to(env.device), dataset, cfg.eval, env, with_tc=with_tc, tc_skipped=reason,
                                 num_workers=cfg.data.num_workers, on_batch=None if writer is None else writer.write)
        if writer is not None:
            log.info("wrote %d prediction images to %s", writer.written, writer.out_dir)
        if env.is_main:
            write_json_atomic(path.parent / rundir.EVAL, {
                "checkpoint": str(path), "iteration": meta.get("iteration"), "split": cfg.data.val_split,
                "dataset": cfg.data.dataset, "eval": to_dict(cfg.eval), "metrics": metrics,
            })
        return metrics
    finally:
        shutdown_distributed(env)


def _prediction_writer(cfg: Any, save_preds: str | Path | None) -> Any:
    """A ``PredictionWriter`` into ``save_preds`` with the dataset's palette, or None."""
    if save_preds is None:
        return None
    from bench.data.catalog import dataset_info
    from bench.run.predictions import PredictionWriter

    return PredictionWriter(save_preds, dataset_info(cfg.data))

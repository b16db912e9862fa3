"""Evaluation: whole-image or sliding-window inference over a split, mIoU / pixel accuracy / temporal consistency.

    dataset, plan, reason = build_eval_dataset(cfg, model)   # the validation split the model needs (TcPlan)
    metrics = evaluate_model(model, dataset, cfg.eval, env, with_tc=plan)   # pure inference + metrics

Evaluation never builds a model: ``evaluate_model`` takes one (the trainer's in-memory model, or
``bench.run.model.load_run_model`` for a stored run: ``bench eval``, ``bench.run.eval_run``).

Sliding-window inference follows mmseg's ``slide_inference``: windows of ``eval.crop_size`` every
``eval.stride`` pixels, the last window of a row/column shifted back to end at the border, every memory frame
(and the ground-truth flow) cropped with the same window, overlapping logits averaged. A window larger than
the image is padded at the bottom/right (image 0 = the mean colour after normalisation) and the padded logits
are dropped. Slide is for large images: the official TMANet configs slide 769x769 windows every 513 pixels
over Cityscapes' 1024x2048 frames and 640/512 over CamVid's 720x960. A window that covers the whole image in
both dimensions (e.g. the default 769x769 on 64x64 synthetic frames) would be one padded window, many times
the pixels of the image: that is run as whole-image inference instead, with a warning.

Temporal consistency (``eval.tc_metric``; ``bench.metrics`` defines both measures) needs predictions at earlier
frames too: with N pairs (``TcPlan.pairs``) the dataset is built with ``memory_length + N`` past frames and the
model runs on ``frames[:, N-j : N-j+T+1]`` for the prediction at t-j, j = 0..N (j = 0 is the evaluated frame).

* ``pixel_agreement`` (metrics key ``pixel_agreement``): the pair (t-1 -> t) of each clip, pooled pixels;
* ``etc`` (metrics key ``etc_tc``, ETC's TC): the N pairs (t-j-1 -> t-j), mean of per-pair mIoU; N =
  ``eval.tc_pairs``, capped by the frames a clip has (synthetic: ``clip_length - memory_length - 1``; explicit
  ``data.memory_offsets``: 1). It needs consecutive frames (``memory_stride`` 1, video memory).

Flow for pair j: ground truth (synthetic ``step_flow``: frame t-j into t-j-1) or ``eval.tc_flow`` = raft / dis /
farneback (``bench.flow.sources``) on (frame t-j, frame t-j-1).
On synthetic clips only the evaluated frame t is degraded, so the pairs j >= 1 compare predictions on clean frames.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from bench.config import DataConfig, EvalConfig
from bench.constants import IGNORE_INDEX
from bench.data.build import build_dataset, collate_clips
from bench.data.memory import is_consecutive, temporal_consistency_problem
from bench.distributed import DistEnv, all_gather_list, all_reduce_sum, loader_options
from bench.flow.estimator import FlowWeightsMissing
from bench.flow.sources import make_flow_estimator
from bench.metrics import (
    EtcConsistency,
    PixelAgreement,
    confusion_matrix,
    segmentation_summary,
)
from bench.progress import Progress

log = logging.getLogger("bench.evaluation.evaluate")

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


_WARNED: set[tuple[tuple[int, int], tuple[int, int]]] = set()


def _warn_whole_image(size: tuple[int, int], crop: tuple[int, int]) -> None:
    """Once per (image size, window): slide inference with a window that covers the image is whole-image."""
    if crop == size or (size, crop) in _WARNED:
        return
    _WARNED.add((size, crop))
    log.warning(
        f"eval.mode=slide: the window eval.crop_size={list(crop)} covers the whole {size[0]}x{size[1]} "
        f"image, so it is evaluated as eval.mode=whole (padding to the window would cost "
        f"{crop[0] * crop[1] / (size[0] * size[1]):.0f}x the pixels); slide is for large images "
        f"(Cityscapes, CamVid): give eval.mode=whole, or an eval.crop_size smaller than the image"
    )


def predict_logits(
    model: nn.Module,
    frames: Tensor,
    flow: Tensor | None,
    mode: str = "whole",
    crop_size: tuple[int, int] = (769, 769),
    stride: tuple[int, int] = (513, 513),
) -> Tensor:
    """Logits (B, C, H, W) for the current frame of ``frames`` (B, T+1, 3, H, W); ``flow`` (B, T, 2, H, W) or None.

    ``mode`` "whole" runs the model once; "slide" averages windowed predictions (module docstring).
    """
    if mode == "whole":
        return model(frames, flow)["out"].float()
    if mode != "slide":
        raise ValueError(f"unknown eval mode {mode!r}; choose 'whole' or 'slide'")
    h, w = frames.shape[-2:]
    crop = (int(crop_size[0]), int(crop_size[1]))
    if crop[0] >= h and crop[1] >= w:  # one window holding the whole image: whole-image inference, unpadded
        _warn_whole_image((h, w), crop)
        return model(frames, flow)["out"].float()
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


@dataclass(frozen=True)
class TcPlan:
    """Which temporal measures evaluation computes and on how many consecutive pairs; falsy when none."""

    pixel_agreement: bool = False
    etc: bool = False
    pairs: int = 0  # extra past frames in the eval dataset = prediction pairs per clip
    skipped: str | None = None  # why a requested measure is not computed

    def __bool__(self) -> bool:
        return self.pixel_agreement or self.etc


def _tc_problem(data: DataConfig, ev: EvalConfig, model: nn.Module) -> str | None:
    """Why no temporal measure can be computed for these settings and model, or None."""
    if not ev.temporal_consistency:
        return "eval.temporal_consistency is false"
    if ev.tc_flow == "ground_truth" and data.dataset != "synthetic":
        return (
            f"eval.tc_flow=ground_truth needs ground-truth flow, which only the synthetic dataset has; "
            f"use eval.tc_flow=dis (OpenCV, no weights) or raft with eval.tc_raft_weights for {data.dataset}"
        )
    if ev.tc_flow == "raft" and not ev.tc_raft_weights:
        return (
            "TC with RAFT flow needs weights: download raft_small_C_T_V2-01064c6d.pth "
            "(torchvision Raft_Small_Weights.C_T_V2) and set eval.tc_raft_weights=/path/to/it"
        )
    if needs_flow_input(model):
        return "the model reads ground-truth flow defined on the current frame, which does not exist for earlier frames"
    if data.memory_source == "labelled":
        return (
            "data.memory_source=labelled: the frame before a labelled one is the previous labelled frame, "
            "not the previous video frame, so there are no consecutive predictions to compare"
        )
    return temporal_consistency_problem(data)


def _etc_pairs(data: DataConfig, ev: EvalConfig, memory: int) -> tuple[int, str | None]:
    """(consecutive pairs per clip for ETC's TC, why none when 0)."""
    if not is_consecutive(data):
        return (
            0,
            "etc: the memory frames are not consecutive (data.memory_stride / memory_offsets), "
            "so t-1 is not the previous frame",
        )
    pairs = int(ev.tc_pairs)
    if data.memory_offsets:
        pairs = 1  # fixed_offsets extends explicit offsets by one step only
    if data.dataset == "synthetic":
        pairs = min(pairs, int(data.synthetic.clip_length) - memory - 1)
    if pairs < 1:
        return 0, (
            f"etc: needs memory_length + 2 = {memory + 2} frames per clip but data.synthetic.clip_length is "
            f"{data.synthetic.clip_length}"
        )
    return pairs, None


def tc_plan(data: DataConfig, ev: EvalConfig, model: nn.Module) -> TcPlan:
    """What temporal consistency ``eval.tc_metric`` asks for and the data allows (decided before the eval dataset is
    built: it needs the extra past frames). ``skipped`` says why a requested measure is left out."""
    problem = _tc_problem(data, ev, model)
    if problem:
        return TcPlan(skipped=problem)
    memory = int(getattr(getattr(model, "module", model), "memory_length", 0))
    wants_pa, wants_etc = (
        ev.tc_metric in ("both", "pixel_agreement"),
        ev.tc_metric in ("both", "etc"),
    )
    pairs, etc_problem = _etc_pairs(data, ev, memory) if wants_etc else (0, None)
    if wants_pa and data.dataset == "synthetic" and memory + 2 > data.synthetic.clip_length:
        return TcPlan(
            skipped=(
                f"TC needs memory_length + 2 = {memory + 2} frames per clip but "
                f"data.synthetic.clip_length is {data.synthetic.clip_length}"
            )
        )
    if not pairs and not wants_pa:
        return TcPlan(skipped=etc_problem)
    return TcPlan(
        pixel_agreement=wants_pa,
        etc=pairs > 0,
        pairs=max(pairs, 1),
        skipped=etc_problem,
    )


def build_eval_dataset(data: DataConfig, ev: EvalConfig, model: nn.Module) -> tuple[Dataset, TcPlan, str | None]:
    """The validation dataset (``data.val_split``) with ``plan.pairs`` extra past frames for TC.

    Returns (dataset, TC plan (falsy when no TC), reason a requested TC measure is skipped or None).
    """
    memory = int(getattr(getattr(model, "module", model), "memory_length", 0))
    plan = tc_plan(data, ev, model)
    dataset = build_dataset(data, data.val_split, memory + plan.pairs, train=False)
    if plan.etc and plan.pairs > 1 and hasattr(dataset, "step_flow"):
        dataset.step_flow = True  # ground-truth flow between consecutive earlier frames (synthetic)
    return dataset, plan, plan.skipped


def _tc_flow_fn(source: str, weights: str, device: torch.device) -> Callable[[Tensor, Tensor], Tensor] | None:
    """The TC flow of ``eval.tc_flow``: None for ground truth (read from the batch), OpenCV DIS / Farneback, or
    RAFT-small from a local weights file: (target (B,3,H,W), source) ImageNet-normalised -> flow (B,2,H,W)."""
    if source == "ground_truth":
        return None
    if source == "raft" and not Path(weights).expanduser().is_file():
        raise FlowWeightsMissing(
            f"eval.tc_raft_weights={weights!r} does not exist; download "
            f"raft_small_C_T_V2-01064c6d.pth (torchvision Raft_Small_Weights.C_T_V2) and point "
            f"eval.tc_raft_weights at it, or use eval.tc_flow=dis (no weights)"
        )
    net = make_flow_estimator(
        source,
        raft="small",
        weights=str(Path(weights).expanduser()),
        iters=12,
        freeze=True,
    )
    net = net.to(device).eval()
    return lambda target, src: net(target, src)


# --------------------------------------------------------------------------------------------------
# counts per image and over the split


def per_image_confusion(pred: Tensor, label: Tensor, num_classes: int, ignore_index: int) -> Tensor:
    """(B, C, C) int64 confusion matrices, one per image of ``pred`` / ``label`` (B, H, W); ignored pixels dropped."""
    return torch.stack([confusion_matrix(p, t, num_classes, ignore_index) for p, t in zip(pred, label)])


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
            self.rows.append(
                (
                    index,
                    names[i],
                    tp[i].tolist(),
                    union[i].tolist(),
                    labelled[i].tolist(),
                )
            )

    def gather(self, env: DistEnv) -> None:
        """Sum the totals over DDP ranks and collect every rank's rows, in dataset order, on every rank."""
        self.total = all_reduce_sum(self.total.to(env.device), env).cpu()
        self.rows = sorted(all_gather_list(self.rows, env), key=lambda row: row[0])

    def per_image(self) -> dict[str, list]:
        """``{"names", "intersection", "union", "label_pixels"}``: lists over images in dataset order."""
        return {
            "names": [r[1] for r in self.rows],
            "intersection": [r[2] for r in self.rows],
            "union": [r[3] for r in self.rows],
            "label_pixels": [r[4] for r in self.rows],
        }


# --------------------------------------------------------------------------------------------------
# evaluation loop


def _progress(iterable: Any, total: int, desc: str, enabled: bool) -> Any:
    """``iterable`` with a bar on a terminal, else status lines (``bench.progress``)."""
    with Progress(total, desc, enabled=enabled, unit="batch", leave=False) as bar:
        for item in iterable:
            yield item
            bar.update(1)


class _Temporal:
    """The temporal measures of one evaluation: predictions at t-j for j = 0..pairs, counted pair by pair."""

    def __init__(
        self,
        plan: TcPlan,
        num_classes: int,
        estimate: Callable[[Tensor, Tensor], Tensor] | None,
    ) -> None:
        self.plan, self.estimate = plan, estimate
        self.agreement, self.etc = PixelAgreement(), EtcConsistency(num_classes)

    def pair_flow(self, batch: dict, frames: Tensor, j: int) -> Tensor:
        """Flow (B, 2, H, W) of frame t-j into t-j-1; ``frames`` (B, F, 3, H, W), frame t is the last."""
        last = frames.shape[1] - 1
        if self.estimate is not None:
            return self.estimate(frames[:, last - j], frames[:, last - j - 1])
        if j == 0:
            return batch["flow"][:, -1].to(frames.device)
        return batch["step_flow"][:, -1 - j].to(frames.device)

    def count(
        self,
        model: nn.Module,
        batch: dict,
        frames: Tensor,
        pred: Tensor,
        window: dict[str, Any],
        memory: int,
    ) -> None:
        """Predict the earlier frames of ``batch`` and count every pair; ``pred`` (B, H, W) = prediction at t."""
        pairs = frames.shape[1] - memory - 1
        if pairs < 1:
            raise ValueError(f"temporal consistency needs memory_length + 2 frames per sample, got {frames.shape[1]}")
        later = pred
        for j in range(pairs if self.plan.etc else 1):
            start = pairs - j - 1
            earlier = predict_logits(model, frames[:, start : start + memory + 1], None, **window).argmax(1)
            flow = self.pair_flow(batch, frames, j)
            if j == 0 and self.plan.pixel_agreement:
                self.agreement.update(later, earlier, flow)
            if self.plan.etc:
                self.etc.update(later, earlier, flow)
            later = earlier

    def all_reduce(self, env: DistEnv) -> None:
        """Sum the pixel counts and collect the pair values of every rank (pair values keep the ETC mean exact)."""
        self.agreement.counts = all_reduce_sum(self.agreement.counts.to(env.device), env).cpu()
        self.etc.values = all_gather_list(self.etc.values, env)

    def metrics(self, pairs: int, eval_cfg: EvalConfig) -> dict[str, Any]:
        on = bool(self.plan)
        return {
            "pixel_agreement": self.agreement.value() if self.plan.pixel_agreement else None,
            "etc_tc": self.etc.value() if self.plan.etc else None,
            "etc_pairs": pairs if self.plan.etc else None,
            "tc_flow": eval_cfg.tc_flow if on else None,
        }


def _collate_with_step_flow(samples: list[dict]) -> dict:
    """``collate_clips`` plus ``step_flow`` (B, T, 2, H, W) when every sample has it."""
    batch = collate_clips(samples)
    if all("step_flow" in s for s in samples):
        batch["step_flow"] = torch.stack([s["step_flow"] for s in samples])
    return batch


def current_clip(batch: dict, model: nn.Module) -> tuple[Tensor, Tensor | None]:
    """The evaluated frame's own clip of a batch that may hold extra past frames for TC: frames
    (B, T+1, 3, H, W) and flow (B, T, 2, H, W) or None (T = the model's ``memory_length``)."""
    memory = int(getattr(getattr(model, "module", model), "memory_length", 0))
    frames, flow = batch["frames"], batch.get("flow")
    return frames[:, frames.shape[1] - memory - 1 :], None if flow is None else flow[:, flow.shape[1] - memory :]


def _predict_batch(
    model: nn.Module,
    batch: dict,
    device: torch.device,
    window: dict[str, Any],
    memory: int,
    temporal: _Temporal | None,
) -> Tensor:
    """Predicted classes (B, H, W) of the batch's current frames; with ``temporal`` the earlier ones, counted."""
    frames = batch["frames"].to(device, non_blocking=True)
    current, flow = current_clip(batch, model)
    flow = None if flow is None else flow.to(device, non_blocking=True)
    pred = predict_logits(model, current.to(device, non_blocking=True), flow, **window).argmax(1)
    if temporal is not None:
        temporal.count(model, batch, frames, pred, window, memory)
    return pred


def _resolve_plan(with_tc: bool | TcPlan, eval_cfg: EvalConfig, dataset: Dataset, memory: int) -> TcPlan:
    """``with_tc`` as a plan: True = the measures of ``eval.tc_metric`` on the dataset's extra frames."""
    if isinstance(with_tc, TcPlan):
        return with_tc
    if not with_tc:
        return TcPlan()
    metric, frames = eval_cfg.tc_metric, dataset[0]["frames"].shape[0]
    return TcPlan(
        pixel_agreement=metric in ("both", "pixel_agreement"),
        etc=metric in ("both", "etc"),
        pairs=frames - memory - 1,
    )


def _shard_loader(dataset: Dataset, shard: list[int], batch_size: int, num_workers: int, env: DistEnv) -> DataLoader:
    """In-order batches of this rank's ``shard`` of ``dataset``; one pass, so no persistent workers."""
    return DataLoader(
        Subset(dataset, shard),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=_collate_with_step_flow,
        **loader_options(num_workers, env, persistent=False),
    )


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    dataset: Dataset,
    eval_cfg: EvalConfig,
    env: DistEnv | None = None,
    *,
    with_tc: bool | TcPlan = False,
    tc_skipped: str | None = None,
    num_workers: int = 0,
    on_batch: Callable[[list[str], Tensor], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (unwrapped, any device) on ``dataset``; every DDP rank takes a share and counts are
    all-reduced (per-image counts gathered), so every rank returns the same metrics.

    Returns ``{"miou", "pixel_acc", "per_class_iou", "pixel_agreement", "etc_tc", "etc_pairs", "tc_flow",
    "tc_skipped", "num_images", "mode", "per_image"}``; ``per_image`` = ``{"names": [N], "intersection" / "union" /
    "label_pixels": [N][C] ints}`` in dataset order, ignored pixels excluded (their sums over images give the
    split's confusion-matrix counts). ``with_tc``: a ``TcPlan`` (``build_eval_dataset``), or True for the measures
    of ``eval.tc_metric`` on all the dataset's extra past frames (it must hold ``memory_length + N`` of them,
    consecutive). ``num_workers`` -1 = auto (``bench.distributed.resolve_num_workers``). ``on_batch(names,
    pred (B, H, W))`` sees every batch's predicted classes (e.g.
    ``bench.evaluation.predictions.PredictionWriter.write``).
    """
    env = env or DistEnv(device=next(model.parameters()).device)
    model = getattr(model, "module", model)
    memory = int(getattr(model, "memory_length", 0))
    was_training = model.training
    model.eval()
    indices = list(range(len(dataset)))[: eval_cfg.max_images or None]
    shard = indices[env.rank :: env.world_size]
    loader = _shard_loader(dataset, shard, eval_cfg.batch_size, num_workers, env)
    counts = SplitCounts(dataset.num_classes, getattr(dataset, "ignore_index", IGNORE_INDEX))
    plan = _resolve_plan(with_tc, eval_cfg, dataset, memory)
    estimate = _tc_flow_fn(eval_cfg.tc_flow, eval_cfg.tc_raft_weights, env.device) if plan else None
    temporal = _Temporal(plan, dataset.num_classes, estimate) if plan else None
    window = dict(
        mode=eval_cfg.mode,
        crop_size=tuple(eval_cfg.crop_size),
        stride=tuple(eval_cfg.stride),
    )
    done = 0
    try:
        for batch in _progress(loader, len(loader), "eval", env.is_main):
            pred = _predict_batch(model, batch, env.device, window, memory, temporal)
            size = pred.shape[0]
            counts.add(
                shard[done : done + size],
                list(batch["name"]),
                pred,
                batch["label"].to(pred.device),
            )
            if on_batch is not None:
                on_batch(list(batch["name"]), pred)
            done += size
    finally:
        model.train(was_training)
    return _gathered_metrics(counts, temporal, plan, dataset.class_names, eval_cfg, env, tc_skipped)


def _gathered_metrics(
    counts: SplitCounts,
    temporal: _Temporal | None,
    plan: TcPlan,
    class_names: list[str],
    eval_cfg: EvalConfig,
    env: DistEnv,
    tc_skipped: str | None,
) -> dict[str, Any]:
    """Every rank's counts reduced into the metrics ``evaluate_model`` returns."""
    counts.gather(env)
    metrics = segmentation_summary(counts.total, class_names)
    if temporal is not None:
        temporal.all_reduce(env)
    metrics.update((temporal or _Temporal(plan, 1, None)).metrics(plan.pairs, eval_cfg))
    metrics.update(
        {
            "tc_skipped": plan.skipped or (None if plan else tc_skipped),
            "num_images": len(counts.rows),
            "mode": eval_cfg.mode,
            "per_image": counts.per_image(),
        }
    )
    return metrics

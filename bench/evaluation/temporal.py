"""Temporal consistency of an evaluation: which measures a config and model allow (``TcPlan``), the flow between
consecutive frames, and the counting of prediction pairs.

    plan = tc_plan(cfg.data, cfg.eval, model)     # falsy when none; plan.skipped says why a measure is left out

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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from bench.config import DataConfig, EvalConfig
from bench.data.memory import is_consecutive, temporal_consistency_problem
from bench.distributed import DistEnv, all_gather_list, all_reduce_sum
from bench.evaluation.inference import needs_flow_input
from bench.evaluation.tta import Protocol, predict_scores
from bench.flow.estimator import FlowWeightsMissing
from bench.flow.sources import make_flow_estimator
from bench.metrics import EtcConsistency, PixelAgreement


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


def tc_flow_fn(source: str, weights: str, device: torch.device) -> Callable[[Tensor, Tensor], Tensor] | None:
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


class TemporalCounts:
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
        protocol: Protocol,
        memory: int,
    ) -> None:
        """Predict the earlier frames of ``batch`` and count every pair; ``pred`` (B, H, W) = prediction at t."""
        pairs = frames.shape[1] - memory - 1
        if pairs < 1:
            raise ValueError(f"temporal consistency needs memory_length + 2 frames per sample, got {frames.shape[1]}")
        later = pred
        for j in range(pairs if self.plan.etc else 1):
            start = pairs - j - 1
            earlier = predict_scores(model, frames[:, start : start + memory + 1], None, protocol).argmax(1)
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


def resolve_plan(with_tc: bool | TcPlan, eval_cfg: EvalConfig, dataset: Dataset, memory: int) -> TcPlan:
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

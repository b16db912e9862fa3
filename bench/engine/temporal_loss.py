"""ETC's temporal-consistency loss (Liu et al., "Efficient Semantic Video Segmentation with Per-frame Inference",
ECCV 2020) as a training option for any per-frame model (``model.memory_length == 0``).

    tc = build_temporal_loss(cfg.train, cfg.data, model)        # None when train.tc_loss_weight == 0
    out, extra = tc.forward_pair(network, frames, flow)        # frames (B, 2, 3, H, W): t-1, t
    total = total + tc.weight * extra                          # total: the usual loss of out on frame t

ETC trains a per-frame network with an extra term that asks the predictions of two consecutive frames to agree
once one is warped onto the other by optical flow, so the network is temporally consistent at inference without
any cost there. Here, for a clip (t-1, t):

    L_tc = mean over valid pixels p of  sum_c | P_t(p, c) - P_{t-1}(p + F_{t->t-1}(p), c) |

with P = softmax of the model's logits (both frames go through the same network with gradients), F the backward
flow from frame t into frame t-1 (``bench.flow.warp.backward_warp``), and valid = pixels whose flow lands inside
frame t-1 (``warp_valid_mask``; occlusions are not detected). The distance is L1 between class distributions
(0..2 per pixel); ETC's paper writes its temporal loss as a distance between the warped and the current output
on non-occluded pixels, the exact norm is a choice here.

Flow (``train.tc_loss_flow``): ``ground_truth`` = the batch's ``flow[:, -1]`` (synthetic data only); ``dis`` /
``farneback`` (OpenCV) or ``raft`` (with ``train.tc_loss_raft_weights``) estimated on the two frames without
gradients (``bench.flow.sources.make_flow_estimator``). The trainer knows nothing about specific models: the
term needs only ``memory_length`` and ``forward(frames (B, T+1, 3, H, W))["out"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.config import ConfigError, DataConfig, TrainConfig
from bench.flow.sources import FlowEstimator, make_flow_estimator
from bench.flow.warp import backward_warp, warp_valid_mask


def flow_warped_l1(prob_prev: Tensor, prob_cur: Tensor, flow: Tensor) -> Tensor:
    """Mean over valid pixels of the L1 distance between P_t and the flow-warped P_{t-1}.

    prob_prev, prob_cur (B, C, H, W) class probabilities; flow (B, 2, H, W), frame t -> frame t-1 (pixels).
    Returns a scalar; 0 when no pixel is valid.
    """
    warped = backward_warp(prob_prev, flow)
    valid = warp_valid_mask(flow).to(prob_cur.dtype)  # (B, 1, H, W)
    distance = (prob_cur - warped).abs().sum(dim=1, keepdim=True)  # (B, 1, H, W)
    return (distance * valid).sum() / valid.sum().clamp(min=1.0)


@dataclass
class TemporalLoss:
    """The weight, the flow source and its estimator (None = the batch's ground-truth flow)."""

    weight: float
    source: str
    estimator: FlowEstimator | None

    def flow(self, frames: Tensor, flow: Tensor | None) -> Tensor:
        """Flow t -> t-1 (B, 2, H, W) for a clip ``frames`` (B, 2, 3, H, W)."""
        if self.estimator is None:
            if flow is None:
                raise ValueError(
                    "train.tc_loss_flow=ground_truth but the batch has no flow (only the synthetic "
                    "dataset has it); set train.tc_loss_flow to dis, farneback or raft"
                )
            return flow[:, -1]
        with torch.no_grad():
            return self.estimator(frames[:, -1], frames[:, -2])

    def forward_pair(self, network: nn.Module, frames: Tensor, flow: Tensor | None) -> tuple[dict[str, Tensor], Tensor]:
        """The model's output on frame t (``{"out", "aux"?}``, (B, C, H, W) each) and the unweighted TC term.

        Frames t and t-1 go through the network as ONE batch of 2B single-frame clips (one forward per backward,
        as DDP needs; BatchNorm sees both frames), frame t first; a per-frame model takes no flow.
        """
        b = frames.shape[0]
        out = network(torch.cat([frames[:, -1:], frames[:, -2:-1]], dim=0))
        current = {k: v[:b] for k, v in out.items()}
        term = flow_warped_l1(
            F.softmax(out["out"][b:].float(), dim=1),
            F.softmax(current["out"].float(), dim=1),
            self.flow(frames, flow).float(),
        )
        return current, term


def build_temporal_loss(train: TrainConfig, data: DataConfig, model: nn.Module) -> TemporalLoss | None:
    """The TC loss a config asks for, or None (weight 0). A model with memory is an error: ETC's loss is for
    per-frame models (a memory model would need its own past for frame t-1)."""
    if train.tc_loss_weight <= 0:
        return None
    if int(model.memory_length) != 0:
        raise ConfigError(
            f"train.tc_loss_weight={train.tc_loss_weight} applies to per-frame models "
            f"(memory_length 0, e.g. per_frame, fcn, pspnet); {type(model).__name__} has memory_length="
            f"{model.memory_length}: set train.tc_loss_weight=0"
        )
    estimator = make_flow_estimator(train.tc_loss_flow, weights=train.tc_loss_raft_weights)
    return TemporalLoss(train.tc_loss_weight, train.tc_loss_flow, estimator)


def train_memory_length(model: nn.Module, tc: TemporalLoss | None) -> int:
    """Past frames a training clip needs: the model's, or 1 (the pair t-1, t) for the TC loss."""
    return 1 if tc is not None else int(model.memory_length)

"""Optical-flow warping baseline (NetWarp-style feature propagation, docs/baselines.md §1 and §2).

Same backbone, aux head and decoder as ``per_frame`` and TMANet; only the use of the past differs:

1. flow from the current frame t to each memory frame i (defined on frame t, pointing into frame i), either
   estimated (``bench.flow.sources``: ``flow_source`` "raft" = torchvision RAFT, ``raft(img_t, img_i)[-1]``;
   "dis" / "farneback" = OpenCV, no weights) or from the dataset (``flow_source="ground_truth"``, the ``flow``
   argument (B, T, 2, H, W));
2. the decoder's value features (the query value encoder output, (B, Cv, h, w), shared encoder for all frames)
   of every memory frame are warped to frame t with the flow resized to the feature grid. Choice: NetWarp
   warps its last feature map before the classifier; warping the Cv-channel value features (256) instead of
   layer4 (2048) keeps warping and ``concat`` fusion cheap;
3. fusion: ``netwarp`` = per-channel learned weights ``w_0 * v_t + sum_i w_i * warp(v_i)`` initialised
   ``w_0 = 0.5`` and ``w_i = 0.5 / T`` (NetWarp's 0.5/0.5 for T=1, weights summing to 1 for any T), or
   ``concat`` = ``cat([v_t, warp(v_0), ..., warp(v_{T-1})])`` -> 1x1 ConvBNReLU((T+1)*Cv -> Cv);
4. 3x3 ConvBNReLU(Cv -> channels) -> Dropout2d -> 1x1 classifier, as ``per_frame``.

RAFT: ``flow_raft`` "small" | "large"; ``flow_weights`` "" (random init), "default" (torchvision's DEFAULT
enum, read from ``$TORCH_HOME/hub/checkpoints`` or downloaded when online) or a local state-dict path;
``flow_freeze=True`` keeps RAFT in eval mode under ``no_grad`` (its parameters are not trainable).
Input images are ImageNet-normalised; they are mapped back to [0, 1], clamped, then to [-1, 1] (torchvision's
``OpticalFlow`` preset), padded (replicate) to multiples of 8, and the flow is cropped back. RAFT's 4-level
correlation pyramid needs at least 128 px per side: smaller images (tests, tiny synthetic clips) are upsampled
by an integer factor first and the flow resized back with rescaled displacements.

Usage::

    from baselines.flow_warp import flow_warp
    model = flow_warp(num_classes=19, memory_length=1, flow_weights="/path/raft_small_C_T_V2-01064c6d.pth")
    out = model(frames)["out"]                          # frames (B, 2, 3, H, W) -> (B, 19, H, W)
    gt = flow_warp(num_classes=19, flow_source="ground_truth")
    out = gt(frames, flow)["out"]                       # flow (B, 1, 2, H, W), current -> memory slot
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from bench.flow.sources import check_flow_source, make_flow_estimator
from bench.flow.warp import backward_warp, resize_flow
from bench.models.head import HeadParams
from bench.models.layers import ConvBNReLU
from bench.models.registry import register_model
from bench.models.segmenter import Features, SegmenterBase, check_memory_length

FUSIONS: tuple[str, ...] = ("netwarp", "concat")


class NetWarpFusion(nn.Module):
    """``w_0 * v_t + sum_i w_i * warp(v_i)`` with per-channel weights: (B, T+1, C, h, w) -> (B, C, h, w)."""

    def __init__(self, channels: int, memory_length: int) -> None:
        super().__init__()
        init = torch.full((memory_length + 1, channels), 0.5 / memory_length)
        init[0] = 0.5  # NetWarp initialises w0 = w1 = 0.5; with T > 1 the memory share is split equally
        self.weights = nn.Parameter(init)

    def forward(self, stacked: Tensor) -> Tensor:
        return (stacked * self.weights[None, :, :, None, None]).sum(dim=1)


class ConcatFusion(nn.Module):
    """``cat`` over frames -> 1x1 ConvBNReLU: (B, T+1, C, h, w) -> (B, C, h, w)."""

    def __init__(self, channels: int, memory_length: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU((memory_length + 1) * channels, channels, 1)

    def forward(self, stacked: Tensor) -> Tensor:
        return self.conv(stacked.flatten(1, 2))


class FlowWarpSegmenter(SegmenterBase):
    """Per-frame segmenter plus flow-warped value features of ``memory_length`` past frames."""

    def __init__(
        self,
        num_classes: int,
        head: HeadParams,
        memory_length: int = 2,
        flow_source: str = "raft",
        flow_raft: str = "small",
        flow_weights: str = "",
        flow_iters: int = 12,
        flow_freeze: bool = True,
        flow_fusion: str = "netwarp",
    ) -> None:
        check_memory_length("flow_warp", memory_length)
        check_flow_source(flow_source)
        if flow_fusion not in FUSIONS:
            raise ValueError(f"unknown flow fusion {flow_fusion!r}; choose one of {', '.join(FUSIONS)}")
        super().__init__(num_classes, memory_length, head.value_channels, head)
        self.flow_source = flow_source
        self.flow_net = make_flow_estimator(flow_source, flow_raft, flow_weights, flow_iters, flow_freeze)
        fusion = NetWarpFusion if flow_fusion == "netwarp" else ConcatFusion
        self.fusion = fusion(head.value_channels, memory_length)

    def extract(self, image: Tensor) -> Features:
        """Backbone features plus the image itself (flow estimation needs it):
        {"layer3", "layer4", "image" (B,3,H,W)}."""
        return {**super().extract(image), "image": image}

    def memory_flow(self, current: Features, memory: list[Features], flow: Tensor | None) -> Tensor:
        """Flow from the current frame to every memory slot: (B, T, 2, H, W) in image pixels."""
        t = len(memory)
        if self.flow_net is None:
            if flow is None:
                raise ValueError(
                    "flow_warp with flow_source='ground_truth' needs the flow argument "
                    "(B, T, 2, H, W) from the dataset (only the synthetic dataset has it); "
                    "use flow_source='dis' (OpenCV, no weights) or 'raft' otherwise"
                )
            if flow.dim() != 5 or flow.shape[1] != t or flow.shape[2] != 2:
                raise ValueError(f"flow must be (B, {t}, 2, H, W), got {tuple(flow.shape)}")
            return flow
        image = current["image"]
        b = image.shape[0]
        targets = image.repeat(t, 1, 1, 1)  # (T*B, 3, H, W), slot-major
        sources = torch.cat([m["image"] for m in memory], dim=0)  # (T*B, 3, H, W)
        return self.flow_net(targets, sources).view(t, b, 2, *image.shape[-2:]).transpose(0, 1)

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        """Current value (B, Cv, h, w) fused with the warped memory values -> (B, Cv, h, w)."""
        flows = self.memory_flow(current, memory, flow)
        size = value.shape[-2:]
        warped = [
            backward_warp(self.query_value(m["layer4"]), resize_flow(flows[:, i], size)) for i, m in enumerate(memory)
        ]
        return self.fusion(torch.stack([value, *warped], dim=1))


@register_model("flow_warp")
def flow_warp(
    num_classes: int,
    memory_length: int = 2,
    flow_source: str = "raft",
    flow_raft: str = "small",
    flow_weights: str = "",
    flow_iters: int = 12,
    flow_freeze: bool = True,
    flow_fusion: str = "netwarp",
    **head: Any,
) -> FlowWarpSegmenter:
    """Flow-warping baseline (NetWarp-style): past value features warped by RAFT, DIS, Farneback or true flow."""
    return FlowWarpSegmenter(
        num_classes,
        HeadParams.from_kwargs(**head),
        memory_length=memory_length,
        flow_source=flow_source,
        flow_raft=flow_raft,
        flow_weights=flow_weights,
        flow_iters=flow_iters,
        flow_freeze=flow_freeze,
        flow_fusion=flow_fusion,
    )

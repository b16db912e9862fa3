"""SegFormer (Xie et al., NeurIPS 2021): a feature pyramid (MiT) and the all-MLP decoder, as the per-frame row.

The decoder follows the official ``SegFormerHead`` (NVlabs/SegFormer ``mmseg/models/decode_heads/segformer_head.py``,
the head CFFM builds on): each of the four levels (strides 4, 8, 16, 32) goes through its own linear layer to
``decoder_channels`` (``linear_c1`` .. ``linear_c4``), is resized bilinearly to stride 4, the four are concatenated
(deepest first), fused by a 1x1 conv + BatchNorm + ReLU (``linear_fuse``), then Dropout2d and a 1x1 classifier
(``linear_pred``); the logits are resized to the image. Official widths: 256 for MiT-B0/B1, 768 for B2-B5. No
auxiliary head. Its recipe (AdamW 6e-5, head lr x10, poly) is a training config (``configs/*segformer*.yaml``).

Usage::

    from bench.models.segformer import segformer
    model = segformer(num_classes=124, backbone="mit_b1", decoder_channels=256)
    out = model(frames)["out"]     # frames (B, T+1, 3, H, W): only the last frame is used -> (B, 124, H, W)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from bench.models.head import HeadParams
from bench.models.layers import ConvBNReLU, resize_to
from bench.models.mit import to_map, to_tokens
from bench.models.pyramid import build_backbone, check_level
from bench.models.registry import register_model

PYRAMID_LEVELS: tuple[str, ...] = ("s4", "s8", "s16", "s32")


class MLPDecoder(nn.Module):
    """Levels s4..s32 (B, C_i, h_i, w_i) -> fused features (B, D, h_4, w_4): per-level linear, resize, fuse."""

    def __init__(self, in_channels: tuple[int, ...], dim: int) -> None:
        super().__init__()
        self.linear_c = nn.ModuleList(nn.Linear(c, dim) for c in in_channels)  # s4 first
        self.linear_fuse = ConvBNReLU(len(in_channels) * dim, dim, 1)

    def forward(self, levels: list[Tensor]) -> Tensor:
        size = tuple(levels[0].shape[-2:])
        projected = [
            resize_to(to_map(linear(to_tokens(x)), x.shape[2], x.shape[3]), size, False)
            for linear, x in zip(self.linear_c, levels)
        ]
        return self.linear_fuse(torch.cat(projected[::-1], dim=1))  # deepest first, as the official concatenation


class AllMLPHead(nn.Module):
    """``MLPDecoder`` -> Dropout2d -> 1x1 classifier: levels -> (fused (B, D, h_4, w_4), logits (B, K, h_4, w_4))."""

    def __init__(self, in_channels: tuple[int, ...], dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.mlp = MLPDecoder(in_channels, dim)
        self.dropout = nn.Dropout2d(dropout)
        self.linear_pred = nn.Conv2d(dim, num_classes, 1)

    def forward(self, levels: list[Tensor]) -> tuple[Tensor, Tensor]:
        fused = self.mlp(levels)
        return fused, self.linear_pred(self.dropout(fused))


def build_pyramid(head: HeadParams, model: str) -> nn.Module:
    """The backbone of ``head`` with the four levels s4..s32 checked (a one-line error names the missing one)."""
    backbone = build_backbone(head.backbone, pretrained=head.pretrained, pretrained_path=head.pretrained_path)
    for level in PYRAMID_LEVELS:
        check_level(backbone, level, model, "model.backbone")
    return backbone


class SegFormer(nn.Module):
    """Pyramid backbone + all-MLP decoder, with the suite's model interface (``memory_length`` 0)."""

    memory_length = 0

    def __init__(self, num_classes: int, head: HeadParams, decoder_channels: int = 256) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.align_corners = head.align_corners
        self.backbone = build_pyramid(head, "segformer")
        channels = tuple(self.backbone.levels[level] for level in PYRAMID_LEVELS)
        self.decode_head = AllMLPHead(channels, decoder_channels, num_classes, head.dropout)

    def extract(self, image: Tensor) -> dict[str, Tensor]:
        """image (B, 3, H, W) -> {"s4": (B, C1, H/4, W/4), ..., "s32": (B, C4, H/32, W/32)}."""
        feats = self.backbone.features(image)
        return {level: feats[level] for level in PYRAMID_LEVELS}

    def decode(
        self, current: dict[str, Tensor], memory: list, flow: Tensor | None, image_size: tuple[int, int]
    ) -> dict[str, Tensor]:
        """The current frame's levels -> {"out": (B, num_classes, H, W)}; ``memory`` must be empty."""
        if memory:
            raise ValueError(f"segformer is a per-frame model but got {len(memory)} memory frames")
        _, logits = self.decode_head([current[level] for level in PYRAMID_LEVELS])
        return {"out": resize_to(logits, (int(image_size[0]), int(image_size[1])), self.align_corners)}

    def forward(self, frames: Tensor, flow: Tensor | None = None) -> dict[str, Tensor]:
        """Clip (B, T+1, 3, H, W) -> ``decode`` of its last frame."""
        if frames.dim() != 5:
            raise ValueError(f"frames must be (B, T+1, 3, H, W), got {tuple(frames.shape)}")
        return self.decode(self.extract(frames[:, -1]), [], None, (frames.shape[-2], frames.shape[-1]))


@register_model("segformer")
def segformer(num_classes: int, decoder_channels: int = 256, **head: Any) -> SegFormer:
    """SegFormer (per-frame): a pyramid backbone (model.backbone=mit_b1 ...) and the all-MLP decoder."""
    return SegFormer(num_classes, HeadParams.from_kwargs(**head), decoder_channels=decoder_channels)

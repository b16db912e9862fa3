"""Per-frame baseline: TMANet without the memory (``memory_length = 0``).

Same backbone, same aux head and the same decoder path as TMANet's ``sum`` aggregation minus the read:
query value encoder (B, C4, h, w) -> (B, Cv, h, w) -> 3x3 ConvBNReLU(Cv -> channels) -> Dropout2d -> 1x1
classifier. The comparison with TMANet therefore isolates the temporal memory.

Usage::

    from baselines.per_frame import per_frame
    model = per_frame(num_classes=19, backbone="resnet50c")
    out = model(frames)["out"]     # frames (B, T+1, 3, H, W): only the last frame is used -> (B, 19, H, W)
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from bench.models.head import HeadParams
from bench.models.registry import register_model
from bench.models.segmenter import Features, SegmenterBase


class PerFrameSegmenter(SegmenterBase):
    """Single-frame segmenter; ``memory_length = 0``. Runs on a pyramid too (``model.feature_level``)."""

    PYRAMID_READY = True

    def __init__(self, num_classes: int, head: HeadParams) -> None:
        super().__init__(num_classes, 0, head.value_channels, head)

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        """No past: the bottleneck input is the query value (B, Cv, h, w)."""
        return value


@register_model("per_frame")
def per_frame(num_classes: int, **head: Any) -> PerFrameSegmenter:
    """Per-frame baseline: TMANet's decoder without memory (``memory_length`` is always 0)."""
    return PerFrameSegmenter(num_classes, HeadParams.from_kwargs(**head))

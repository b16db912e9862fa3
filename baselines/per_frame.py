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

from torch import Tensor

from bench.models.tmanet import Features, SegmenterBase
from bench.models.registry import register_model


class PerFrameSegmenter(SegmenterBase):
    """Single-frame segmenter; ``memory_length = 0``."""

    def __init__(self, num_classes: int, backbone: str = "resnet50c", pretrained: bool = False,
                 pretrained_path: str = "", encoding: str = "1x1+3x3", value_channels: int = 256,
                 channels: int = 512, aux_channels: int = 256, dropout: float = 0.1,
                 align_corners: bool = False) -> None:
        super().__init__(num_classes, 0, value_channels, backbone=backbone, pretrained=pretrained,
                         pretrained_path=pretrained_path, encoding=encoding, value_channels=value_channels,
                         channels=channels, aux_channels=aux_channels, dropout=dropout, align_corners=align_corners)

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        """No past: the bottleneck input is the query value (B, Cv, h, w)."""
        return value


@register_model("per_frame")
def per_frame(num_classes: int, backbone: str = "resnet50c", pretrained: bool = False, pretrained_path: str = "",
              encoding: str = "1x1+3x3", value_channels: int = 256, channels: int = 512, aux_channels: int = 256,
              dropout: float = 0.1, align_corners: bool = False) -> PerFrameSegmenter:
    """Per-frame baseline (no ``memory_length`` argument: it is always 0)."""
    return PerFrameSegmenter(num_classes, backbone=backbone, pretrained=pretrained, pretrained_path=pretrained_path,
                             encoding=encoding, value_channels=value_channels, channels=channels,
                             aux_channels=aux_channels, dropout=dropout, align_corners=align_corners)

"""Per-frame image heads of the TMANet paper's comparison table: PSPNet (``pspnet``) and FCN (``fcn``).

Both sit on the same dilated OS-8 backbone, the same FCN aux head on layer3 (trained with the same 0.4 weight by
the trainer), the same Dropout2d -> 1x1 classifier and the same recipe and evaluation as TMANet; only the head
on layer4 differs. They follow mmsegmentation's definitions (``mmseg/models/decode_heads/psp_head.py`` and
``fcn_head.py``, configs ``pspnet_r50-d8.py`` / ``fcn_r50-d8.py``):

* ``pspnet`` (Zhao et al., CVPR 2017; mmseg ``PSPHead``): for every bin size s in ``pool_scales`` (1, 2, 3, 6):
  AdaptiveAvgPool2d(s) -> 1x1 ConvBNReLU(C4 -> channels) -> bilinear upsampling to the feature size; the input
  and the K pooled maps are concatenated (C4 + K*channels) -> 3x3 ConvBNReLU(-> channels) bottleneck;
* ``fcn`` (Long et al., CVPR 2015; mmseg ``FCNHead`` with ``num_convs=2, concat_input=True``): 3x3
  ConvBNReLU(C4 -> channels) -> 3x3 ConvBNReLU(channels -> channels); ``cat([input, convs])`` (C4 + channels)
  -> 3x3 ConvBNReLU(-> channels) (mmseg's ``conv_cat``).

In ``SegmenterBase`` terms the value encoder is skipped (``encode_value=False``: ``value`` is layer4 itself),
``fuse`` builds the concatenation and the base class's 3x3 bottleneck is the last ConvBNReLU of the head.
``value_channels``, ``key_channels`` and ``encoding`` are not used; ``channels`` is mmseg's ``channels`` (512).
Both models have ``memory_length = 0`` and use the last frame of a clip.

Usage::

    from baselines.image_heads import fcn, pspnet
    model = pspnet(num_classes=19, backbone="resnet50c")          # pool_scales [1, 2, 3, 6]
    out = model(frames)["out"]       # frames (B, T+1, 3, H, W): only the last frame is used -> (B, 19, H, W)

Training with BatchNorm needs more than one value per channel: the 1x1 bin of the pyramid has one position per
image, so a training batch of 1 per rank fails in BatchNorm (mmseg trains with SyncBN and 2 images per GPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from bench.models.head import HeadParams
from bench.models.layers import ConvBNReLU, resize_to
from bench.models.registry import register_model
from bench.models.segmenter import Features, SegmenterBase

PSP_POOL_SCALES: tuple[int, ...] = (1, 2, 3, 6)  # pspnet_r50-d8.py: pool_scales=(1, 2, 3, 6)


def check_pool_scales(pool_scales: Sequence[int]) -> tuple[int, ...]:
    """Bin sizes as a tuple; empty, repeated or non-positive sizes are a ``ValueError``."""
    scales = tuple(int(s) for s in pool_scales)
    if not scales or any(s < 1 for s in scales) or len(set(scales)) != len(scales):
        raise ValueError(
            f"pool_scales must be distinct positive bin sizes such as [1, 2, 3, 6], got {list(pool_scales)}"
        )
    return scales


class PyramidPooling(nn.Module):
    """mmseg ``PPM``: (B, C, h, w) -> K maps (B, channels, h, w), one per bin size, upsampled bilinearly."""

    def __init__(
        self, in_channels: int, channels: int, pool_scales: Sequence[int], align_corners: bool = False
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvBNReLU(in_channels, channels, 1))
            for s in check_pool_scales(pool_scales)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        size = (x.shape[-2], x.shape[-1])
        return [resize_to(stage(x), size, self.align_corners) for stage in self.stages]


class PSPNetSegmenter(SegmenterBase):
    """PSPNet: layer4 + pyramid pooling -> 3x3 bottleneck -> classifier; ``memory_length = 0``."""

    def __init__(self, num_classes: int, head: HeadParams, pool_scales: Sequence[int] = PSP_POOL_SCALES) -> None:
        scales = check_pool_scales(pool_scales)
        super().__init__(num_classes, 0, 1, head, encode_value=False)
        c4 = self.backbone.out_channels
        self.bottleneck = ConvBNReLU(c4 + len(scales) * head.channels, head.channels, 3)  # fused size needs C4
        self.pool_scales = scales
        self.psp = PyramidPooling(c4, head.channels, scales, head.align_corners)

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        """layer4 (B, C4, h, w) -> cat([layer4, pooled_1, ..., pooled_K]) (B, C4 + K*channels, h, w)."""
        return torch.cat([value, *self.psp(value)], dim=1)


class FCNSegmenter(SegmenterBase):
    """FCN: two 3x3 ConvBNReLU on layer4, concatenated with layer4 -> 3x3 ``conv_cat`` -> classifier."""

    def __init__(self, num_classes: int, head: HeadParams) -> None:
        super().__init__(num_classes, 0, 1, head, encode_value=False)
        c4 = self.backbone.out_channels
        self.bottleneck = ConvBNReLU(c4 + head.channels, head.channels, 3)  # mmseg conv_cat; its size needs C4
        self.convs = nn.Sequential(ConvBNReLU(c4, head.channels, 3), ConvBNReLU(head.channels, head.channels, 3))

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        """layer4 (B, C4, h, w) -> cat([layer4, convs(layer4)]) (B, C4 + channels, h, w) (``concat_input``)."""
        return torch.cat([value, self.convs(value)], dim=1)


def head_modules(model: SegmenterBase) -> list[nn.Module]:
    """The modules of mmseg's decode head (not the backbone, not the aux head): for parameter counts."""
    own = [model.psp] if isinstance(model, PSPNetSegmenter) else [model.convs]
    return [*own, model.bottleneck, model.classifier]


@register_model("pspnet")
def pspnet(num_classes: int, pool_scales: Sequence[int] = [1, 2, 3, 6], **head: Any) -> PSPNetSegmenter:  # noqa: B006
    """Per-frame PSPNet (mmseg ``PSPHead``); the default equals the config field ``model.pool_scales``."""
    return PSPNetSegmenter(num_classes, HeadParams.from_kwargs(**head), pool_scales=pool_scales)


@register_model("fcn")
def fcn(num_classes: int, **head: Any) -> FCNSegmenter:
    """Per-frame FCN (mmseg ``FCNHead``, num_convs=2, concat_input=True)."""
    return FCNSegmenter(num_classes, HeadParams.from_kwargs(**head))

"""Small building blocks shared by TMANet and the baselines.

Everything mirrors mmcv/mmseg defaults used by the official TMANet code (docs/tmanet.md §1.4, §1.6, §1.7, §1.9):

* ``ConvBNReLU``: conv (bias off) -> BatchNorm -> ReLU, Kaiming-normal ``fan_out`` init, BN weight 1 / bias 0.
* ``Classifier``: ``Dropout2d`` -> 1x1 conv with bias, normal(0, 0.01) init (mmseg ``cls_seg``).
* ``FCNAuxHead``: 3x3 ``ConvBNReLU`` -> ``Classifier`` (mmseg ``FCNHead``, num_convs=1, concat_input=False).
* ``make_encoder``: the TMANet encoding layers (ConvA 1x1 -> ConvB 3x3, or one of them).
* ``resize_to``: bilinear resize of logits to the image size.

Usage::

    from bench.models.layers import ConvBNReLU, FCNAuxHead, make_encoder
    enc = make_encoder(2048, 64, "1x1+3x3")       # (B, 2048, h, w) -> (B, 64, h, w)
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from bench.models.head import ENCODINGS


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias, 'same' padding) -> BatchNorm2d -> ReLU: (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1) -> None:
        conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation, bias=False
        )
        bn = nn.BatchNorm2d(out_channels)
        super().__init__(conv, bn, nn.ReLU(inplace=True))
        # mmcv ConvModule.init_weights: kaiming_init(mode='fan_out', nonlinearity='relu'); BN 1 / 0
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.ones_(bn.weight)
        nn.init.zeros_(bn.bias)


class Classifier(nn.Sequential):
    """Dropout2d -> 1x1 conv with bias: (B, C_in, H, W) -> (B, num_classes, H, W) (mmseg ``cls_seg``)."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.1) -> None:
        conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)
        super().__init__(nn.Dropout2d(dropout), conv)
        nn.init.normal_(conv.weight, mean=0.0, std=0.01)  # BaseDecodeHead.init_weights
        nn.init.zeros_(conv.bias)


class FCNAuxHead(nn.Sequential):
    """Auxiliary FCN head on layer3 (training only): (B, C_in, h, w) -> (B, num_classes, h, w).

    3x3 ConvBNReLU(C_in -> channels) -> Dropout2d -> 1x1 classifier (docs/tmanet.md §1.7: 1024 -> 256 -> classes).
    """

    def __init__(self, in_channels: int, channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__(ConvBNReLU(in_channels, channels, 3), Classifier(channels, num_classes, dropout))


def make_encoder(in_channels: int, out_channels: int, encoding: str = "1x1+3x3") -> nn.Sequential:
    """TMANet encoding layers: (B, C_in, h, w) -> (B, C_out, h, w), output post-ReLU (non-negative).

    ``"1x1+3x3"`` is the official ConvA (1x1) -> ConvB (3x3) pair; ``"1x1"`` and ``"3x3"`` keep one conv.
    """
    if encoding == "1x1+3x3":
        return nn.Sequential(ConvBNReLU(in_channels, out_channels, 1), ConvBNReLU(out_channels, out_channels, 3))
    if encoding == "1x1":
        return nn.Sequential(ConvBNReLU(in_channels, out_channels, 1))
    if encoding == "3x3":
        return nn.Sequential(ConvBNReLU(in_channels, out_channels, 3))
    raise ValueError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")


def resize_to(x: Tensor, size: tuple[int, int], align_corners: bool = False) -> Tensor:
    """Bilinear resize (B, C, h, w) -> (B, C, *size); returns ``x`` itself when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = ["ENCODINGS", "ConvBNReLU", "Classifier", "FCNAuxHead", "make_encoder", "resize_to", "count_parameters"]

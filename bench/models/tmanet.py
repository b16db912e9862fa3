"""TMANet (Wang et al., ICIP 2021) in plain PyTorch, exact to the official TMAHead (docs/tmanet.md §1).

Pipeline for a clip ``frames (B, T+1, 3, H, W)`` (memory frames oldest first, current frame last):

1. the shared OS-8 backbone runs once per frame slot (current first, then memory slots 0..T-1, as the official
   ``extract_feat`` calls; each call has its own BatchNorm batch statistics);
2. encoding layers (Conv-BN-ReLU, so post-ReLU): a query key / query value pair on the current layer4, and
   per-slot, NOT shared, memory key / value pairs (slot i has its own weights, ``SequenceConv``);
3. the TMA read (``bench.models.attention``): softmax over all T*H*W memory positions, no scaling;
4. aggregation ``concat`` (``cat([query_value, read])`` -> 3x3 ConvBNReLU(2*Cv -> channels), official) or
   ``sum`` (``query_value + read`` -> 3x3 ConvBNReLU(Cv -> channels));
5. Dropout2d -> 1x1 classifier, bilinear upsampling to the input size; in training mode an FCN aux head on the
   current frame's layer3 adds ``"aux"`` (its loss weight, 0.4 officially, is the trainer's business).

``SegmenterBase`` (``bench.models.segmenter``) holds everything except step 2-4's memory part; the baselines
(``baselines/``) subclass it too, so that only the use of the past differs between the compared models.

Usage::

    from bench.models.tmanet import tmanet
    model = tmanet(num_classes=19, backbone="resnet50c", memory_length=2)
    out = model(frames)["out"]          # frames (B, 3, 3, H, W) -> (B, 19, H, W)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from bench.models.attention import get_tma_read
from bench.models.head import HeadParams
from bench.models.layers import make_encoder
from bench.models.registry import register_model
from bench.models.segmenter import Features, SegmenterBase, check_memory_length

AGGREGATIONS: tuple[str, ...] = ("concat", "sum")


class TMANet(SegmenterBase):
    """Temporal Memory Attention Network. Shapes for memory_length T, image (H, W), h = H/8:

    query key (B, Ck, h, w), memory keys (B, T, Ck, h, w), memory values (B, T, Cv, h, w), read (B, Cv, h, w).
    The read is on ``self.level`` (layer4 of a dilated ResNet; on a pyramid such as MiT the deepest level by
    default, or the one ``model.feature_level`` names, e.g. ``s8``).
    """

    PYRAMID_READY = True

    def __init__(
        self,
        num_classes: int,
        head: HeadParams,
        memory_length: int = 2,
        aggregation: str = "concat",
        key_channels: int = 64,
        attention: str = "sdpa",
    ) -> None:
        check_memory_length("tmanet", memory_length)
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
        fused = 2 * head.value_channels if aggregation == "concat" else head.value_channels
        super().__init__(num_classes, memory_length, fused, head)
        self.aggregation = aggregation
        self.attention = attention
        self.read = get_tma_read(attention)
        in_channels, value_channels, encoding = self.in_channels, head.value_channels, head.encoding
        self.query_key = make_encoder(in_channels, key_channels, encoding)
        # SequenceConv: one independent encoder per memory slot (slot 0 = oldest frame)
        self.memory_keys = nn.ModuleList(
            make_encoder(in_channels, key_channels, encoding) for _ in range(memory_length)
        )
        self.memory_values = nn.ModuleList(
            make_encoder(in_channels, value_channels, encoding) for _ in range(memory_length)
        )

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        """Query value (B, Cv, h, w) + TMA read of the memory -> (B, 2Cv or Cv, h, w). ``flow`` is unused."""
        query_key = self.query_key(current[self.level])
        keys = torch.stack([enc(m[self.level]) for enc, m in zip(self.memory_keys, memory)], dim=1)
        values = torch.stack([enc(m[self.level]) for enc, m in zip(self.memory_values, memory)], dim=1)
        read = self.read(query_key, keys, values)
        if self.aggregation == "concat":
            return torch.cat([value, read], dim=1)  # query value first, as the official head
        return value + read


@register_model("tmanet")
def tmanet(
    num_classes: int,
    memory_length: int = 2,
    aggregation: str = "concat",
    key_channels: int = 64,
    attention: str = "sdpa",
    **head: Any,
) -> TMANet:
    """TMANet; ``head``: ``HeadParams`` fields. Defaults are the released configs' (key 64, value 256,
    bottleneck 512)."""
    return TMANet(
        num_classes,
        HeadParams.from_kwargs(**head),
        memory_length=memory_length,
        aggregation=aggregation,
        key_channels=key_channels,
        attention=attention,
    )

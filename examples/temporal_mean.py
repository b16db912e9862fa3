"""An example plugin method: "temporal_mean", TMANet's decoder reading the memory by a plain average.

It shows the whole plugin path: this module registers a model by name; a config lists the module under
``plugins:`` and selects ``model.name: temporal_mean``; the shared trainer, grids and reports then treat it
like the built-in models. Try it::

    PYTHONPATH=examples bench train configs/synthetic_tmanet.yaml plugins=[temporal_mean] model.name=temporal_mean
    PYTHONPATH=examples bench sweep ablations/synthetic_methods.yaml plugins=[temporal_mean] --dry-run

The model subclasses ``SegmenterBase`` (backbone, query value encoder, bottleneck, classifier and aux head),
so only ``fuse`` is new: instead of attention, the memory frames' value features are averaged and
concatenated with the current frame's, the same shape TMANet's ``concat`` aggregation feeds the bottleneck.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from bench.models.head import HeadParams
from bench.models.layers import make_encoder
from bench.models.registry import register_model
from bench.models.segmenter import Features, SegmenterBase, check_memory_length


class TemporalMean(SegmenterBase):
    """Memory read = mean over the T memory frames of a shared value encoder: (B, Cv, h, w)."""

    def __init__(self, num_classes: int, memory_length: int, head: HeadParams) -> None:
        super().__init__(num_classes, memory_length, 2 * head.value_channels, head)
        self.memory_value = make_encoder(self.backbone.out_channels, head.value_channels, head.encoding)

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        read = torch.stack([self.memory_value(m["layer4"]) for m in memory], dim=1).mean(dim=1)
        return torch.cat([value, read], dim=1)


@register_model("temporal_mean")
def temporal_mean(num_classes: int, memory_length: int = 2, **head: Any) -> nn.Module:
    """Factory: keyword arguments only; ``bench`` passes ``model.memory_length`` and the head's fields (``**head``)."""
    check_memory_length("temporal_mean", memory_length)
    return TemporalMean(num_classes, memory_length, HeadParams.from_kwargs(**head))

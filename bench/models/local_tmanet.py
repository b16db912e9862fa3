"""``local_tmanet``: TMANet with the memory read restricted to a local spatial window (LMANet-style sibling).

LMANet (Paul et al., "Local Memory Attention for Fast Video Semantic Segmentation", IROS 2021) reads a memory
of past-frame features through a local correlation window instead of TMANet's global attention over T*H*W.
This model keeps everything of ``bench.models.tmanet.TMANet`` (backbone, per-slot key/value encoders, concat or
sum aggregation, aux head, streaming through ``extract``/``decode``) and swaps only the read for
``bench.models.attention.local_tma_read``: each query position attends to the ``window_size`` x ``window_size``
neighbourhood (odd) of the same position in every memory frame, one softmax over the T*k*k positions. It is the
grid's answer to "is global attention over T x H x W needed?". LMANet's second attention (fusing the read with the
current frame) is not reproduced: the fusion is TMANet's, so only the read's extent differs.

A window of ``2*max(h, w) - 1`` (h, w: the feature map, the image size / 8) covers the whole map and gives
exactly TMANet's read; a larger one is a ``ValueError`` at the first forward pass (the feature size is known then).

Usage::

    from bench.models.local_tmanet import local_tmanet
    model = local_tmanet(num_classes=19, memory_length=2, window_size=9)
    out = model(frames)["out"]          # frames (B, 3, 3, H, W) -> (B, 19, H, W)
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from bench.models.attention import local_tma_read
from bench.models.head import HeadParams
from bench.models.registry import register_model
from bench.models.tmanet import TMANet


class LocalTMANet(TMANet):
    """TMANet whose memory read sees a ``window_size`` x ``window_size`` window per memory frame."""

    def __init__(
        self,
        num_classes: int,
        head: HeadParams,
        memory_length: int = 2,
        aggregation: str = "concat",
        key_channels: int = 64,
        window_size: int = 9,
    ) -> None:
        if window_size < 1 or window_size % 2 == 0:
            raise ValueError(
                f"window_size must be an odd number >= 1 (the window is centred on the query), got {window_size}"
            )
        super().__init__(
            num_classes,
            head,
            memory_length=memory_length,
            aggregation=aggregation,
            key_channels=key_channels,
            attention="reference",
        )
        self.window_size = window_size
        self.read = self.local_read

    def local_read(self, query_key: Tensor, memory_keys: Tensor, memory_values: Tensor) -> Tensor:
        """``local_tma_read`` with this model's ``window_size``: -> (B, Cv, h, w)."""
        return local_tma_read(query_key, memory_keys, memory_values, self.window_size)


@register_model("local_tmanet")
def local_tmanet(
    num_classes: int,
    memory_length: int = 2,
    aggregation: str = "concat",
    key_channels: int = 64,
    window_size: int = 9,
    **head: Any,
) -> LocalTMANet:
    """Local-window TMANet; ``head``: ``HeadParams`` fields; ``window_size`` odd (9 = our default choice)."""
    return LocalTMANet(
        num_classes,
        HeadParams.from_kwargs(**head),
        memory_length=memory_length,
        aggregation=aggregation,
        key_channels=key_channels,
        window_size=window_size,
    )

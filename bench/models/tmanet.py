"""TMANet (Wang et al., ICIP 2021) in plain PyTorch, exact to the official TMAHead (tmanet.md §1).

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

``SegmenterBase`` holds everything except step 2-4's memory part; the per-frame and flow-warp baselines
(``baselines/``) subclass it so that only the use of the past differs between the compared models.

Usage::

    from bench.models.tmanet import tmanet
    model = tmanet(num_classes=19, backbone="resnet50c", memory_length=2)
    out = model(frames)["out"]          # frames (B, 3, 3, H, W) -> (B, 19, H, W)
"""

from __future__ import annotations

from torch import Tensor, nn
import torch

from bench.models.attention import get_tma_read
from bench.models.backbone import Backbone
from bench.models.layers import Classifier, ConvBNReLU, FCNAuxHead, make_encoder, resize_to
from bench.models.registry import register_model

AGGREGATIONS: tuple[str, ...] = ("concat", "sum")
MAX_MEMORY_LENGTH = 8

Features = dict[str, Tensor]


class SegmenterBase(nn.Module):
    """Backbone + query value encoder + bottleneck + classifier + aux head, with the contract interface.

    Subclasses implement ``fuse(current, memory, flow, value) -> (B, fused_channels, h, w)``, the bottleneck
    input; ``value`` is the current frame's query value (B, value_channels, h, w).
    """

    def __init__(self, num_classes: int, memory_length: int, fused_channels: int, backbone: str = "resnet50c",
                 pretrained: bool = False, pretrained_path: str = "", encoding: str = "1x1+3x3",
                 value_channels: int = 256, channels: int = 512, aux_channels: int = 256, dropout: float = 0.1,
                 align_corners: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.memory_length = memory_length
        self.align_corners = align_corners
        self.backbone = Backbone(backbone, pretrained=pretrained, pretrained_path=pretrained_path)
        self.query_value = make_encoder(self.backbone.out_channels, value_channels, encoding)
        self.bottleneck = ConvBNReLU(fused_channels, channels, 3)
        self.classifier = Classifier(channels, num_classes, dropout)
        self.aux_head = FCNAuxHead(self.backbone.aux_channels, aux_channels, num_classes, dropout)

    def extract(self, image: Tensor) -> Features:
        """Per-frame features: image (B, 3, H, W) -> {"layer3": (B, C3, h, w), "layer4": (B, C4, h, w)}."""
        layer3, layer4 = self.backbone(image)
        return {"layer3": layer3, "layer4": layer4}

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(self, current: Features, memory: list[Features], flow: Tensor | None,
               image_size: tuple[int, int]) -> dict[str, Tensor]:
        """Features of the current frame and of the memory frames (oldest first) -> logits at ``image_size``.

        Returns ``{"out": (B, num_classes, H, W)}`` plus ``"aux"`` (same shape) in training mode.
        ``flow`` (B, T, 2, H, W) is used only by models that warp (see ``baselines.flow_warp``).
        """
        if len(memory) != self.memory_length:
            raise ValueError(f"{type(self).__name__} has memory_length={self.memory_length} but got "
                             f"{len(memory)} memory frames")
        value = self.query_value(current["layer4"])
        logits = self.classifier(self.bottleneck(self.fuse(current, memory, flow, value)))
        size = (int(image_size[0]), int(image_size[1]))
        result = {"out": resize_to(logits, size, self.align_corners)}
        if self.training:
            result["aux"] = resize_to(self.aux_head(current["layer3"]), size, self.align_corners)
        return result

    def forward(self, frames: Tensor, flow: Tensor | None = None) -> dict[str, Tensor]:
        """Clip (B, T+1, 3, H, W), memory oldest first and current last -> ``decode`` output.

        The backbone runs once per frame slot, current frame first (official order). A model with
        ``memory_length=0`` accepts any clip and uses its last frame.
        """
        if frames.dim() != 5:
            raise ValueError(f"frames must be (B, T+1, 3, H, W), got {tuple(frames.shape)}")
        t = self.memory_length
        if t > 0 and frames.shape[1] != t + 1:
            raise ValueError(f"{type(self).__name__} has memory_length={t} and needs clips of {t + 1} frames, "
                             f"got {frames.shape[1]}")
        current = self.extract(frames[:, -1])
        memory = [self.extract(frames[:, i]) for i in range(t)]
        return self.decode(current, memory, flow, (frames.shape[-2], frames.shape[-1]))


class TMANet(SegmenterBase):
    """Temporal Memory Attention Network. Shapes for memory_length T, image (H, W), h = H/8:

    query key (B, Ck, h, w), memory keys (B, T, Ck, h, w), memory values (B, T, Cv, h, w), read (B, Cv, h, w).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50c", pretrained: bool = False,
                 pretrained_path: str = "", memory_length: int = 2, aggregation: str = "concat",
                 encoding: str = "1x1+3x3", key_channels: int = 64, value_channels: int = 256, channels: int = 512,
                 aux_channels: int = 256, dropout: float = 0.1, attention: str = "sdpa",
                 align_corners: bool = False) -> None:
        if memory_length == 0:
            raise ValueError("TMANet needs memory_length >= 1 (with 0 there is nothing to attend to); "
                             "use the 'per_frame' model for a memory-free baseline")
        if not 1 <= memory_length <= MAX_MEMORY_LENGTH:
            raise ValueError(f"memory_length must be in 1..{MAX_MEMORY_LENGTH}, got {memory_length}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}")
        fused = 2 * value_channels if aggregation == "concat" else value_channels
        super().__init__(num_classes, memory_length, fused, backbone=backbone, pretrained=pretrained,
                         pretrained_path=pretrained_path, encoding=encoding, value_channels=value_channels,
                         channels=channels, aux_channels=aux_channels, dropout=dropout, align_corners=align_corners)
        self.aggregation = aggregation
        self.attention = attention
        self.read = get_tma_read(attention)
        in_channels = self.backbone.out_channels
        self.query_key = make_encoder(in_channels, key_channels, encoding)
        # SequenceConv: one independent encoder per memory slot (slot 0 = oldest frame)
        self.memory_keys = nn.ModuleList(make_encoder(in_channels, key_channels, encoding)
                                         for _ in range(memory_length))
        self.memory_values = nn.ModuleList(make_encoder(in_channels, value_channels, encoding)
                                           for _ in range(memory_length))

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        """Query value (B, Cv, h, w) + TMA read of the memory -> (B, 2Cv or Cv, h, w). ``flow`` is unused."""
        query_key = self.query_key(current["layer4"])
        keys = torch.stack([enc(m["layer4"]) for enc, m in zip(self.memory_keys, memory)], dim=1)
        values = torch.stack([enc(m["layer4"]) for enc, m in zip(self.memory_values, memory)], dim=1)
        read = self.read(query_key, keys, values)
        if self.aggregation == "concat":
            return torch.cat([value, read], dim=1)  # query value first, as the official head
        return value + read


@register_model("tmanet")
def tmanet(num_classes: int, backbone: str = "resnet50c", pretrained: bool = False, pretrained_path: str = "",
           memory_length: int = 2, aggregation: str = "concat", encoding: str = "1x1+3x3", key_channels: int = 64,
           value_channels: int = 256, channels: int = 512, aux_channels: int = 256, dropout: float = 0.1,
           attention: str = "sdpa", align_corners: bool = False) -> TMANet:
    """TMANet; defaults are the released configs' head (key 64, value 256, bottleneck 512, aux 256)."""
    return TMANet(num_classes, backbone=backbone, pretrained=pretrained, pretrained_path=pretrained_path,
                  memory_length=memory_length, aggregation=aggregation, encoding=encoding,
                  key_channels=key_channels, value_channels=value_channels, channels=channels,
                  aux_channels=aux_channels, dropout=dropout, attention=attention, align_corners=align_corners)

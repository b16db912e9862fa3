"""``SegmenterBase``: the backbone and decoder every model of the suite shares; subclasses differ in ``fuse``.

    class MyMethod(SegmenterBase):
        def __init__(self, num_classes, memory_length, head: HeadParams):
            super().__init__(num_classes, memory_length, fused_channels=2 * head.value_channels, head=head)
        def fuse(self, current, memory, flow, value):     # value: (B, Cv, h, w) of the current frame
            return ...                                      # (B, fused_channels, h, w), the bottleneck input

Pipeline for a clip ``frames (B, T+1, 3, H, W)`` (memory frames oldest first, current frame last): the shared
OS-8 backbone runs once per frame slot (current first, then memory slots 0..T-1, as the official
``extract_feat`` calls; each call has its own BatchNorm batch statistics), the query value encoder on the
current layer4, ``fuse`` (the model's own use of the past), a 3x3 ConvBNReLU bottleneck, Dropout2d -> 1x1
classifier, bilinear upsampling to the input size; in training mode an FCN aux head on the current frame's
layer3 adds ``"aux"`` (its loss weight, 0.4 officially, is the trainer's business).

Backbones (``bench.models.pyramid.build_backbone``): the levels read are ``self.level`` (value encoder; "layer4"
above) and ``self.aux_level`` (aux head; "layer3"), from ``HeadParams.feature_level`` / ``aux_feature_level``
("" = the backbone's deepest level and the one before it). A subclass that reads them through these names sets
``PYRAMID_READY = True`` and then also runs on a pyramid (MiT, Swin: e.g. TMANet reading ``s8`` or ``s32``).
"""

from __future__ import annotations

from torch import Tensor, nn

from bench.models.backbone import Backbone
from bench.models.head import HeadParams
from bench.models.layers import Classifier, ConvBNReLU, FCNAuxHead, make_encoder, resize_to
from bench.models.pyramid import FeatureLevelError, build_backbone, resolve_levels
from bench.models.registry import RegistryError

MAX_MEMORY_LENGTH = 8

Features = dict[str, Tensor]


class SegmenterBase(nn.Module):
    """Backbone + query value encoder + bottleneck + classifier + aux head, with the contract interface.

    Subclasses implement ``fuse(current, memory, flow, value) -> (B, fused_channels, h, w)``, the bottleneck
    input; ``value`` is the current frame's query value (B, value_channels, h, w), or its layer4 features
    (B, C4, h, w) when built with ``encode_value=False`` (the per-frame image heads of ``baselines.image_heads``).
    """

    # Whether the model reads its levels through ``self.level`` / ``self.aux_level`` (and so runs on a feature
    # pyramid such as MiT); a subclass that reads "layer3"/"layer4" itself keeps False: dilated ResNets only.
    PYRAMID_READY = False

    def __init__(
        self, num_classes: int, memory_length: int, fused_channels: int, head: HeadParams, encode_value: bool = True
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.memory_length = memory_length
        self.head = head
        self.align_corners = head.align_corners
        self.backbone = build_backbone(head.backbone, pretrained=head.pretrained, pretrained_path=head.pretrained_path)
        self.level, self.aux_level = self._levels(head)
        self.in_channels = self.backbone.levels[self.level]
        # image heads (PSPNet, FCN) read the level itself: ``value`` is then (B, C, h, w)
        self.query_value = (
            make_encoder(self.in_channels, head.value_channels, head.encoding) if encode_value else nn.Identity()
        )
        self.bottleneck = ConvBNReLU(fused_channels, head.channels, 3)
        self.classifier = Classifier(head.channels, num_classes, head.dropout)
        self.aux_head = FCNAuxHead(self.backbone.levels[self.aux_level], head.aux_channels, num_classes, head.dropout)

    def _levels(self, head: HeadParams) -> tuple[str, str]:
        """(main, aux) levels of ``self.backbone`` (``bench.models.pyramid.resolve_levels``)."""
        name = type(self).__name__
        if not self.PYRAMID_READY and not isinstance(self.backbone, Backbone):
            raise FeatureLevelError(
                f"{name} reads layer3/layer4 of the dilated ResNets only; backbone {head.backbone!r} is a feature "
                f"pyramid (use a timm ResNet such as resnet50c, or a model that reads pyramids: tmanet, "
                f"per_frame, local_tmanet, segformer, cffm)"
            )
        return resolve_levels(self.backbone, head.feature_level, head.aux_feature_level, name)

    def extract(self, image: Tensor) -> Features:
        """Per-frame features: image (B, 3, H, W) -> {aux level: (B, C3, h, w), main level: (B, C4, h, w)}, i.e.
        {"layer3", "layer4"} on a dilated ResNet (the default levels)."""
        feats = self.backbone.features(image)
        return {self.aux_level: feats[self.aux_level], self.level: feats[self.level]}

    def fuse(self, current: Features, memory: list[Features], flow: Tensor | None, value: Tensor) -> Tensor:
        raise NotImplementedError

    def decode(
        self, current: Features, memory: list[Features], flow: Tensor | None, image_size: tuple[int, int]
    ) -> dict[str, Tensor]:
        """Features of the current frame and of the memory frames (oldest first) -> logits at ``image_size``.

        Returns ``{"out": (B, num_classes, H, W)}`` plus ``"aux"`` (same shape) in training mode.
        ``flow`` (B, T, 2, H, W) is used only by models that warp (see ``baselines.flow_warp``).
        """
        if len(memory) != self.memory_length:
            raise ValueError(
                f"{type(self).__name__} has memory_length={self.memory_length} but got {len(memory)} memory frames"
            )
        value = self.query_value(current[self.level])
        logits = self.classifier(self.bottleneck(self.fuse(current, memory, flow, value)))
        return self.upsample(logits, current, image_size)

    def upsample(self, logits: Tensor, current: Features, image_size: tuple[int, int]) -> dict[str, Tensor]:
        """Logits (B, C, h, w) -> ``{"out": (B, C, H, W)}``, plus the aux head's ``"aux"`` in training mode."""
        size = (int(image_size[0]), int(image_size[1]))
        result = {"out": resize_to(logits, size, self.align_corners)}
        if self.training:
            result["aux"] = resize_to(self.aux_head(current[self.aux_level]), size, self.align_corners)
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
            raise ValueError(
                f"{type(self).__name__} has memory_length={t} and needs clips of {t + 1} frames, got {frames.shape[1]}"
            )
        current = self.extract(frames[:, -1])
        memory = [self.extract(frames[:, i]) for i in range(t)]
        return self.decode(current, memory, flow, (frames.shape[-2], frames.shape[-1]))


def check_memory_length(model: str, memory_length: int, minimum: int = 1) -> None:
    """``memory_length`` in ``minimum..MAX_MEMORY_LENGTH``, else a ``RegistryError`` (a ``ValueError``: a bad
    model argument, one line from the CLI) that names ``model``."""
    if not minimum <= memory_length <= MAX_MEMORY_LENGTH:
        hint = " (use the 'per_frame' model for a memory-free baseline)" if memory_length == 0 else ""
        raise RegistryError(
            f"{model} needs model.memory_length in {minimum}..{MAX_MEMORY_LENGTH}, got {memory_length}{hint}"
        )

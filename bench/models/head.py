"""The parameters every segmentation head of the suite shares, defined once.

    from bench.models.head import HeadParams
    head = HeadParams(backbone="resnet18", value_channels=64)     # the rest keep the official defaults
    head = HeadParams.from_kwargs(backbone="resnet18")            # unknown names: one-line ValueError

TMANet, the per-frame baseline, the flow baselines and plugins built on ``SegmenterBase`` all take these: the
backbone, the value encoder, the bottleneck, the classifier and the aux head. A model factory receives them as
``**head`` (keyword arguments) and passes ``HeadParams.from_kwargs(**head)`` on, so adding a shared parameter
touches this class and the config field that exposes it (``bench.config.ModelConfig``; a test keeps the two
equal), never the factories. Defaults are the released TMANet configs' (key 64 is TMANet's own; value 256,
bottleneck 512, aux 256, dropout 0.1: ``configs/_base_/models/tmanet_r50-d8.py`` and the dataset configs).

This module imports no torch, so the run id of a config can be computed without it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

ENCODINGS: tuple[str, ...] = ("1x1+3x3", "1x1", "3x3")


@dataclass(frozen=True)
class HeadParams:
    """Backbone and decoder settings shared by every ``SegmenterBase`` model."""

    backbone: str = "resnet50c"  # ResNet-V1c, the deep stem of the official mmseg configs
    pretrained: bool = False
    pretrained_path: str = ""
    encoding: str = "1x1+3x3"  # ConvA 1x1 -> ConvB 3x3 (the paper's Fig. 1)
    value_channels: int = 256
    channels: int = 512
    aux_channels: int = 256
    dropout: float = 0.1
    align_corners: bool = False
    # the backbone levels the head reads (bench.models.pyramid); "" = the backbone's deepest level (layer4 of
    # the dilated ResNets, s32 of a pyramid) and, for the aux head, the one before it (layer3, s16)
    feature_level: str = ""
    aux_feature_level: str = ""

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; choose one of {', '.join(ENCODINGS)}")
        for name in ("value_channels", "channels", "aux_channels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= float(self.dropout) <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {self.dropout}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> HeadParams:
        """``HeadParams(**kwargs)``; a name that is not a head parameter is a ``ValueError`` listing the valid ones."""
        unknown = sorted(set(kwargs) - set(cls.names()))
        if unknown:
            raise ValueError(f"unknown head parameter(s) {', '.join(unknown)}; valid: {', '.join(cls.names())}")
        return cls(**kwargs)

    def as_kwargs(self) -> dict[str, Any]:
        """The parameters as a plain dict (for a factory's ``**head``)."""
        return dataclasses.asdict(self)

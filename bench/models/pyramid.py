"""Backbones behind one interface: named feature levels, each with its channels and stride.

``build_backbone(name)`` picks the kind from the name:

* ``mit_b0`` .. ``mit_b5``, ``mit_tiny``: the Mix Transformer of SegFormer (``bench.models.mit``), levels
  ``s4``, ``s8``, ``s16``, ``s32``; ``pretrained_path`` loads a released NVlabs or mmseg MiT checkpoint
  (``bench.models.mit_checkpoint``: strict, a checkpoint of another size is an error naming both sizes);
* a timm ResNet (``resnet18``, ``resnet50c``, ``resnet50d``, ... : the models of ``timm.models.resnet``): the
  dilated output-stride-8 ``bench.models.backbone.Backbone`` unchanged, levels ``layer3`` and ``layer4``;
* any other timm model (``swin_tiny_patch4_window7_224``, ``swin_small_patch4_window7_224``,
  ``convnext_tiny``, ...): ``timm.create_model(name, features_only=True)`` at its native strides, levels
  ``s{stride}`` for the strides 4, 8, 16 and 32 it has. Transformers that fix their input size in timm (Swin)
  are built to accept any size (``strict_img_size=False``); the image is zero-padded at the bottom and right to
  a multiple of 32 and every level cropped back to ``ceil(H / stride)`` (as mmseg pads Swin's input).

A name that is none of these is a ``BackboneNameError`` listing the MiT names and the closest timm names.
Every backbone has ``levels`` ({level: channels}), ``strides`` ({level: stride}), ``default_levels``
(``(main, aux)``: the deepest level and the one before it) and ``features(image) -> {level: (B, C, h, w)}``.
``check_level`` turns a level a head asks for but the backbone lacks into a one-line ``FeatureLevelError``.

Usage::

    from bench.models.pyramid import build_backbone, check_level
    bb = build_backbone("mit_b1")
    feats = bb.features(images)          # {"s4": (B, 64, H/4, W/4), ..., "s32": (B, 512, H/32, W/32)}
    check_level(bb, "s8", "tmanet", "model.feature_level")
"""

from __future__ import annotations

import difflib
import math

import timm
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import BenchError
from bench.models.backbone import Backbone, PretrainedWeightsError, _create_from_hub
from bench.models.mit import MIT_VARIANTS, MixTransformer
from bench.models.mit_checkpoint import load_mit_checkpoint

PYRAMID_STRIDES: tuple[int, ...] = (4, 8, 16, 32)
MIT_RELEASE_HINT = (
    "the ImageNet-1k MiT checkpoints released with SegFormer (github.com/NVlabs/SegFormer, 'mit_b0.pth' .. "
    "'mit_b5.pth') or mmsegmentation's converted ones"
)


class BackboneNameError(BenchError, ValueError):
    """A backbone name that is neither a Mix Transformer nor a timm model."""


class FeatureLevelError(BenchError, ValueError):
    """A head asks for a feature level its backbone does not have."""


def backbone_kind(name: str) -> str:
    """``"mit"``, ``"dilated"`` (a timm ResNet, built at output stride 8) or ``"timm"`` (a native-stride pyramid)."""
    if name in MIT_VARIANTS:
        return "mit"
    if not name.startswith("mit_") and timm.is_model(name):
        module = timm.models.model_entrypoint(name).__module__
        return "dilated" if module == "timm.models.resnet" else "timm"
    close = difflib.get_close_matches(name, [*MIT_VARIANTS, *timm.list_models()], n=4, cutoff=0.6)
    raise BackboneNameError(
        f"unknown backbone {name!r}: not a Mix Transformer ({', '.join(MIT_VARIANTS)}) nor a timm model"
        + (f"; did you mean {', '.join(close)}?" if close else "")
        + " (`python -c \"import timm; print(timm.list_models('swin*'))\"` lists timm's names)"
    )


def build_backbone(name: str, pretrained: bool = False, pretrained_path: str = "") -> nn.Module:
    """The backbone named ``name`` (module docstring): a dilated ``Backbone`` or a ``PyramidBackbone``."""
    if backbone_kind(name) == "dilated":
        return Backbone(name, pretrained=pretrained, pretrained_path=pretrained_path)
    return PyramidBackbone(name, pretrained=pretrained, pretrained_path=pretrained_path)


def _timm_pyramid(name: str, pretrained: bool) -> nn.Module:
    """timm ``features_only`` at native strides; Swin-like models accept any input size."""
    kwargs: dict = {"features_only": True}
    try:
        probe = dict(kwargs, strict_img_size=False)
        return _create_from_hub(name, probe) if pretrained else timm.create_model(name, **probe)
    except TypeError:  # a family without the argument (CNNs): any size works already
        return _create_from_hub(name, kwargs) if pretrained else timm.create_model(name, **kwargs)


class PyramidBackbone(nn.Module):
    """MiT or a timm feature pyramid: image (B, 3, H, W) -> {"s4": .., "s8": .., "s16": .., "s32": ..}.

    Attributes: ``levels`` {level: channels}, ``strides`` {level: stride}, ``default_levels`` (main, aux),
    ``load_report`` (after a local file: the MiT loader's summary, or timm's missing/unexpected lists).
    """

    def __init__(self, name: str, pretrained: bool = False, pretrained_path: str = "") -> None:
        super().__init__()
        self.name = name
        self.kind = backbone_kind(name)
        self.load_report: dict | None = None
        if self.kind == "mit":
            self.body = MixTransformer.from_name(name)
            if pretrained_path:
                self.load_report = load_mit_checkpoint(self.body, pretrained_path)
            elif pretrained:
                raise PretrainedWeightsError(
                    f"{name}: MiT weights are not downloadable through timm; download {MIT_RELEASE_HINT}, "
                    f"and set model.pretrained_path=/path/to/{name}.pth (or model.pretrained=false)"
                )
            self.strides = dict(zip((f"s{s}" for s in PYRAMID_STRIDES), PYRAMID_STRIDES))
            self.levels = dict(zip(self.strides, self.body.channels))
        else:
            self.body = _timm_pyramid(name, pretrained and not pretrained_path)
            if pretrained_path:
                self.load_report = Backbone.load_weights(self, pretrained_path)  # type: ignore[arg-type]
            info = self.body.feature_info
            self._timm_indices = [i for i, r in enumerate(info.reduction()) if r in PYRAMID_STRIDES]
            self.strides = {f"s{info.reduction()[i]}": info.reduction()[i] for i in self._timm_indices}
            self.levels = {f"s{info.reduction()[i]}": info.channels()[i] for i in self._timm_indices}
            self._nhwc = str(getattr(self.body, "output_fmt", "NCHW")).endswith("NHWC")
        names = list(self.levels)
        self.default_levels = (names[-1], names[-2] if len(names) > 1 else names[-1])

    def features(self, image: Tensor) -> dict[str, Tensor]:
        """(B, 3, H, W) -> {level: (B, C, ceil(H / stride), ceil(W / stride))} (through ``forward``: hooks run)."""
        return self(image)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        if self.kind == "mit":
            return self.body(image)
        height, width = image.shape[-2:]
        pad_h, pad_w = (-height) % PYRAMID_STRIDES[-1], (-width) % PYRAMID_STRIDES[-1]
        outs = self.body(F.pad(image, (0, pad_w, 0, pad_h)) if pad_h or pad_w else image)
        feats = {}
        for index, level in zip(self._timm_indices, self.levels):
            x = outs[index].permute(0, 3, 1, 2) if self._nhwc else outs[index]
            stride = self.strides[level]
            feats[level] = x[..., : math.ceil(height / stride), : math.ceil(width / stride)].contiguous()
        return feats


def check_level(backbone: nn.Module, level: str, model: str, key: str) -> str:
    """``level`` itself when ``backbone`` has it, else a ``FeatureLevelError`` listing the levels it has."""
    if level not in backbone.levels:
        have = ", ".join(
            f"{name} (stride {backbone.strides[name]}, {c} channels)" for name, c in backbone.levels.items()
        )
        raise FeatureLevelError(
            f"{model} reads feature level {level!r} ({key}), which backbone {backbone.name!r} does not have; "
            f"its levels: {have}"
        )
    return level


def resolve_levels(backbone: nn.Module, level: str, aux_level: str, model: str) -> tuple[str, str]:
    """(main, aux) levels: ``""`` means the backbone's default (its deepest level, and the one before it)."""
    main = check_level(backbone, level or backbone.default_levels[0], model, "model.feature_level")
    aux = check_level(backbone, aux_level or backbone.default_levels[1], model, "model.aux_feature_level")
    return main, aux

"""Which layout a checkpoint's keys are in, and what they say about the model (depth, memory length, classes).

    from bench.weights.layouts import detect_layout, CHECKPOINT_FORMATS
    layout = detect_layout(ckpt.state)                 # or detect_layout(state, "mmcv_resnet") to force a reading
    layout.format, layout.model                        # "mmseg", "tmanet"
    layout.describe()       # "official TMANet (mmseg layout), ResNet-50 (deep stem), T = 2, 19 classes"

Formats (``model.checkpoint_format``):

* ``mmseg``: a whole mmseg / official-TMANet model (``backbone.*``, ``decode_head.*``, ``auxiliary_head.*``);
  the decode head names the model: TMAHead (``memory_key_conv``) -> ``tmanet``, PSPHead (``psp_modules``) ->
  ``pspnet``, FCNHead with ``conv_cat`` (``num_convs=2, concat_input=True``) -> ``fcn``;
* ``mmcv_resnet``: an mmcv/mmseg ResNet backbone (``stem.*``, ``layer1.*``, with or without ``backbone.``), e.g.
  mmcv's ``resnet50_v1c`` ImageNet weights; forcing it on a whole mmseg model reads only its backbone;
* ``timm_resnet``: a timm / torchvision ResNet (``conv1.*``, ``layer1.*``; ``fc.*`` is left out);
* ``bench``: the suite's own names (``backbone.body.*``, ``classifier.*``); a checkpoint written by ``bench train``.

``auto`` (the default) detects the format from the keys; ``checkpoint_format`` decides where the keys allow two
readings (a whole model read as backbone weights only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import Tensor

from bench.constants import CHECKPOINT_FORMATS
from bench.weights.errors import LayoutError
from bench.weights.keymap import MMSEG_MODELS

BACKBONE_FORMATS: tuple[str, ...] = ("mmcv_resnet", "timm_resnet")

# ResNet depth from the block counts of layer1..4 (He et al. 2016, Table 1) and the block type
_DEPTHS: dict[tuple[tuple[int, ...], bool], int] = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}
_HEAD_NAMES = {"tmanet": "official TMANet", "pspnet": "mmseg PSPNet", "fcn": "mmseg FCN"}
_BLOCK = re.compile(r"(?:^|\.)layer(\d)\.(\d+)\.")


@dataclass(frozen=True)
class Backbone:
    """What a ResNet's keys say: blocks per stage, bottleneck or basic blocks, deep (V1c) stem, avg-down (V1d)."""

    blocks: tuple[int, ...]
    bottleneck: bool
    deep_stem: bool
    avg_down: bool

    @property
    def depth(self) -> int | None:
        return _DEPTHS.get((self.blocks, self.bottleneck))

    def timm_name(self) -> str:
        """The timm model with this structure: resnet50c (V1c deep stem), resnet101d (avg-down), resnet18, ..."""
        suffix = ("d" if self.avg_down else "c") if self.deep_stem else ""
        return f"resnet{self.depth or '?'}{suffix}"

    def describe(self) -> str:
        stem = "deep stem, avg-down" if self.avg_down else "deep stem" if self.deep_stem else "plain stem"
        return f"ResNet-{self.depth or '?'} ({stem})"


@dataclass(frozen=True)
class Layout:
    """A checkpoint's layout: ``format`` (one of ``CHECKPOINT_FORMATS`` but auto), ``model`` (the suite model
    the weights are for: tmanet / pspnet / fcn; None for a backbone or a suite checkpoint), and what the keys say.
    """

    format: str
    model: str | None
    backbone: Backbone | None
    memory_length: int | None = None
    num_classes: int | None = None
    has_aux: bool = False

    def describe(self) -> str:
        """One phrase: "official TMANet (mmseg layout), ResNet-50 (deep stem), T = 2, 19 classes"."""
        name = {"mmcv_resnet": "mmcv ResNet backbone", "timm_resnet": "timm ResNet backbone", "bench": "suite"}
        parts = [f"{_HEAD_NAMES[self.model]} (mmseg layout)" if self.model else name[self.format] + " checkpoint"]
        if self.backbone is not None:
            parts.append(self.backbone.describe())
        if self.memory_length is not None:
            parts.append(f"T = {self.memory_length}")
        if self.num_classes is not None:
            parts.append(f"{self.num_classes} classes")
        return ", ".join(parts)


def backbone_of(keys: list[str], prefix: str) -> Backbone | None:
    """The ResNet structure of the keys under ``prefix`` (timm / mmseg names agree below the stem)."""
    blocks: dict[int, set[int]] = {}
    for key in keys:
        found = _BLOCK.match(key[len(prefix) :]) if key.startswith(prefix) else None
        if found:
            blocks.setdefault(int(found.group(1)), set()).add(int(found.group(2)))
    if not blocks:
        return None
    names = {k[len(prefix) :] for k in keys if k.startswith(prefix)}
    return Backbone(
        blocks=tuple(len(blocks.get(i, ())) for i in (1, 2, 3, 4)),
        bottleneck="layer1.0.conv3.weight" in names,
        deep_stem="stem.0.weight" in names or "conv1.0.weight" in names,
        avg_down="layer2.0.downsample.2.weight" in names,
    )


def _mmseg_model(keys: list[str], path: object) -> str:
    heads = {k.split(".")[1] for k in keys if k.startswith("decode_head.")}
    if "memory_key_conv" in heads:
        return "tmanet"
    if "psp_modules" in heads:
        return "pspnet"
    if "conv_cat" in heads and "convs" in heads:
        return "fcn"
    raise LayoutError(
        f"{path} is an mmseg checkpoint of another model (its decode head has {', '.join(sorted(heads))}); the "
        f"suite reads official TMANet (TMAHead), mmseg PSPNet (PSPHead) and FCN (FCNHead, num_convs=2, "
        f"concat_input=True)"
    )


def _mmseg_layout(state: dict[str, Tensor], path: object) -> Layout:
    keys = list(state)
    model = _mmseg_model(keys, path)
    slots = {int(k.split(".")[3]) for k in keys if k.startswith("decode_head.memory_key_conv.0.")}
    classes = state.get("decode_head.conv_seg.weight")
    return Layout(
        "mmseg",
        model,
        backbone_of(keys, "backbone."),
        memory_length=len(slots) if model == "tmanet" else None,
        num_classes=int(classes.shape[0]) if classes is not None else None,
        has_aux=any(k.startswith("auxiliary_head.") for k in keys),
    )


def guess_format(keys: list[str]) -> str | None:
    """The format the keys are in (None: none of the known layouts)."""
    names = set(keys)
    if any(k.startswith("backbone.body.") for k in keys):  # first: SegFormer and CFFM keep decode_head.* names
        return "bench"
    if any(k.startswith("decode_head.") for k in keys):
        return "mmseg"
    if names & {"stem.0.weight", "backbone.stem.0.weight", "backbone.conv1.weight", "backbone.layer1.0.conv1.weight"}:
        return "mmcv_resnet"
    if names & {"conv1.weight", "conv1.0.weight"}:
        return "timm_resnet"
    return None


def detect_layout(state: dict[str, Tensor], checkpoint_format: str = "auto", path: object = "the checkpoint") -> Layout:
    """The layout of ``state`` (file keys); ``checkpoint_format`` other than auto forces a reading."""
    if checkpoint_format not in CHECKPOINT_FORMATS:
        choices = ", ".join(CHECKPOINT_FORMATS)
        raise LayoutError(f"unknown checkpoint_format {checkpoint_format!r}; choose one of {choices}")
    keys = list(state)
    found = guess_format(keys)
    wanted = found if checkpoint_format == "auto" else checkpoint_format
    if wanted is None:
        raise LayoutError(
            f"{path} has keys in none of the known layouts (e.g. {', '.join(keys[:3])}); the suite reads "
            f"official TMANet and mmseg PSPNet/FCN checkpoints, mmcv/timm ResNet backbones and its own checkpoints "
            f"(set model.checkpoint_format to one of {', '.join(CHECKPOINT_FORMATS[1:])} if they are one of these)"
        )
    if wanted == "mmseg" and found != "mmseg":
        raise LayoutError(f"{path} is not a whole mmseg model (no decode_head.* keys; it looks like {found}); {_SET}")
    if wanted == "bench" and found == "mmseg":  # a plugin model's own names may look like nothing known
        raise LayoutError(f"{path} is not a suite checkpoint (it has decode_head.* keys: mmseg); {_SET}")
    if wanted == "mmseg":
        return _mmseg_layout(state, path)
    if wanted == "bench":
        return Layout("bench", None, backbone_of(keys, "backbone.body."))
    prefix = "backbone." if any(k.startswith("backbone.") for k in keys) and wanted == "mmcv_resnet" else ""
    if found == "bench":
        prefix = "backbone.body."
    backbone = backbone_of(keys, prefix)
    if backbone is None:
        raise LayoutError(f"{path} has no ResNet backbone keys (layer1.0.*) to read as {wanted}; {_SET}")
    return Layout(wanted, None, backbone)


_SET = f"set model.checkpoint_format to auto or to the file's format ({', '.join(CHECKPOINT_FORMATS[1:])})"

__all__ = ["BACKBONE_FORMATS", "CHECKPOINT_FORMATS", "MMSEG_MODELS", "Backbone", "Layout", "backbone_of"]

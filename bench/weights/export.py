"""A suite model's weights in the mmseg layout, with the mmseg model config that reads them.

    from bench.weights.export import mmseg_checkpoint
    container = mmseg_checkpoint(model.state_dict(), classes, align_corners=True, pool_scales=(1, 2, 3, 6))
    torch.save(container, "pspnet_suite.pth")   # {"meta": {...}, "state_dict": {...}}, as mmcv save_checkpoint
    container["meta"]["model"]                  # dict(type="EncoderDecoder", backbone=dict(type="ResNetV1c", ...), ...)

Only the models with an mmseg counterpart export: ``tmanet`` with the official head (1x1+3x3 encoding, concat;
mmseg 0.x ``TMAHead`` of the official code), ``pspnet`` (``PSPHead``), ``fcn`` (``FCNHead``, num_convs=2,
concat_input=True). ``meta["model"]`` builds the same network in mmseg (``MODELS.build``; TMAHead only in the
official TMANet code), whose ``load_state_dict(strict=True)`` takes ``state_dict`` as it is. The caller writes the
file (atomically, with the run layer's writer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from bench.weights.errors import LayoutError
from bench.weights.keymap import MMSEG_MODELS, to_mmseg_key
from bench.weights.layouts import backbone_of
from bench.weights.mapping import SUITE_BACKBONE, suite_model
from bench.weights.structure import aggregation_of, encoding_of, memory_slots

MMSEG_BACKBONE = dict(
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    dilations=(1, 1, 2, 4),
    strides=(1, 2, 1, 1),
    norm_eval=False,
    style="pytorch",
    contract_dilation=True,
)  # configs/_base_/models/{pspnet,fcn,tmanet}_r50-d8.py


def _check_official(state: dict[str, Tensor], kind: str | None, model_name: str) -> str:
    if kind is None:
        raise LayoutError(
            f"{model_name} has no mmseg counterpart; the mmseg layout holds {', '.join(MMSEG_MODELS)} only"
        )
    if kind == "tmanet" and (encoding_of(state) != "1x1+3x3" or aggregation_of(state) != "concat"):
        raise LayoutError(
            f"{model_name} is a TMANet variant (encoding {encoding_of(state)}, aggregation "
            f"{aggregation_of(state)}) that the official TMAHead cannot hold; only encoding 1x1+3x3 with "
            f"aggregation concat exports"
        )
    return kind


def mmseg_state(state: dict[str, Tensor], model_name: str = "the model") -> dict[str, Tensor]:
    """The suite state dict ``state`` under mmseg's names (``backbone.stem.0.weight``, ``decode_head.*``)."""
    kind = _check_official(state, suite_model(state), model_name)
    out = {}
    for key, value in state.items():
        target = to_mmseg_key(key, kind)
        if target is None:
            raise LayoutError(f"{model_name}'s {key} has no place in the mmseg {kind} layout; it cannot be exported")
        out[target] = value
    return out


def _backbone_config(state: dict[str, Tensor]) -> dict[str, Any]:
    found = backbone_of(list(state), SUITE_BACKBONE)
    if found is None or found.depth is None:
        raise LayoutError("the model's backbone is not a ResNet of a standard depth; it has no mmseg config")
    kind = "ResNetV1d" if found.avg_down else "ResNetV1c" if found.deep_stem else "ResNet"
    return dict(type=kind, depth=found.depth, **MMSEG_BACKBONE)


def _decode_head(state: dict[str, Tensor], kind: str, pool_scales: Sequence[int]) -> dict[str, Any]:
    if kind == "tmanet":
        return dict(
            type="TMAHead",
            in_channels=int(state["query_key.0.0.weight"].shape[1]),
            sequence_num=memory_slots(state),
            key_channels=int(state["query_key.0.0.weight"].shape[0]),
            value_channels=int(state["query_value.0.0.weight"].shape[0]),
        )
    if kind == "pspnet":
        in_channels = int(state["psp.stages.0.1.0.weight"].shape[1])
        return dict(type="PSPHead", in_channels=in_channels, pool_scales=tuple(pool_scales))
    return dict(type="FCNHead", in_channels=int(state["convs.0.0.weight"].shape[1]), num_convs=2, concat_input=True)


def mmseg_model_config(
    state: dict[str, Tensor], align_corners: bool, pool_scales: Sequence[int] = (1, 2, 3, 6), dropout: float = 0.1
) -> dict[str, Any]:
    """The mmseg ``EncoderDecoder`` config of a suite state dict (BN as in eval; SyncBN for training in mmseg)."""
    kind = _check_official(state, suite_model(state), "the model")
    classes = int(state["classifier.1.weight"].shape[0])
    shared = dict(
        channels=int(state["bottleneck.0.weight"].shape[0]),
        in_index=3,
        dropout_ratio=dropout,
        num_classes=classes,
        norm_cfg=dict(type="BN", requires_grad=True),
        align_corners=align_corners,
    )
    aux = dict(
        type="FCNHead",
        in_channels=int(state["aux_head.0.0.weight"].shape[1]),
        in_index=2,
        channels=int(state["aux_head.0.0.weight"].shape[0]),
        num_convs=1,
        concat_input=False,
        **{k: v for k, v in shared.items() if k not in ("channels", "in_index")},
    )
    return dict(
        type="EncoderDecoder",
        backbone=_backbone_config(state),
        decode_head=_decode_head(state, kind, pool_scales) | shared,
        auxiliary_head=aux,
    )


def mmseg_checkpoint(
    state: dict[str, Tensor],
    classes: Sequence[str],
    align_corners: bool,
    pool_scales: Sequence[int] = (1, 2, 3, 6),
    dropout: float = 0.1,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``{"meta": ..., "state_dict": ...}`` as mmcv's ``save_checkpoint`` writes it; ``meta`` adds entries."""
    tensors = mmseg_state(state)
    info = {
        "CLASSES": tuple(classes),  # mmseg 0.x
        "dataset_meta": {"classes": tuple(classes)},  # mmseg 1.x / mmengine
        "model": mmseg_model_config(state, align_corners, pool_scales, dropout),
        "exported_by": "vss-bench",
    }
    return {"meta": info | (meta or {}), "state_dict": tensors}

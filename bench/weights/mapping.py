"""A checkpoint's weights under the suite's names: ``suite_state(state, layout)``.

Usage::

    from bench.weights.mapping import suite_state, suite_model
    mapped = suite_state(ckpt.state, layout)
    mapped.state        # {"backbone.body.conv1.0.weight": Tensor, "memory_keys.0.0.0.weight": Tensor, ...}
    mapped.origin       # suite key -> the file's key (for messages)
    mapped.unmapped     # file keys with no place in the suite's model (unexpected: strict loading fails on them)
    mapped.ignored      # file keys left out on purpose: an ImageNet classifier (fc.*), or the heads of a whole
                        # model read as backbone weights (checkpoint_format=mmcv_resnet / timm_resnet)
    suite_model(model.state_dict())   # "tmanet" / "pspnet" / "fcn", or None (no mmseg counterpart)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from torch import Tensor

from bench.weights.keymap import to_suite_key
from bench.weights.layouts import Layout

SUITE_BACKBONE = "backbone.body."


@dataclass
class Mapped:
    """Weights under suite names, where each came from, and the file keys that found no place or were left out."""

    state: dict[str, Tensor] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def add(self, file_key: str, suite_key: str | None, value: Tensor) -> None:
        if suite_key is None:
            self.unmapped.append(file_key)
        else:
            self.state[suite_key] = value
            self.origin[suite_key] = file_key


def suite_model(keys: Iterable[str]) -> str | None:
    """The mmseg-layout model a suite state dict is (by its module names): tmanet, pspnet, fcn, else None."""
    names = set(keys)
    if any(k.startswith("memory_keys.") for k in names) and any(k.startswith("query_key.") for k in names):
        return "tmanet"
    if any(k.startswith("psp.stages.") for k in names):
        return "pspnet"
    if any(k.startswith("convs.") for k in names) and not any(k.startswith("query_value.") for k in names):
        return "fcn"
    return None


def suite_state(state: dict[str, Tensor], layout: Layout) -> Mapped:
    """``state`` (file keys, in ``layout``) under the suite's module names."""
    mapped = Mapped()
    if layout.format == "bench":
        for key, value in state.items():
            mapped.add(key, key, value)
    elif layout.format == "mmseg":
        for key, value in state.items():
            mapped.add(key, to_suite_key(key, layout.model), value)
    else:
        backbone_state(state, layout.format, mapped)
    return mapped


def backbone_state(state: dict[str, Tensor], checkpoint_format: str, mapped: Mapped) -> None:
    """A backbone read from a backbone file, or from the backbone of a whole model (the rest ``ignored``)."""
    keys = list(state)
    if any(k.startswith(SUITE_BACKBONE) for k in keys):
        prefix = SUITE_BACKBONE  # the backbone of a suite checkpoint
    elif any(k.startswith("backbone.") for k in keys):
        prefix = "backbone."  # the backbone of a whole mmseg model, or a backbone saved with its prefix
    else:
        prefix = ""
    for key, value in state.items():
        if not key.startswith(prefix) or key[len(prefix) :].startswith("fc."):
            mapped.ignored.append(key)
            continue
        name = key[len(prefix) :]
        if checkpoint_format == "mmcv_resnet" and prefix != SUITE_BACKBONE:
            mapped.add(key, to_suite_key(f"backbone.{name}", None), value)
        else:
            mapped.add(key, SUITE_BACKBONE + name, value)

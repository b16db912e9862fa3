"""Strict fit of mapped weights to a model: every key present, none extra, every shape equal; else one line that
names the first offending key, both shapes and the likely cause.

    from bench.weights.mismatch import check_fit
    check_fit(mapped, model.state_dict(), layout, path, "TMANet")     # raises WeightsMismatchError

The cause is read from the structure both sides' keys describe, most telling first: the backbone (depth, stem),
the memory length T, the class count, then the head's settings (encoding, aggregation, key / value / bottleneck /
aux channels, pyramid bins). For example::

    ckpt.pth: decode_head.memory_key_conv.0.2.conv.weight (the model's memory_keys.2.0.0.weight, [64, 2048, 1, 1])
    is missing from the file: a T = 2 checkpoint in a T = 4 model; set model.memory_length=2
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

from torch import Tensor

from bench.weights.errors import WeightsMismatchError
from bench.weights.keymap import to_mmseg_key
from bench.weights.layouts import Layout, backbone_of
from bench.weights.mapping import SUITE_BACKBONE, Mapped
from bench.weights.structure import aggregation_of, encoding_of, memory_slots, out_channels, pool_bins

State = dict[str, Tensor]


# (model setting, what the keys say about it, the keys a message about it names first)
_SETTINGS: tuple[tuple[str, Callable[[State], object], str], ...] = (
    ("memory_length", memory_slots, r"^memory_"),
    ("encoding", encoding_of, r"^(query|memory)_"),
    ("aggregation", aggregation_of, r"^bottleneck\."),
    ("key_channels", partial(out_channels, key="query_key.0.0.weight"), r"^(query_key|memory_keys)\."),
    ("value_channels", partial(out_channels, key="query_value.0.0.weight"), r"^(query_value|memory_values)\."),
    ("channels", partial(out_channels, key="bottleneck.0.weight"), r"^(bottleneck|classifier|psp|convs)\."),
    ("aux_channels", partial(out_channels, key="aux_head.0.0.weight"), r"^aux_head\."),
    ("pool_scales", pool_bins, r"^psp\."),
)


def _likely_cause(mapped: State, own: State) -> tuple[str, str] | None:
    """(cause, the keys to name first) from the structure of the two key sets; None when they agree."""
    have, want = backbone_of(list(mapped), SUITE_BACKBONE), backbone_of(list(own), SUITE_BACKBONE)
    if have is not None and want is not None and have != want:
        return (
            f"a {have.describe()} checkpoint in a {want.describe()} model; set model.backbone={have.timm_name()}",
            r"^backbone\.",
        )
    slots, model_slots = memory_slots(mapped), memory_slots(own)
    if slots and model_slots and slots != model_slots:
        return f"a T = {slots} checkpoint in a T = {model_slots} model; set model.memory_length={slots}", r"^memory_"
    classes, model_classes = out_channels(mapped, "classifier.1.weight"), out_channels(own, "classifier.1.weight")
    if classes is not None and model_classes is not None and classes != model_classes:
        return _classes_cause(classes, model_classes), r"^(classifier|aux_head\.1)\."
    for name, read, keys in _SETTINGS:
        file_value, model_value = read(mapped), read(own)
        if file_value != model_value:
            return _setting_cause(name, file_value, model_value), keys
    return None


def _setting_cause(name: str, file_value: object, model_value: object) -> str:
    if name == "pool_scales":
        return f"the checkpoint's pyramid has {file_value} bins, the model's {model_value}; set model.pool_scales"
    if not file_value or not model_value:
        return "the checkpoint and the model have different heads; build the model the checkpoint was trained as"
    return f"the checkpoint has {name} = {file_value}, the model {model_value}; set model.{name}={file_value}"


def _classes_cause(classes: int, model_classes: int) -> str:
    hint = " (CamVid: data.camvid_protocol=tmanet12, void as class 0, as official TMANet)" if classes == 12 else ""
    return (
        f"{_a(classes)} {classes}-class checkpoint in {_a(model_classes)} {model_classes}-class model; evaluate it "
        f"with the {classes}-class protocol it was trained on{hint}"
    )


def _a(number: int) -> str:
    """The article before a number said aloud: "an 11-class", "an 8-class", "a 12-class"."""
    return "an" if str(number).startswith("8") or number in (11, 18) or 11_000 <= number < 12_000 else "a"


def _shape(t: Tensor) -> list[int]:
    return list(t.shape)


def _problems(mapped: Mapped, own: State, layout: Layout) -> list[tuple[str, str]]:
    """(suite key or file key, one phrase) for every offending key: other shapes, then missing, then unexpected."""
    found = []
    for key, value in mapped.state.items():
        if key in own and own[key].shape != value.shape:
            shapes = f"is {_shape(value)} in the file but {_shape(own[key])} in the model"
            found.append((key, f"{mapped.origin[key]} (the model's {key}) {shapes}"))
    for key in own:
        if key not in mapped.state:
            file_key = (to_mmseg_key(key, layout.model) if layout.format == "mmseg" else None) or key
            found.append((key, f"{file_key} (the model's {key}, {_shape(own[key])}) is missing from the file"))
    for key in [k for k in mapped.state if k not in own]:
        found.append((key, f"{mapped.origin[key]} ({_shape(mapped.state[key])}) has no place in the model (as {key})"))
    found += [(key, f"{key} has no place in the model's layout") for key in mapped.unmapped]
    return found


def check_fit(mapped: Mapped, own: State, layout: Layout, path: Path | str, model_name: str) -> None:
    """Nothing missing, nothing unexpected, every shape equal; else a one-line ``WeightsMismatchError``."""
    problems = _problems(mapped, own, layout)
    if not problems:
        return
    cause = _likely_cause(mapped.state, own)
    if cause is None:
        text = (
            f"the model {model_name} is not built like the checkpoint ({layout.describe()}); build the model "
            f"the checkpoint was trained as"
        )
        key, problem = problems[0]
    else:
        text, keys = cause
        key, problem = next((p for p in problems if re.search(keys, p[0])), problems[0])
    more = f" ({len(problems) - 1} more keys differ)" if len(problems) > 1 else ""
    raise WeightsMismatchError(f"{path}: {problem}{more}: {text}")

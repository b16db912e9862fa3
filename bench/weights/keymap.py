"""Key maps between the mmseg / official TMANet layout and the suite's module names, both ways.

    from bench.weights.keymap import to_suite_key, to_mmseg_key
    to_suite_key("decode_head.memory_key_conv.1.0.bn.weight", "tmanet")   # "memory_keys.0.1.1.weight"
    to_mmseg_key("memory_keys.0.1.1.weight", "tmanet")                    # "decode_head.memory_key_conv.1.0.bn.weight"
    to_suite_key("decode_head.aspp_modules.0.conv.weight", "pspnet")      # None: no place in the suite's PSPNet

The layouts (official TMANet ``mmseg/models/decode_heads/tma_head.py`` and ``mmseg/models/utils/custom.py`` at
wanghao9610/TMANet@1fc4784; mmseg ``PSPHead``, ``FCNHead``, ``ResNetV1c``): an mmcv ``ConvModule`` named P has
``P.conv.weight`` and ``P.bn.*``; the suite's ``ConvBNReLU`` (``bench.models.layers``) has ``P.0.weight`` and
``P.1.*``. ``SequenceConv`` is a list of T ConvModules, one per memory slot (slot 0 the oldest frame), stacked in
two stages (``memory_key_conv.{stage}.{slot}``); the suite nests the other way (``memory_keys.{slot}.{stage}``).
mmseg's deep stem ``stem.{0,1,3,4,6,7}`` is timm's ``conv1.{0,1,3,4,6}`` + ``bn1``; every other backbone key
(``layer{1..4}.{b}.conv{1,2,3}``, ``bn{1,2,3}``, ``downsample.{0,1,2}``, the plain stem's ``conv1``/``bn1``) has
the same name in both, under ``backbone.`` (mmseg) and ``backbone.body.`` (the suite).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

CONV_MODULE, PLAIN = "conv_module", "plain"
MMSEG_MODELS: tuple[str, ...] = ("tmanet", "pspnet", "fcn")


@dataclass(frozen=True)
class Rule:
    """A module named ``mmseg`` in the mmseg layout is ``suite`` in the suite; ``{i}``-style fields are integers.

    ``kind``: ``CONV_MODULE`` (ConvModule <-> ConvBNReLU: ``conv.weight`` <-> ``0.weight``, ``bn.*`` <-> ``1.*``)
    or ``PLAIN`` (the names below the module are the same).
    """

    mmseg: str
    suite: str
    kind: str = CONV_MODULE


_STEM = tuple(Rule(f"backbone.stem.{i}", f"backbone.body.conv1.{i}", PLAIN) for i in (0, 1, 3, 4, 6))
_BACKBONE = (*_STEM, Rule("backbone.stem.7", "backbone.body.bn1", PLAIN), Rule("backbone", "backbone.body", PLAIN))
_COMMON = (
    Rule("decode_head.conv_seg", "classifier.1", PLAIN),
    Rule("auxiliary_head.convs.0", "aux_head.0"),
    Rule("auxiliary_head.conv_seg", "aux_head.1.1", PLAIN),
)
_HEADS: dict[str, tuple[Rule, ...]] = {
    "tmanet": (
        Rule("decode_head.query_key_conv.{stage}", "query_key.{stage}"),
        Rule("decode_head.query_value_conv.{stage}", "query_value.{stage}"),
        Rule("decode_head.memory_key_conv.{stage}.{slot}", "memory_keys.{slot}.{stage}"),
        Rule("decode_head.memory_value_conv.{stage}.{slot}", "memory_values.{slot}.{stage}"),
        Rule("decode_head.bottleneck", "bottleneck"),
    ),
    "pspnet": (
        Rule("decode_head.psp_modules.{scale}.1", "psp.stages.{scale}.1"),
        Rule("decode_head.bottleneck", "bottleneck"),
    ),
    "fcn": (Rule("decode_head.convs.{conv}", "convs.{conv}"), Rule("decode_head.conv_cat", "bottleneck")),
}


def rules(model: str | None) -> tuple[Rule, ...]:
    """The rules of ``model`` ("tmanet", "pspnet", "fcn"; None: the backbone only), most specific first."""
    return (*_HEADS.get(model or "", ()), *_COMMON, *_BACKBONE) if model else _BACKBONE


@cache
def _pattern(template: str) -> re.Pattern[str]:
    """``"a.{x}.b"`` -> a regex matching ``"a.<int>.b.<rest>"`` with groups ``x`` and ``rest``."""
    parts = re.split(r"\{(\w+)\}", template)
    body = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>\\d+)" for i, p in enumerate(parts))
    return re.compile(f"^{body}\\.(?P<rest>.+)$")


def _convert_rest(rest: str, kind: str, to_suite: bool) -> str | None:
    if kind == PLAIN:
        return rest
    module, _, name = rest.partition(".")
    table = {"conv": "0", "bn": "1"} if to_suite else {"0": "conv", "1": "bn"}
    if module not in table or not name or (module in ("conv", "0") and name != "weight"):
        return None  # a ConvModule has no conv bias when a norm follows (mmcv bias='auto')
    return f"{table[module]}.{name}"


def _translate(key: str, model: str | None, to_suite: bool) -> str | None:
    for rule in rules(model):
        source, target = (rule.mmseg, rule.suite) if to_suite else (rule.suite, rule.mmseg)
        found = _pattern(source).match(key)
        if found is None:
            continue
        rest = _convert_rest(found.group("rest"), rule.kind, to_suite)
        if rest is None:
            return None
        fields = {k: v for k, v in found.groupdict().items() if k != "rest"}
        return f"{target.format(**fields)}.{rest}"
    return None


def to_suite_key(key: str, model: str | None) -> str | None:
    """The suite's name for mmseg key ``key`` of a ``model`` checkpoint (None: the suite has no such module)."""
    return _translate(key, model, to_suite=True)


def to_mmseg_key(key: str, model: str | None) -> str | None:
    """The mmseg name of the suite's key ``key`` of a ``model`` (None: mmseg's model has no such module)."""
    return _translate(key, model, to_suite=False)

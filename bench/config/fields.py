"""The config's building blocks: the field helpers the sections use, the check of one value against its field,
and ``ConfigError``.

    size: list[int] = listed([64, 64], 2, "frame size [H, W]")      # in a section of bench/config/schema.py
    rate: float = bounded(0.01, 0.0, help="initial learning rate")
    coerce("1e-3", float, "train.lr", {})                             # 0.001; a bad value: ConfigError
    build(TrainConfig, {"iters": 10}, "train.")                       # a section from a mapping (unknown keys: error)

``build`` makes one section; ``bench.config.loading.from_dict`` makes a whole ``Config`` and validates it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import field
from typing import Any

from bench.errors import BenchError


class ConfigError(BenchError, ValueError):
    """A configuration key, type or value is invalid; the message names the dotted key."""


def choice(default: Any, choices: tuple[Any, ...], help: str = "") -> Any:
    """A field whose value must be one of ``choices``."""
    return field(default=default, metadata={"choices": choices, "help": help})


def bounded(default: Any, lo: float | None = None, hi: float | None = None, help: str = "") -> Any:
    """A numeric field that must lie in ``[lo, hi]``."""
    return field(default=default, metadata={"range": (lo, hi), "help": help})


def described(default: Any, help: str) -> Any:
    """A plain field with a one-line description (``bench config --keys``)."""
    return field(default=default, metadata={"help": help})


def listed(default: list[Any], length: int | None = None, help: str = "") -> Any:
    """A list field, optionally of fixed ``length``."""
    return field(default_factory=lambda: list(default), metadata={"length": length, "help": help})


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _as_float(value: Any, key: str) -> float:
    """``value`` as a finite float; a string such as ``"1e-3"`` counts (YAML 1.1 reads it as a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ConfigError(f"{key}: expected a number (e.g. 0.01 or 1e-3), got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{key}: must be a finite number, got {value!r}; give a finite value")
    return number


def coerce(value: Any, tp: Any, key: str, meta: typing.Mapping[str, Any]) -> Any:
    """Check ``value`` against the annotation ``tp`` (and field metadata); return the normalised value."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return coerce(value, options[0], key, meta)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(
                f"{key}: expected a mapping with keys {', '.join(f.name for f in dataclasses.fields(tp))}, "
                f"got {value!r}"
            )
        return build(tp, value, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif tp is float:
        value = _as_float(value, key)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
    elif origin is list or tp is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp) or (Any,)
        if item_tp is not Any:
            value = [coerce(v, item_tp, f"{key}[{i}]", {}) for i, v in enumerate(value)]
        length = meta.get("length")
        if length is not None and len(value) != length:
            raise ConfigError(f"{key}: expected a list of {length} values, got {value!r}")
    elif origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        value = dict(value)
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}: invalid value {value!r}; valid choices: {', '.join(map(str, meta['choices']))}")
    if "range" in meta:
        lo, hi = meta["range"]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            raise ConfigError(f"{key}: value {value!r} is outside the valid range {bounds}")
    return value


def build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """Dataclass ``cls`` from ``values`` (missing keys keep defaults; defaults are checked too); unknown keys are
    errors naming the valid ones. Checks across fields are ``bench.config.validation.validate``'s."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]}; valid keys under {prefix.rstrip('.') or 'the top level'}: "
            f"{', '.join(fields)}"
        )
    kwargs = {name: coerce(v, hints[name], prefix + name, fields[name].metadata) for name, v in values.items()}
    obj = cls(**kwargs)
    for name, f in fields.items():  # defaults are checked too, so a bad default cannot hide
        if name not in values and not dataclasses.is_dataclass(hints[name]):
            coerce(getattr(obj, name), hints[name], prefix + name, f.metadata)
    return obj


@functools.cache
def field_specs(cls: type) -> dict[str, tuple[Any, typing.Mapping[str, Any]]]:
    """``{field name: (type annotation, metadata)}`` of a config dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata) for f in dataclasses.fields(cls)}


class Checked:
    """Base of the config sections (``class TrainConfig(Checked, prefix="train.")``): every assignment is checked
    like a YAML value, at once.

    ``cfg.train.iters = "ten"`` raises ``ConfigError("train.iters: expected an integer ...")``, ``cfg.train.lr = 1``
    stores ``1.0``, ``cfg.train.itres = 5`` names the valid keys. Checks across fields stay in ``validate``.
    """

    _prefix: typing.ClassVar[str] = ""  # the dotted prefix of the section's keys, for messages ("train.")

    def __init_subclass__(cls, prefix: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._prefix = prefix

    def __setattr__(self, name: str, value: Any) -> None:
        specs = field_specs(type(self))
        key = type(self)._prefix + name
        if name not in specs:
            raise ConfigError(
                f"unknown key {key}; valid keys under {key.rpartition('.')[0] or 'the top level'}: {', '.join(specs)}"
            )
        tp, meta = specs[name]
        if not (dataclasses.is_dataclass(tp) and isinstance(value, tp)):
            value = coerce(value, tp, key, meta)
        object.__setattr__(self, name, value)

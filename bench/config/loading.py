"""Loading a config: defaults, then a YAML file (with its ``base:`` chain), then dotted overrides; checked.

    cfg = load_config("configs/synthetic_tmanet.yaml", ["model.memory_length=4", "train.iters=200"])
    print(to_yaml(cfg))                                  # what `bench config ...` prints
    cfg = from_dict(Config, values)                      # a whole config from a mapping, validated

Unknown keys, wrong types and invalid values raise ``ConfigError`` naming the dotted key and listing the valid
keys or choices; so do malformed YAML, repeated keys, non-finite numbers, and values that only fail together
(``validate``). ``load_config`` also checks the device exists here (``check_device``).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import yaml

from bench.config.fields import ConfigError, build
from bench.config.files import parse_yaml, read_yaml_with_base
from bench.config.schema import Config
from bench.config.validation import check_device, validate


def from_dict(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``values`` (missing keys keep defaults); unknown keys are errors. A whole
    ``Config`` is validated too (``validate``)."""
    obj = build(cls, values, prefix)
    if cls is Config:
        validate(obj)
    return obj


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML, in field order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def parse_override(text: str) -> tuple[str, Any]:
    """``"model.memory_length=4"`` -> ``("model.memory_length", 4)``; the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    value = parse_yaml(raw, f"override {text!r}") if raw.strip() else ""
    return key, value


def set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    """Set ``values[a][b][c] = value`` for ``key = "a.b.c"``, creating mappings on the way."""
    node = values
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def dotted_items(values: dict[str, Any], keep: typing.Collection[str] = (), prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> ``{"model.flow.source": "raft", ...}``, the inverse of ``set_dotted`` and the one config
    flattener (run identities, trackers, report frames). An empty mapping, and one under a key in ``keep``
    (``options``: a plugin's own arguments), stays one value."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in keep:
            flat.update(dotted_items(value, keep, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def apply_overrides(values: dict[str, Any], overrides: typing.Iterable[str | tuple[str, Any]]) -> dict[str, Any]:
    """Apply ``key=value`` strings or ``(key, value)`` pairs to a nested dict (copied)."""
    values = json.loads(json.dumps(values))
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        set_dotted(values, key, value)
    return values


def load_config(path: str | Path | None = None, overrides: typing.Iterable[str | tuple[str, Any]] = ()) -> Config:
    """Defaults, then the YAML file (with its ``base:`` chain), then the dotted overrides; checked, and the
    device must exist on this machine."""
    values = read_yaml_with_base(path) if path else {}
    cfg = from_dict(Config, apply_overrides(values, overrides))
    check_device(cfg.device)
    return cfg


def help_table(cls: type = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, help) rows for every field, for ``bench config --keys``."""
    rows: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            rows += help_table(hints[f.name], f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        text = f.metadata.get("help", "")
        if "choices" in f.metadata:
            text = (text + "; " if text else "") + "one of " + " | ".join(map(str, f.metadata["choices"]))
        rows.append((prefix + f.name, json.dumps(default), text))
    return rows

"""Typed experiment configuration: dataclass defaults, YAML files that override them, dotted overrides.

    cfg = load_config("configs/synthetic_tmanet.yaml", ["model.memory_length=4", "train.iters=200"])
    print(to_yaml(cfg))                                  # what `bench config ...` prints

A YAML file may name a parent with ``base: other.yaml`` (relative to the file); its keys override the
parent's. Unknown keys, wrong types and invalid values raise ``ConfigError`` naming the dotted key and
listing the valid keys or choices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration key, type or value is invalid; the message names the dotted key."""


def choice(default: Any, choices: tuple[Any, ...], help: str = "") -> Any:
    """A field whose value must be one of ``choices``."""
    return field(default=default, metadata={"choices": choices, "help": help})


def bounded(default: Any, lo: float | None = None, hi: float | None = None, help: str = "") -> Any:
    """A numeric field that must lie in ``[lo, hi]``."""
    return field(default=default, metadata={"range": (lo, hi), "help": help})


def listed(default: list[Any], length: int | None = None, help: str = "") -> Any:
    """A list field, optionally of fixed ``length``."""
    return field(default_factory=lambda: list(default), metadata={"length": length, "help": help})


@dataclass
class SyntheticConfig:
    """The procedural synthetic video dataset (the default; no download)."""

    size: list[int] = listed([64, 64], 2, "frame size [H, W]")
    num_classes: int = bounded(6, 2, 32)
    train_clips: int = bounded(256, 1)
    val_clips: int = bounded(64, 1)
    clip_length: int = bounded(10, 2, 64, "frames generated per clip; >= memory_length + 2")
    noise: float = bounded(0.0, 0.0, 2.0, "std of Gaussian noise on the current frame ([0, 1] scale)")
    occluder_prob: float = bounded(0.0, 0.0, 1.0, "chance of an occluding block on the current frame")
    dropout_prob: float = bounded(0.0, 0.0, 1.0, "fraction of current-frame pixels dropped")
    camera_motion: float = bounded(2.0, 0.0, 16.0, "max camera translation, pixels per frame")
    blur: float = bounded(0.0, 0.0, 16.0, "Gaussian blur sigma (pixels) of the current frame")
    current_cue: str = choice("hidden", ("hidden", "visible"), "class hue in the current frame; visible = negative control")
    cue_prob: float = bounded(0.5, 0.0, 1.0, "chance that an object shows its class hue in a memory frame")
    object_speed: float = bounded(0.12, 0.0, 1.0, "object speed, fraction of the shorter side per frame")
    classes_per_clip: int = bounded(1, 1, 3, "distinct classes among a clip's 2..3 objects; > 1 needs instance matching")
    seed: int = 0


@dataclass
class DataConfig:
    """Which dataset, where it lives, and how clips are augmented (tmanet.md §3)."""

    dataset: str = choice("synthetic", ("synthetic", "cityscapes", "camvid"))
    root: str = ""
    train_split: str = "train"
    val_split: str = "val"
    crop_size: list[int] = listed([64, 64], 2, "training crop [H, W]")
    base_size: list[int] = listed([], None, "resize reference [H, W] before random scaling (mmseg img_scale); [] = native")
    scale_range: list[float] = listed([0.5, 2.0], 2)
    cat_max_ratio: float = bounded(0.75, 0.0, 1.0)
    flip: bool = True
    photometric: bool = True
    num_workers: int = bounded(0, 0, 64)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class FlowConfig:
    """Optical flow for the flow-warp baseline (passed to it as ``flow_<field>``)."""

    source: str = choice("raft", ("raft", "ground_truth"))
    raft: str = choice("small", ("small", "large"))
    weights: str = field(default="", metadata={"help": "'' = random init, 'default' = torchvision weights, or a local .pth path"})
    iters: int = bounded(12, 1, 64)
    freeze: bool = True
    fusion: str = choice("netwarp", ("netwarp", "concat"))


@dataclass
class ModelConfig:
    """The model: a registered name plus the arguments its factory accepts (tmanet.md §1)."""

    name: str = "tmanet"
    backbone: str = "resnet50"
    pretrained: bool = False
    pretrained_path: str = ""
    memory_length: int = bounded(2, 0, 8, "past frames read (Cityscapes 2, CamVid 4 in the official configs)")
    aggregation: str = choice("concat", ("concat", "sum"))
    encoding: str = choice("1x1+3x3", ("1x1", "3x3", "1x1+3x3"))
    key_channels: int = bounded(64, 1)
    value_channels: int = bounded(256, 1)
    channels: int = bounded(512, 1)
    aux_channels: int = bounded(256, 1)
    dropout: float = bounded(0.1, 0.0, 1.0)
    attention: str = choice("sdpa", ("sdpa", "reference"))
    align_corners: bool = False
    flow: FlowConfig = field(default_factory=FlowConfig)
    options: dict = field(default_factory=dict, metadata={"help": "extra keyword arguments for a plugin model"})


@dataclass
class TrainConfig:
    """The shared training recipe (tmanet.md §3: SGD 0.01/0.9/5e-4, poly 0.9, min lr 1e-4, aux 0.4)."""

    iters: int = bounded(80000, 0)
    batch_size: int = bounded(8, 1)
    lr: float = bounded(0.01, 0.0)
    momentum: float = bounded(0.9, 0.0, 1.0)
    weight_decay: float = bounded(5e-4, 0.0)
    poly_power: float = bounded(0.9, 0.0)
    min_lr: float = bounded(1e-4, 0.0)
    aux_weight: float = bounded(0.4, 0.0)
    # mmseg averages the loss over all pixels, ignored ones included (tmanet.md §1.8)
    loss_average: str = choice("all_pixels", ("all_pixels", "valid_pixels"))
    grad_clip: float = bounded(0.0, 0.0, help="max gradient norm; 0 = off")
    amp: str = choice("none", ("none", "bf16", "fp16"), "mixed precision, CUDA only")
    sync_bn: bool = False
    checkpoint_every: int = bounded(1000, 1)
    log_every: int = bounded(50, 1)
    eval_every: int = bounded(0, 0, help="iterations between validations; 0 = only at the end")
    seed: int = 0
    deterministic: bool = True


@dataclass
class EvalConfig:
    """Evaluation: whole-image or sliding-window inference, and temporal consistency."""

    mode: str = choice("whole", ("whole", "slide"))
    crop_size: list[int] = listed([769, 769], 2)
    stride: list[int] = listed([513, 513], 2)
    batch_size: int = bounded(1, 1)
    temporal_consistency: bool = True
    tc_flow: str = choice("ground_truth", ("ground_truth", "raft"), "flow used to warp t-1 predictions for TC")
    tc_raft_weights: str = ""
    max_images: int = bounded(0, 0, help="0 = the whole split")


@dataclass
class LaunchConfig:
    """Where runs execute: this machine or SLURM through submitit."""

    launcher: str = choice("local", ("local", "slurm"))
    max_parallel: int = bounded(1, 1)
    partition: str = ""
    account: str = ""
    qos: str = ""
    time_min: int = bounded(60, 1, help="SLURM time limit; keep >= 11 so submitit treats USR2 as preemption")
    nodes: int = bounded(1, 1)
    gpus_per_node: int = bounded(0, 0)
    cpus_per_task: int = bounded(2, 1)
    mem_gb: int = bounded(8, 1)
    constraint: str = ""
    sbatch_extra: dict = field(default_factory=dict, metadata={"help": "extra sbatch options, e.g. {'exclude': 'node3'}"})
    array_parallelism: int = bounded(64, 1)
    folder: str = "results/slurm"
    latency: bool = field(default=False, metadata={"help": "after training, measure per-frame latency into the record"})
    latency_frames: int = bounded(30, 1, help="timed frames per mode for that measurement")


@dataclass
class Config:
    """A whole experiment."""

    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})
    plugins: list[str] = listed([], None, "modules imported before the model is built")
    output_root: str = "results/runs"
    run_dir: str = ""
    checkpoint: str = field(default="", metadata={"help": "checkpoint to evaluate (bench eval)"})

    def resolved_run_dir(self) -> Path:
        """``run_dir`` if set, else ``output_root/run_id``."""
        return Path(self.run_dir) if self.run_dir else Path(self.output_root) / run_id(self)


# Fields that do not change what a run computes; they stay out of the run id.
NON_RESULT_KEYS: tuple[str, ...] = ("name", "launch", "device", "output_root", "run_dir", "checkpoint")


# --------------------------------------------------------------------------------------------------
# dict <-> dataclass with checking


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, meta: typing.Mapping[str, Any]) -> Any:
    """Check ``value`` against the annotation ``tp`` (and field metadata); return the normalised value."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0], key, meta)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping with keys {', '.join(f.name for f in dataclasses.fields(tp))}, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
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
            value = [_coerce(v, item_tp, f"{key}[{i}]", {}) for i, v in enumerate(value)]
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


def from_dict(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``values`` (missing keys keep defaults); unknown keys are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key {prefix}{unknown[0]}; valid keys under {prefix.rstrip('.') or 'the top level'}: "
                          f"{', '.join(fields)}")
    kwargs = {name: _coerce(v, hints[name], prefix + name, fields[name].metadata) for name, v in values.items()}
    obj = cls(**kwargs)
    for name, f in fields.items():  # defaults are checked too, so a bad default cannot hide
        if name not in values and not dataclasses.is_dataclass(hints[name]):
            _coerce(getattr(obj, name), hints[name], prefix + name, f.metadata)
    return obj


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML, in field order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


# --------------------------------------------------------------------------------------------------
# files and overrides


def read_yaml_with_base(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML config file, merging it over its ``base:`` file (recursively)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in _seen:
        raise ConfigError(f"config files include each other in a cycle: {' -> '.join(map(str, _seen + (path,)))}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    parent = read_yaml_with_base(path.parent / base, _seen + (path.resolve(),))
    return deep_merge(parent, data)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``: mappings merge key by key, other values replace."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in ("options", "sbatch_extra"):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> tuple[str, Any]:
    """``"model.memory_length=4"`` -> ``("model.memory_length", 4)``; the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: cannot parse the value ({err})") from err
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


def apply_overrides(values: dict[str, Any], overrides: typing.Iterable[str | tuple[str, Any]]) -> dict[str, Any]:
    """Apply ``key=value`` strings or ``(key, value)`` pairs to a nested dict (copied)."""
    values = json.loads(json.dumps(values))
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        set_dotted(values, key, value)
    return values


def load_config(path: str | Path | None = None, overrides: typing.Iterable[str | tuple[str, Any]] = ()) -> Config:
    """Defaults, then the YAML file (with its ``base:`` chain), then the dotted overrides; checked."""
    values = read_yaml_with_base(path) if path else {}
    return from_dict(Config, apply_overrides(values, overrides))


def config_hash(cfg: Config) -> str:
    """SHA-1 of the canonical JSON of the result-relevant part of ``cfg``."""
    values = {k: v for k, v in to_dict(cfg).items() if k not in NON_RESULT_KEYS}
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()


def run_id(cfg: Config) -> str:
    """Stable id of a run: ``{model name}-{config hash[:10]}``."""
    return f"{cfg.model.name}-{config_hash(cfg)[:10]}"


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

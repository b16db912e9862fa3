"""Typed experiment configuration: dataclass defaults, YAML files that override them, dotted overrides.

    cfg = load_config("configs/synthetic_tmanet.yaml", ["model.memory_length=4", "train.iters=200"])
    print(to_yaml(cfg))                                  # what `bench config ...` prints

A YAML file may name a parent with ``base: other.yaml`` (relative to the file); its keys override the
parent's. Unknown keys, wrong types and invalid values raise ``ConfigError`` naming the dotted key and
listing the valid keys or choices; so do malformed YAML, repeated keys, non-finite numbers, and values that
only fail together (``validate``). ``load_config`` also checks the device exists here (``check_device``).
Assigning to a loaded config is checked the same way, at once (``Checked``: ``cfg.train.iters = "ten"`` raises).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.constants import FLOW_SOURCES, MIN_FEATURE_CELLS, OUTPUT_STRIDE


class ConfigError(ValueError):
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


class Checked:
    """Base of the config sections: every assignment is checked like a YAML value, at once.

    ``cfg.train.iters = "ten"`` raises ``ConfigError("train.iters: expected an integer ...")``, ``cfg.train.lr = 1``
    stores ``1.0``, ``cfg.train.itres = 5`` names the valid keys. Checks across fields stay in ``validate``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        specs = _field_specs(type(self))
        key = _SECTION.get(type(self).__name__, "") + name
        if name not in specs:
            raise ConfigError(
                f"unknown key {key}; valid keys under {key.rpartition('.')[0] or 'the top level'}: {', '.join(specs)}"
            )
        tp, meta = specs[name]
        if not (dataclasses.is_dataclass(tp) and isinstance(value, tp)):
            value = _coerce(value, tp, key, meta)
        object.__setattr__(self, name, value)


@dataclass
class SyntheticConfig(Checked):
    """The procedural synthetic video dataset (the default; no download)."""

    size: list[int] = listed([64, 64], 2, "frame size [H, W]")
    num_classes: int = bounded(6, 2, 32, "classes, the background (class 0) included")
    train_clips: int = bounded(256, 1, help="clips in the training split")
    val_clips: int = bounded(64, 1, help="clips in the validation split")
    clip_length: int = bounded(10, 2, 64, "frames generated per clip; >= memory_length + 2")
    noise: float = bounded(0.0, 0.0, 2.0, "std of Gaussian noise on the current frame ([0, 1] scale)")
    occluder_prob: float = bounded(0.0, 0.0, 1.0, "chance of an occluding block on the current frame")
    dropout_prob: float = bounded(0.0, 0.0, 1.0, "fraction of current-frame pixels dropped")
    camera_motion: float = bounded(2.0, 0.0, 16.0, "max camera translation, pixels per frame")
    blur: float = bounded(0.0, 0.0, 16.0, "Gaussian blur sigma (pixels) of the current frame")
    current_cue: str = choice(
        "hidden", ("hidden", "visible"), "class hue in the current frame; visible = negative control"
    )
    cue_prob: float = bounded(0.5, 0.0, 1.0, "chance that an object shows its class hue in a memory frame")
    object_speed: float = bounded(0.12, 0.0, 1.0, "object speed, fraction of the shorter side per frame")
    classes_per_clip: int = bounded(
        1, 1, 3, "distinct classes among a clip's 2..3 objects; > 1 needs instance matching"
    )
    val_video_length: int = bounded(
        0,
        0,
        256,
        "frames of each validation video in whole-video evaluation, every frame labelled (mVC_C needs more than C); "
        "0 = clip_length",
    )
    seed: int = described(0, "seed of the generated videos (the same seed = the same dataset)")


@dataclass
class DataConfig(Checked):
    """Which dataset, where it lives, and how clips are augmented (tmanet.md §3)."""

    dataset: str = choice("synthetic", ("synthetic", "cityscapes", "camvid", "vspw"), "which dataset")
    root: str = described("", "dataset folder (README: what to download and where); unused by synthetic")
    train_split: str = described("train", "split used for training")
    val_split: str = described("val", "split used for evaluation")
    crop_size: list[int] = listed([64, 64], 2, "training crop [H, W]")
    base_size: list[int] = listed(
        [], None, "resize reference [H, W] before random scaling (mmseg img_scale); [] = native"
    )
    scale_range: list[float] = listed([0.5, 2.0], 2, "random rescale ratio [min, max] of base_size before the crop")
    cat_max_ratio: float = bounded(
        0.75, 0.0, 1.0, "redraw a crop (up to 10 times) while one class covers more than this"
    )
    flip: bool = described(True, "random horizontal flip (the same for every frame of a clip)")
    photometric: bool = described(True, "random brightness/contrast/saturation/hue, drawn per frame")
    # -1 = auto (bench.run.batches.resolve_num_workers): min(4, CPUs per process) on CUDA, 0 on CPU
    num_workers: int = bounded(-1, -1, 64, "data-loader worker processes per process; -1 = auto")
    # memory frames (bench/data/memory.py); the default is the official {t-T .. t-1} (tmanet.md §2.1)
    memory_offsets: list[int] = listed(
        [], None, "memory frame offsets, oldest first, e.g. [-4, -3, -2, -1]; [] = -T*k .. -k with k = memory_stride"
    )
    memory_stride: int = bounded(1, 1, help="k: offsets -T*k .. -k (when memory_offsets is [])")
    memory_sampling: str = choice(
        "fixed",
        ("fixed", "random"),
        "random = official random_select: T distinct "
        "offsets from -sequence_range..-1, drawn once per image at dataset construction",
    )
    sequence_range: int = bounded(0, 0, help="range of the random draw; 0 = T (deterministic, as released)")
    memory_seed: int = bounded(0, 0, help="seed of the random memory draw")
    memory_source: str = choice(
        "video",
        ("video", "labelled"),
        "video = raw video frames; labelled = the previous "
        "labelled frames of the same video and split (CamVid SegNet release)",
    )
    first_frames: str = choice(
        "repeat",
        ("repeat", "skip"),
        "labelled frames with too few past frames: repeat "
        "the earliest frame (TMANet author, I#23) or skip them (count logged)",
    )
    camvid_protocol: str = choice(
        "segnet11", ("segnet11", "full11", "tmanet12"), "CamVid classes and label resolution (README, CamVid)"
    )
    # VSPW and the conventions of the CFFM line (bench/data/vspw.py, bench/data/memory.py)
    memory_preset: str = choice(
        "none",
        ("none", "cffm"),
        "cffm = CFFM's reference frames t-9, t-6, t-3 (model.memory_length=3) with its table for a video's first 9 "
        "frames (bench/data/memory.py)",
    )
    reverse_prob: float = bounded(
        0.0, 0.0, 1.0, "training: chance that a clip is read backwards in time (memory from later frames; CFFM 0.5)"
    )
    train_sampling: str = choice(
        "frame",
        ("frame", "video"),
        "training items: every labelled frame, or one random labelled frame per video and pass (CFFM's VSPW sampler)",
    )
    missing_files: str = choice(
        "error",
        ("error", "skip"),
        "a missing or 0-byte frame or mask (the VSPW 480p release has both): a one-line error naming it, or skip "
        "that frame and count it in the record",
    )
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        """Memory keys that contradict each other are errors (lengths are checked against T in bench.data.memory)."""
        offsets = list(self.memory_offsets)
        if offsets and (any(o >= 0 for o in offsets) or any(a >= b for a, b in zip(offsets, offsets[1:]))):
            raise ConfigError(
                f"data.memory_offsets: {offsets} must be negative and strictly increasing (oldest "
                f"first), e.g. [-4, -3, -2, -1]"
            )
        if offsets and self.memory_stride != 1:
            raise ConfigError("data.memory_offsets and data.memory_stride both set; give one of them")
        if self.memory_sampling == "random" and (offsets or self.memory_stride != 1):
            raise ConfigError(
                "data.memory_sampling=random draws its own offsets; leave data.memory_offsets and "
                "data.memory_stride at their defaults ([] and 1)"
            )
        if self.memory_preset != "none" and (offsets or self.memory_stride != 1 or self.memory_sampling != "fixed"):
            raise ConfigError(
                f"data.memory_preset={self.memory_preset} sets the memory offsets itself; leave data.memory_offsets, "
                "data.memory_stride and data.memory_sampling at their defaults ([], 1, fixed)"
            )


@dataclass
class FlowConfig(Checked):
    """Optical flow for the flow-based models (passed to them as ``flow_<field>``)."""

    source: str = choice(
        "raft",
        FLOW_SOURCES,
        "raft (needs weights), dis / farneback (OpenCV, no weights), ground_truth (synthetic only)",
    )
    raft: str = choice("small", ("small", "large"), "torchvision RAFT variant")
    weights: str = field(
        default="", metadata={"help": "'' = random init, 'default' = torchvision weights, or a local .pth path"}
    )
    iters: int = bounded(12, 1, 64, "RAFT refinement iterations")
    freeze: bool = described(True, "keep RAFT fixed (eval mode, no gradients)")
    fusion: str = choice("netwarp", ("netwarp", "concat"), "how warped memory features join the current ones")


@dataclass
class ModelConfig(Checked):
    """The model: a registered name plus the arguments its factory accepts (tmanet.md §1)."""

    name: str = described("tmanet", "registered model name (bench models lists them)")
    # deep stem V1c, the official backbone (tmanet.md §1.2)
    backbone: str = described("resnet50c", "timm backbone name (resnet50c = deep-stem ResNet-50, as the paper)")
    pretrained: bool = described(False, "start from ImageNet weights (pretrained_path, else a timm download)")
    pretrained_path: str = described("", "local backbone weights (.pth / .safetensors), loaded non-strictly")
    memory_length: int = bounded(2, 0, 8, "past frames read (Cityscapes 2, CamVid 4 in the official configs)")
    aggregation: str = choice("concat", ("concat", "sum"), "how the memory read joins the current frame")
    encoding: str = choice("1x1+3x3", ("1x1", "3x3", "1x1+3x3"), "key/value encoder convolutions")
    key_channels: int = bounded(64, 1, help="channels of attention keys and queries")
    value_channels: int = bounded(256, 1, help="channels of attention values")
    channels: int = bounded(512, 1, help="channels of the decode head bottleneck")
    aux_channels: int = bounded(256, 1, help="channels of the auxiliary (layer3) head")
    dropout: float = bounded(0.1, 0.0, 1.0, "dropout before the classifier")
    attention: str = choice(
        "sdpa", ("sdpa", "reference"), "sdpa = fused attention kernel; reference = the explicit matmul"
    )
    window_size: int = bounded(
        9,
        1,
        help="local_tmanet: odd side of the memory-read window on the feature map "
        "(<= 2*max(h, w) - 1; that size equals tmanet's global read)",
    )
    pool_scales: list[int] = listed([1, 2, 3, 6], None, "pspnet: pyramid pooling bin sizes (mmseg pspnet_r50-d8.py)")
    align_corners: bool = described(False, "bilinear resizing convention of the head")
    flow: FlowConfig = field(default_factory=FlowConfig)
    keyframe_interval: int = bounded(
        5,
        1,
        16,
        "k: keyframe models (dff, accel) run the full network every k-th "
        "frame (DFF/Accel on Cityscapes: 5); 1 = every frame",
    )
    update_backbone: str = field(
        default="resnet18",
        metadata={"help": "accel: the light per-frame backbone of the update branch (a timm ResNet)"},
    )
    options: dict = field(default_factory=dict, metadata={"help": "extra keyword arguments for a plugin model"})


@dataclass
class TrainConfig(Checked):
    """The shared training recipe (tmanet.md §3: SGD 0.01/0.9/5e-4, poly 0.9, min lr 1e-4, aux 0.4)."""

    iters: int = bounded(80000, 0, help="training iterations (optimizer steps)")
    batch_size: int = bounded(
        8, 1, help="the GLOBAL batch: clips per step across all GPUs, split evenly over DDP ranks"
    )
    lr: float = bounded(0.01, 0.0, help="initial SGD learning rate")
    momentum: float = bounded(0.9, 0.0, 1.0, "SGD momentum")
    weight_decay: float = bounded(5e-4, 0.0, help="SGD weight decay")
    poly_power: float = bounded(0.9, 0.0, help="poly schedule: lr = (lr - min_lr) * (1 - it/iters)^power + min_lr")
    min_lr: float = bounded(1e-4, 0.0, help="learning rate at the end of the poly schedule")
    aux_weight: float = bounded(0.4, 0.0, help="weight of the auxiliary head loss")
    # mmseg averages the loss over all pixels, ignored ones included (tmanet.md §1.8)
    loss_average: str = choice(
        "all_pixels", ("all_pixels", "valid_pixels"), "cross-entropy mean over all pixels (mmseg) or non-ignored ones"
    )
    grad_clip: float = bounded(0.0, 0.0, help="max gradient norm; 0 = off")
    # the optimiser of the SegFormer / CFFM line (VSS-CFFM local_configs/cffm/*/cffm.*.480x480.vspw2.160k.py)
    optimizer: str = choice(
        "sgd",
        ("sgd", "adamw"),
        "sgd (momentum, weight_decay: TMANet) or adamw (adamw_beta1/2, weight_decay: SegFormer, CFFM)",
    )
    adamw_beta1: float = bounded(0.9, 0.0, 1.0, "adamw: first-moment decay (beta1)")
    adamw_beta2: float = bounded(0.999, 0.0, 1.0, "adamw: second-moment decay (beta2)")
    head_lr_mult: float = bounded(
        1.0, 0.0, help="lr multiplier of every parameter outside model.backbone (mmseg custom_keys head; CFFM 10)"
    )
    norm_decay_mult: float = bounded(
        1.0, 0.0, help="weight-decay multiplier of normalisation layers' parameters (SegFormer / CFFM: 0)"
    )
    warmup_iters: int = bounded(0, 0, help="linear warm-up iterations before the poly schedule (CFFM 1500)")
    warmup_ratio: float = bounded(1e-6, 0.0, 1.0, "lr at iteration 0 of the warm-up, a fraction of the scheduled lr")
    tc_loss_weight: float = bounded(
        0.0,
        0.0,
        help="ETC's temporal-consistency loss (Liu et al. ECCV 2020) for per-frame models (memory_length 0); 0 = off",
    )
    tc_loss_flow: str = choice(
        "ground_truth", FLOW_SOURCES, "flow t -> t-1 for the TC loss; ground_truth = the dataset's (synthetic only)"
    )
    tc_loss_raft_weights: str = field(default="", metadata={"help": "RAFT weights (.pth) for tc_loss_flow=raft"})
    amp: str = choice("none", ("none", "bf16", "fp16"), "mixed precision, CUDA only")
    sync_bn: bool = described(False, "synchronise BatchNorm statistics across DDP ranks")
    checkpoint_every: int = bounded(1000, 1, help="iterations between checkpoints (resume point)")
    log_every: int = bounded(50, 1, help="iterations between log.jsonl lines")
    eval_every: int = bounded(0, 0, help="iterations between validations; 0 = only at the end")
    seed: int = described(0, "training seed (initialisation, data order, augmentation); the unit of statistics")
    deterministic: bool = described(True, "deterministic kernels (bit-identical resume); slower on CUDA")
    tensorboard: bool = field(
        default=False, metadata={"help": 'mirror log.jsonl to run_dir/tensorboard/ (pip install -e ".[tensorboard]")'}
    )
    mlflow: bool = described(False, 'mirror log.jsonl and the config to MLflow (pip install -e ".[mlflow]")')
    mlflow_uri: str = described("", "MLflow tracking URI; '' = a local file store in run_dir/mlflow/ (offline)")
    wandb: bool = described(
        False,
        "mirror log.jsonl and the config to an offline W&B run in run_dir/wandb/ "
        '(pip install -e ".[wandb]"; upload later with wandb sync)',
    )
    tracker_project: str = described("vss-bench", "MLflow experiment / W&B project name")


@dataclass
class EvalConfig(Checked):
    """Evaluation: whole-image or sliding-window inference, and temporal consistency."""

    mode: str = choice("whole", ("whole", "slide"), "slide = sliding windows, for large images (Cityscapes, CamVid)")
    crop_size: list[int] = listed([769, 769], 2, "slide window [H, W] (official: Cityscapes 769, CamVid 640)")
    stride: list[int] = listed([513, 513], 2, "slide window step [H, W] (official: Cityscapes 513, CamVid 512)")
    batch_size: int = bounded(1, 1, help="clips per evaluation batch")
    temporal_consistency: bool = described(True, "also measure temporal consistency (eval.tc_metric)")
    tc_flow: str = choice(
        "ground_truth",
        FLOW_SOURCES,
        "flow used to warp t-1 predictions for TC (dis / farneback: OpenCV, no weights; raft: eval.tc_raft_weights)",
    )
    tc_metric: str = choice(
        "both",
        ("both", "etc", "pixel_agreement"),
        "etc = ETC's per-pair mIoU (Liu et al. ECCV 2020); pixel_agreement = pooled pixel agreement",
    )
    tc_pairs: int = bounded(4, 1, help="consecutive prediction pairs per clip for etc (capped by the clip's frames)")
    tc_raft_weights: str = described("", "RAFT weights for tc_flow=raft: 'default' (torchvision) or a local .pth")
    max_images: int = bounded(0, 0, help="0 = the whole split")


@dataclass
class LaunchConfig(Checked):
    """Where runs execute: this machine or SLURM through submitit."""

    launcher: str = choice("local", ("local", "slurm"), "where a sweep runs")
    max_parallel: int = bounded(1, 1, help="local launcher: runs at the same time")
    partition: str = described("", "SLURM partition")
    account: str = described("", "SLURM account")
    qos: str = described("", "SLURM quality of service")
    time_min: int = bounded(
        60,
        1,
        help="SLURM time limit, minutes; >= 4 (bench sweep refuses less: the time-limit "
        "signal would come before the job can requeue); >= 11 so submitit tells "
        "preemption from time-out",
    )
    nodes: int = bounded(1, 1, help="SLURM nodes per run (DDP across nodes)")
    gpus_per_node: int = bounded(0, 0, help="SLURM GPUs per node")
    tasks_per_node: int = bounded(0, 0, help="processes (DDP ranks) per node; 0 = one per GPU, or 1 without GPUs")
    cpus_per_task: int = bounded(2, 1, help="SLURM CPUs per task (data-loader workers)")
    mem_gb: int = bounded(8, 1, help="SLURM memory per node, GB")
    constraint: str = described("", "SLURM --constraint, e.g. a100")
    sbatch_extra: dict = field(
        default_factory=dict, metadata={"help": "extra sbatch options, e.g. {'exclude': 'node3'}"}
    )
    array_parallelism: int = bounded(64, 1, help="SLURM array: jobs running at once")
    folder: str = described("results/slurm", "submitit job folder (scripts, SLURM logs)")
    latency: bool = field(default=False, metadata={"help": "after training, measure per-frame latency into the record"})
    latency_frames: int = bounded(30, 1, help="timed frames per mode for that measurement")
    latency_repeats: int = bounded(5, 1, help="timed passes per mode (median of pass medians; latency --repeats)")


@dataclass
class Config(Checked):
    """A whole experiment."""

    name: str = described("", "run name shown in reports; '' = the run id")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})
    plugins: list[str] = listed([], None, "modules imported before the model is built")
    output_root: str = described("results/runs", "runs go to output_root/<run id>")
    run_dir: str = described("", "this run's folder; '' = output_root/<run id>")
    checkpoint: str = field(default="", metadata={"help": "checkpoint to evaluate (bench eval)"})


# the dotted prefix of each section's keys, for messages
_SECTION = {
    "SyntheticConfig": "data.synthetic.",
    "DataConfig": "data.",
    "FlowConfig": "model.flow.",
    "ModelConfig": "model.",
    "TrainConfig": "train.",
    "EvalConfig": "eval.",
    "LaunchConfig": "launch.",
}


@functools.cache
def _field_specs(cls: type) -> dict[str, tuple[Any, typing.Mapping[str, Any]]]:
    """``{field name: (type annotation, metadata)}`` of a config dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata) for f in dataclasses.fields(cls)}


# --------------------------------------------------------------------------------------------------
# dict <-> dataclass with checking


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
            raise ConfigError(
                f"{key}: expected a mapping with keys {', '.join(f.name for f in dataclasses.fields(tp))}, "
                f"got {value!r}"
            )
        return from_dict(tp, value, prefix=f"{key}.")
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
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]}; valid keys under {prefix.rstrip('.') or 'the top level'}: "
            f"{', '.join(fields)}"
        )
    kwargs = {name: _coerce(v, hints[name], prefix + name, fields[name].metadata) for name, v in values.items()}
    obj = cls(**kwargs)
    for name, f in fields.items():  # defaults are checked too, so a bad default cannot hide
        if name not in values and not dataclasses.is_dataclass(hints[name]):
            _coerce(getattr(obj, name), hints[name], prefix + name, f.metadata)
    if cls is Config:
        validate(obj)
    return obj


_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
# names that become file or folder names (grid names, model names in run ids): one path component, no "..", "/"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def check_safe_name(value: Any, what: str) -> str:
    """``value`` if it is a safe file name (``SAFE_NAME``), else a ``ConfigError`` naming ``what``."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise ConfigError(
            f"{what} {value!r} is not a safe name: use letters, digits, '.', '_', '+', '-' (at most "
            "128, starting with a letter or digit; no '/', no '..'); rename it"
        )
    return value


def check_inside(path: str | Path, root: str | Path, what: str) -> Path:
    """``path`` if it resolves inside ``root`` (links followed), else a ``ConfigError`` naming ``what``."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        raise ConfigError(
            f"{what} {path} resolves to {resolved}, outside {base}; use a plain name (no '..', no "
            "absolute path, no link out of the folder)"
        )
    return Path(path)


def validate(cfg: Config) -> None:
    """Checks that involve several fields or a whole list; ``from_dict(Config, ...)`` ends with it.

    They hold on any machine (a sweep validates on a login node for GPU nodes); ``check_device`` asks
    whether the device exists here.
    """
    if not _DEVICE.fullmatch(cfg.device):
        raise ConfigError(f"device: invalid value {cfg.device!r}; valid: auto, cpu, cuda, cuda:N (N = GPU index)")
    check_safe_name(cfg.model.name, "model.name")  # the run id (a folder name) starts with it
    sizes = {
        "data.crop_size": cfg.data.crop_size,
        "data.base_size": cfg.data.base_size,
        "data.synthetic.size": cfg.data.synthetic.size,
        "eval.crop_size": cfg.eval.crop_size,
        "eval.stride": cfg.eval.stride,
    }
    for key, size in sizes.items():
        if any(v <= 0 for v in size):
            raise ConfigError(f"{key}: sizes must be positive, got {size}; give [H, W] with H, W >= 1")
    _check_image_sizes({k: v for k, v in sizes.items() if k != "eval.stride"})
    low, high = cfg.data.scale_range
    if not 0 < low <= high:
        raise ConfigError(
            f"data.scale_range: {cfg.data.scale_range} must be two positive scales with low <= high, "
            "e.g. [0.5, 2.0] (or [1.0, 1.0] for no rescaling)"
        )
    if cfg.model.window_size % 2 == 0:
        raise ConfigError(
            f"model.window_size={cfg.model.window_size} must be odd (the window is centred on the "
            f"query position); use {cfg.model.window_size - 1} or {cfg.model.window_size + 1}"
        )
    if not cfg.model.pool_scales or min(cfg.model.pool_scales) < 1:
        raise ConfigError(f"model.pool_scales={cfg.model.pool_scales} must be positive bin sizes, e.g. [1, 2, 3, 6]")
    _check_tc_loss(cfg)
    if cfg.data.dataset != "synthetic":
        return
    syn, memory = cfg.data.synthetic, cfg.model.memory_length
    if syn.train_clips < cfg.train.batch_size:
        raise ConfigError(
            f"data.synthetic.train_clips={syn.train_clips} is fewer than one batch "
            f"(train.batch_size={cfg.train.batch_size}); "
            "raise data.synthetic.train_clips or lower train.batch_size"
        )
    if syn.clip_length < memory + 1:
        raise ConfigError(
            f"data.synthetic.clip_length={syn.clip_length} is too short for "
            f"model.memory_length={memory}: a sample needs memory_length + 1 = {memory + 1} "
            f"frames; raise it to at least {memory + 1} ({memory + 2} to also measure temporal "
            "consistency)"
        )


def _check_image_sizes(sizes: dict[str, list[int]]) -> None:
    """Every image side covers at least ``MIN_FEATURE_CELLS`` cells of the output-stride-8 feature map."""
    smallest = OUTPUT_STRIDE * MIN_FEATURE_CELLS
    for key, size in sizes.items():
        if size and min(size) < smallest:
            raise ConfigError(
                f"{key}: {size} is too small for the network (output stride {OUTPUT_STRIDE}: at least "
                f"{smallest} pixels a side); give [H, W] >= [{smallest}, {smallest}]"
            )


def _check_tc_loss(cfg: Config) -> None:
    """A TC-loss weight needs a usable flow source: the dataset's flow exists for synthetic data only, and RAFT
    with random weights gives no flow worth matching."""
    t = cfg.train
    if t.tc_loss_weight <= 0:
        return
    if t.tc_loss_flow == "ground_truth" and cfg.data.dataset != "synthetic":
        raise ConfigError(
            f"train.tc_loss_weight={t.tc_loss_weight} with train.tc_loss_flow=ground_truth needs the "
            f"dataset's flow, which only the synthetic dataset has; set train.tc_loss_flow to dis, "
            f"farneback or raft (with train.tc_loss_raft_weights)"
        )
    if t.tc_loss_flow == "raft" and not t.tc_loss_raft_weights:
        raise ConfigError(
            f"train.tc_loss_weight={t.tc_loss_weight} with train.tc_loss_flow=raft needs RAFT weights "
            "(random RAFT gives no usable flow): set train.tc_loss_raft_weights=/path/raft_small.pth, "
            "or use train.tc_loss_flow=dis"
        )


def check_device(device: str) -> None:
    """``device`` can be used on this machine; imports torch only for a CUDA device."""
    if not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"device={device}: CUDA is not available here; use device=cpu or device=auto")
    index, count = device.partition(":")[2], torch.cuda.device_count()
    if index and int(index) >= count:
        raise ConfigError(
            f"device={device}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}; "
            "pick one of them or use device=cuda"
        )


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-ready dict of a config dataclass."""
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any) -> str:
    """The resolved config as YAML, in field order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


# --------------------------------------------------------------------------------------------------
# files and overrides


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key appears twice in one YAML mapping."""


# a config uses aliases rarely; an "alias bomb" (each level repeating the previous one) expands exponentially
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000


class AliasLimitError(yaml.composer.ComposerError):
    """A YAML document uses more aliases, or expands to more values, than a config ever needs."""


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int]) -> int:
    """The number of values ``node`` stands for once every alias is expanded (refused past the limit)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise AliasLimitError(None, None, "an alias refers to a value that contains it", node.start_mark)
    active.add(key)
    children = (
        node.value
        if isinstance(node, yaml.SequenceNode)
        else [n for pair in node.value for n in pair]
        if isinstance(node, yaml.MappingNode)
        else []
    )
    size = 1 + sum(_expanded_size(child, memo, active) for child in children)
    active.discard(key)
    if size > MAX_EXPANDED_NODES:
        raise AliasLimitError(
            None, None, f"aliases expand this document past {MAX_EXPANDED_NODES} values", node.start_mark
        )
    memo[key] = size
    return size


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (PyYAML keeps the last one silently), and
    more than ``MAX_ALIASES`` aliases or ``MAX_EXPANDED_NODES`` values once aliases are expanded."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            self.alias_count = getattr(self, "alias_count", 0) + 1
            if self.alias_count > MAX_ALIASES:
                raise AliasLimitError(
                    None, None, f"more than {MAX_ALIASES} aliases (*name)", self.peek_event().start_mark
                )
        return super().compose_node(parent, index)

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, {}, set())
        return node

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden by later keys
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not key_node.start_mark:
                raise DuplicateKeyError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"key {key!r} appears twice (first at line {first.line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line: what is wrong and what to do, for a YAML error."""
    problem = " ".join(str(getattr(err, "problem", None) or err).split())
    if isinstance(err, DuplicateKeyError):
        return f"{problem}; keep one of them"
    if isinstance(err, AliasLimitError):
        return f"{problem}; write the values out instead of repeating aliases"
    if isinstance(err, yaml.constructor.ConstructorError) and "for the tag" in problem:
        return f"{problem}; only plain values are allowed (numbers, strings, lists, mappings): remove the tag"
    if isinstance(err, yaml.constructor.ConstructorError):
        return f"{problem}; write plain keys and values (numbers, strings, lists, mappings) there"
    return f"not valid YAML: {problem}; fix the syntax there (indentation, ':' after keys, closing brackets, quotes)"


def parse_yaml(text: str, where: str) -> Any:
    """``text`` read with ``StrictLoader``; errors are one-line ``ConfigError``s starting with ``where``."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{at}: {_yaml_problem(err)}") from None


def read_yaml(path: str | Path) -> Any:
    """The YAML document in ``path`` (UTF-8, ``StrictLoader``); every failure is a one-line ``ConfigError``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the file ({err.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}, line {line}: byte 0x{raw[err.start]:02x} is not UTF-8 text; save the file as UTF-8"
        ) from None
    return parse_yaml(text, str(path))


def read_yaml_with_base(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML config file, merging it over its ``base:`` file (recursively)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in _seen:
        raise ConfigError(f"config files include each other in a cycle: {' -> '.join(map(str, _seen + (path,)))}")
    data = read_yaml(path)
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(
            f"{path}: base must be one file name relative to this file (e.g. base: parent.yaml), "
            f"got {base!r}; to combine several files, give each one its own base"
        )
    if not (path.parent / base).is_file():
        raise ConfigError(f"{path}: base file not found: {path.parent / base}")
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

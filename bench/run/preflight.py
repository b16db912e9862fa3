"""Preflight: what runs need on disk and on the machine, named and checked once before any of them starts.

    from bench.run.preflight import run_needs, check, requirement
    run_needs(ident)                               # [Need, ...] of one run (torch-free: nothing is opened)
    found = check(idents, launcher="local")        # every distinct need once, present or missing, + devices
    print(found.text()); found.ok

**Each config key that names something to read registers what it needs** (``@requirement(key)``): a function of
the run's identity (its config and the arguments its model really takes) returning ``Need``s
(``bench.data.needs``: the path, what it is, what to download and where to put it). Registered here: the data
(``data.root``: root folder, split lists, label and frame folders, the video frames the memory reads), the
ImageNet backbone (``model.pretrained`` / ``model.pretrained_path``; accel's update backbone
``model.options.update_pretrained_path``), RAFT for a model's flow (``model.flow.weights``; ``default`` =
torchvision's file in the torch hub cache), for temporal consistency (``eval.tc_raft_weights``) and for the TC loss
(``train.tc_loss_raft_weights``), and the released or exported checkpoint ``model.checkpoint`` names. A new
weight-bearing key adds one function.

A need of kind ``cache`` (timm's ImageNet weights without a path: the hub cache, else a download) is looked up by
the deep checks (``bench.run.preflight_deep``, which also builds each dataset index once and checks the devices);
this module never imports torch, so ``bench paper`` and ``bench sweep --dry-run`` stay fast.
Devices (``device``): on SLURM a CUDA device needs ``launch.gpus_per_node`` > 0; locally, the deep checks ask
torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.data.needs import Need, dataset_needs
from bench.run.identity import RunIdentity

Requirement = Callable[[RunIdentity], list[Need]]
REQUIREMENTS: dict[str, Requirement] = {}
RAFT_FILES = {"small": "raft_small_C_T_V2-01064c6d.pth", "large": "raft_large_C_T_SKHT_V2-ff5fadd5.pth"}
RAFT_URL = "https://download.pytorch.org/models/{file}"


def requirement(key: str) -> Callable[[Requirement], Requirement]:
    """Register ``fn(ident) -> [Need]`` as what config key ``key`` needs (one function per key)."""

    def register(fn: Requirement) -> Requirement:
        REQUIREMENTS[key] = fn
        return fn

    return register


def torch_hub_checkpoints() -> Path:
    """torch's hub checkpoint folder (``torch.hub.get_dir()/checkpoints``), found without importing torch."""
    home = os.environ.get("TORCH_HOME") or str(Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def clip_memory(ident: RunIdentity) -> int:
    """Past frames a run's clips read: the model's memory length (a keyframe model: interval - 1), at least one
    for the TC loss."""
    args = ident.model_args
    memory = int(args.get("memory_length", 0) or max(int(args.get("keyframe_interval", 1)) - 1, 0))
    return max(memory, 1 if ident.config.train.tc_loss_weight > 0 else 0)


def run_splits(ident: RunIdentity) -> list[str]:
    """The splits a run reads: the training split (when it trains) and the validation split."""
    data, train = ident.config.data, ident.config.train
    return list(dict.fromkeys(([data.train_split] if train.iters > 0 else []) + [data.val_split]))


@requirement("data.root")
def _data(ident: RunIdentity) -> list[Need]:
    memory = clip_memory(ident)
    return [need for split in run_splits(ident) for need in dataset_needs(ident.config.data, split, memory)]


def _weights_file(key: str, what: str, path: str, hint: str) -> Need:
    return Need(key, what, str(Path(path).expanduser()), hint)


@requirement("model.pretrained_path")
def _backbone(ident: RunIdentity) -> list[Need]:
    args = ident.model_args
    if not args.get("pretrained"):
        return []
    name = str(args.get("backbone", ""))
    if args.get("pretrained_path"):
        hint = (
            f"download MiT's ImageNet weights ({name}.pth, linked from the NVlabs/SegFormer README; "
            "docs/transformers.md §MiT weights) and put them there"
            if name.startswith("mit_")
            else f"the ImageNet weights of {name} (timm or mmcv layout, .pth / .safetensors)"
        )
        return [
            _weights_file(
                "model.pretrained_path", f"ImageNet weights of backbone {name}", args["pretrained_path"], hint
            )
        ]
    hint = "timm's copy in the Hugging Face or torch hub cache, else a download when the run starts"
    return [Need("model.pretrained", "ImageNet weights of backbone", name, hint, "cache")]


@requirement("model.checkpoint")
def _checkpoint(ident: RunIdentity) -> list[Need]:
    path = ident.config.model.checkpoint
    hint = (
        "download the released file (docs/checkpoints.md names where each is published; bench reproduce SPEC "
        "--check prints the URL) and put it there"
    )
    return [_weights_file("model.checkpoint", "checkpoint loaded into the model", path, hint)] if path else []


@requirement("model.options.update_pretrained_path")
def _update_backbone(ident: RunIdentity) -> list[Need]:
    path = ident.model_args.get("update_pretrained_path")
    hint = "the ImageNet weights of accel's update backbone (model.update_backbone)"
    return (
        [_weights_file("model.options.update_pretrained_path", "update backbone weights", path, hint)] if path else []
    )


def raft_need(key: str, weights: str, variant: str = "small") -> list[Need]:
    """What RAFT ``weights`` ('' random init, 'default' torchvision's, or a file) needs."""
    if not weights:
        return []
    file = RAFT_FILES.get(variant, RAFT_FILES["small"])
    hint = f"download {RAFT_URL.format(file=file)} (torchvision Raft_{variant.title()}_Weights) and put it there"
    if weights == "default":
        return [Need(key, f"torchvision RAFT-{variant} weights (default)", str(torch_hub_checkpoints() / file), hint)]
    return [_weights_file(key, f"RAFT-{variant} weights", weights, hint)]


@requirement("model.flow.weights")
def _model_flow(ident: RunIdentity) -> list[Need]:
    args = ident.model_args
    if args.get("flow_source") != "raft":
        return []
    return raft_need("model.flow.weights", str(args.get("flow_weights", "")), str(args.get("flow_raft", "small")))


@requirement("eval.tc_raft_weights")
def _tc_flow(ident: RunIdentity) -> list[Need]:
    ev = ident.config.eval
    if not (ev.temporal_consistency and ev.tc_flow == "raft" and ev.tc_raft_weights):
        return []  # no weights: temporal consistency is skipped and the record says why
    hint = f"download {RAFT_URL.format(file=RAFT_FILES['small'])} (torchvision Raft_Small_Weights) and put it there"
    return [
        _weights_file("eval.tc_raft_weights", "RAFT-small weights for temporal consistency", ev.tc_raft_weights, hint)
    ]


@requirement("train.tc_loss_raft_weights")
def _tc_loss(ident: RunIdentity) -> list[Need]:
    train = ident.config.train
    if train.tc_loss_weight <= 0 or train.tc_loss_flow != "raft" or train.iters == 0:
        return []
    return raft_need("train.tc_loss_raft_weights", train.tc_loss_raft_weights)


def run_needs(ident: RunIdentity) -> list[Need]:
    """Everything one run reads from disk, by the registered requirements (``REQUIREMENTS``), in their order."""
    return [need for fn in REQUIREMENTS.values() for need in fn(ident)]


def device_problem(device: str, launcher: str, gpus_per_node: int) -> str | None:
    """A SLURM run asking for CUDA without a GPU in its job (local devices: ``preflight_deep``)."""
    if launcher == "slurm" and device.startswith("cuda") and gpus_per_node < 1:
        return f"device={device} but launch.gpus_per_node=0: the SLURM jobs get no GPU; set launch.gpus_per_node"
    return None


@dataclass
class Finding:
    """One distinct need of a grid, the runs that have it, and whether it is there (None: looked up later)."""

    need: Need
    runs: dict[str, None] = field(default_factory=dict)  # run ids, in order, each once
    present: bool | None = None
    detail: str = ""  # what a deep check found (the first line of the dataset's error, the cache file)

    def text(self) -> str:
        runs = f"{len(self.runs)} run{'s' * (len(self.runs) != 1)}"
        state = "ok" if self.present else "MISSING" if self.present is False else "not checked"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{state}: {self.need.text()}{detail} [{runs}]"


@dataclass
class Preflight:
    """The distinct needs of a set of runs, checked, and the device problems."""

    findings: list[Finding]
    problems: list[str] = field(default_factory=list)  # device problems and deep-check failures beyond the needs

    @property
    def missing(self) -> list[Finding]:
        return [f for f in self.findings if f.present is False]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.problems

    def text(self, every: bool = False) -> str:
        """One line per missing need and problem (``every``: per need, present or not)."""
        shown = self.findings if every else self.missing
        return "\n".join([f"  {f.text()}" for f in shown] + [f"  MISSING: {p}" for p in self.problems])


def check(
    idents: Iterable[RunIdentity], launcher: str = "local", gpus_per_node: int = 0, hide_below_missing: bool = True
) -> Preflight:
    """Every distinct need of ``idents`` once, and devices; ``hide_below_missing``: a missing folder hides the
    needs below it (a missing data root is one line, not one per split folder)."""
    findings: dict[tuple[str, tuple[str, ...]], Finding] = {}
    problems: dict[str, None] = {}
    for ident in idents:
        for need in run_needs(ident):
            finding = findings.setdefault((need.kind, need.paths()), Finding(need))
            finding.runs[ident.run_id] = None
        problem = device_problem(ident.config.device, launcher, gpus_per_node)
        if problem:
            problems[problem] = None
    for finding in findings.values():
        finding.present = None if finding.need.kind == "cache" else finding.need.present()
    roots = {f.need.path for f in findings.values() if f.need.kind == "folder" and f.present is False}
    roots = roots if hide_below_missing else set()
    shown = [f for f in findings.values() if not any(_below(f.need.path, r) for r in roots - {f.need.path})]
    return Preflight(shown, list(problems))


def _below(path: str, root: str) -> bool:
    return bool(root) and Path(path).is_relative_to(Path(root)) and Path(path) != Path(root)

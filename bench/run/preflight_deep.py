"""The preflight checks that open files or ask torch (``bench.run.preflight`` lists and checks the paths): each
distinct dataset split's index built once (every label, frame and memory frame the runs will read is there), timm's
ImageNet weights found in a cache or downloadable, and the local devices a grid asks for.

    from bench.run.preflight import check
    from bench.run.preflight_deep import deep_check
    found = deep_check(check(idents), idents, launcher="local")

A split whose folders are missing is not indexed (the missing folder is already named); a synthetic split needs no
check. Building an index reads the folder listings only, no image (Cityscapes train: about 3,000 labels and their
memory frames).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import torch

from bench.config import ConfigError, to_dict
from bench.data.build import build_dataset
from bench.data.errors import DatasetError
from bench.models.backbone import cached_weights, fetch_hint, hub_reachable
from bench.run.identity import RunIdentity
from bench.run.preflight import Finding, Preflight, clip_memory, run_splits


def _cache(finding: Finding) -> None:
    """A timm backbone's ImageNet weights: a cached copy, else whether the hub can be reached to download them."""
    name = finding.need.path
    local = cached_weights(name)
    if local is not None:
        finding.present, finding.detail = True, f"cached: {local}"
    elif hub_reachable():
        finding.present, finding.detail = True, "not cached; timm downloads them when the run starts"
    else:
        finding.present = False
        finding.detail = fetch_hint(name, "no cached copy, and the hub cannot be reached from here")


def _index_problems(idents: Sequence[RunIdentity], skip: set[str]) -> list[str]:
    """Each distinct (data, split, memory) index built once (runs in ``skip`` left out: a folder of theirs is
    missing and named already); the first line of each failure and its download hint, with its runs."""
    seen: dict[tuple[str, str, int], list[str]] = {}
    for ident in idents:
        data = ident.config.data
        if data.dataset == "synthetic" or ident.run_id in skip:
            continue
        for split in run_splits(ident):
            key = (json.dumps(to_dict(data), sort_keys=True), split, clip_memory(ident))
            seen.setdefault(key, []).append(ident.run_id)
    problems = []
    for (values, split, memory), runs in seen.items():
        data = next(i.config.data for i in idents if json.dumps(to_dict(i.config.data), sort_keys=True) == values)
        try:
            build_dataset(data, split, memory, train=False)
        except (DatasetError, ConfigError) as err:
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            hint = next((line for line in lines if line.lower().startswith(("download", "build"))), "")
            text = f"data.root: {data.dataset} {split} split (T={memory}): {lines[0]}"
            problems.append(f"{text}{'; ' + hint if hint else ''} [{len(runs)} run{'s' * (len(runs) != 1)}]")
    return problems


def _device_problems(idents: Sequence[RunIdentity]) -> list[str]:
    """CUDA devices this machine does not have (local launches)."""
    problems: dict[str, None] = {}
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for ident in idents:
        device = ident.config.device
        if not device.startswith("cuda"):
            continue
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= count:
            problems[f"device={device}: this machine has {count} CUDA device(s); use device=auto or cpu"] = None
    return list(problems)


def deep_check(found: Preflight, idents: Sequence[RunIdentity], launcher: str = "local") -> Preflight:
    """``found`` (``preflight.check``) with the cache needs looked up, every dataset index built once, and, for a
    local launch, the CUDA devices asked for checked on this machine."""
    for finding in found.findings:
        if finding.need.kind == "cache":
            _cache(finding)
    data_missing = {run for f in found.missing if f.need.key.startswith("data.") for run in f.runs}
    problems = list(found.problems) + _index_problems(idents, data_missing)
    if launcher == "local":
        problems += _device_problems(idents)
    return Preflight(found.findings, list(dict.fromkeys(problems)))

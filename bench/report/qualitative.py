"""The qualitative strip: memory frames, the current frame, ground truth and each row's prediction on one clip.

    result = qualitative_figure(table, out_dir)      # a FigureResult; reasons instead of a figure when impossible

It loads each table row's trained model (the lowest-seed run with a checkpoint, ``bench.run.model``) and runs it
on one synthetic validation clip, so this module imports torch; ``bench.report.figures`` imports it only when a
table needs the strip.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from bench.constants import IMAGENET_MEAN, IMAGENET_STD
from bench.data.build import build_dataset
from bench.data.catalog import dataset_info
from bench.data.errors import DatasetError
from bench.engine.checkpoint import CheckpointError
from bench.models import registry
from bench.models.registry import RegistryError
from bench.report.plotting import FigureResult, class_legend, colourise, save
from bench.run.model import load_run_model
from bench.run.rundir import RunDir


def to_image(frame: Any) -> np.ndarray:
    """ImageNet-normalised (3, H, W) tensor -> (H, W, 3) in [0, 1]."""
    mean = np.array(IMAGENET_MEAN).reshape(3, 1, 1)
    std = np.array(IMAGENET_STD).reshape(3, 1, 1)
    return np.clip((frame.numpy() * std + mean) / 255.0, 0, 1).transpose(1, 2, 0)


def _strip_models(table: Any) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(row label, record of the lowest-seed run with a checkpoint) per table row; notes for rows without one."""
    chosen, notes = [], []
    for _, row in table.frame.iterrows():
        label = ", ".join(str(row[k]) for k in table.key_columns)
        found = None
        for run_id in str(row["run_ids"]).split():
            run_dir = table.runs.loc[table.runs["run_id"] == run_id, "run_dir"].iloc[0]
            if run_dir and RunDir(run_dir).has_checkpoint():
                found = RunDir(run_dir).read_record().record
                found["_run_dir"] = run_dir
                break
        if found is None:
            notes.append(f"{label}: skipped, no checkpoint.pt in its run dirs")
        elif _plugin_problem(found):
            notes.append(f"{label}: skipped, {_plugin_problem(found)}")
        else:
            chosen.append((label, found))
    return chosen, notes


def _plugin_problem(record: dict[str, Any]) -> str:
    """Why a plugin model of ``record`` cannot be built here ("" when it can: a built-in, or its plugin imports);
    the rest of the report does not need the plugin, the strip does."""
    config = record.get("config") or {}
    if registry.is_builtin(str((config.get("model") or {}).get("name"))):
        return ""
    try:
        registry.load_plugins([str(p) for p in config.get("plugins") or []])
    except RegistryError as err:
        return f"its plugin is not importable here ({str(err).split(';')[0]})"
    return ""


def qualitative_figure(table: Any, out_dir: Path, clip_index: int = 0) -> FigureResult:
    """The strip for ``table``, or a ``FigureResult`` without paths saying why it cannot be drawn."""
    try:
        return _strip(table, out_dir, clip_index)
    except (CheckpointError, DatasetError, RegistryError, RuntimeError) as err:  # e.g. another architecture's
        return FigureResult(f"qualitative_{table.name}", [], f"{type(err).__name__}: {err}")


def _strip(table: Any, out_dir: Path, clip_index: int) -> FigureResult:
    """Memory frames, current frame, ground truth and each model's prediction for one synthetic val clip."""
    name = f"qualitative_{table.name}"
    chosen, notes = _strip_models(table)
    if not chosen:
        return FigureResult(name, [], "no run of this table has a checkpoint; " + "; ".join(notes))
    configs, models = [], []
    for label, record in chosen:
        model, cfg, _ = load_run_model(Path(record["_run_dir"]))
        configs.append(cfg)
        models.append((label, model.eval()))
    longest = max(int(m.memory_length) for _, m in models)
    # the current frame of a synthetic clip does not depend on T, so one clip with the longest memory serves all
    dataset = build_dataset(configs[0].data, configs[0].data.val_split, longest, train=False)
    sample = dataset[clip_index]
    frames, label = sample["frames"], sample["label"].numpy()
    palette = dataset_info(configs[0].data).palette  # synthetic: each class in its cue hue
    panels: list[tuple[str, np.ndarray]] = []
    for i in range(longest):
        panels.append((f"t-{longest - i}", to_image(frames[i])))
    panels += [("current t", to_image(frames[-1])), ("ground truth", colourise(label, palette))]
    correct = {}
    with torch.inference_mode():
        for label_text, model in models:
            t = int(model.memory_length)
            clip = frames[longest - t :].unsqueeze(0)
            flow = sample["flow"][longest - t :].unsqueeze(0) if t and "flow" in sample else None
            pred = model(clip, flow)["out"].argmax(1)[0].numpy()
            valid = label != dataset.ignore_index
            correct[label_text] = float((pred[valid] == label[valid]).mean() * 100) if valid.any() else math.nan
            panels.append((f"{label_text}\n{correct[label_text]:.0f}% px", colourise(pred, palette)))
    fig = Figure(figsize=(max(1.8 * len(panels), 6.0), 2.8), layout="constrained")  # room for title and legend
    for ax, (title, image) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{table.name}: {sample['name']}", fontsize=9)
    fig.legend(
        handles=class_legend(dataset.class_names, palette),
        loc="outside lower center",
        fontsize=7,
        ncol=min(8, len(dataset.class_names) + 1),
        frameon=False,
    )
    shown = ", ".join(f"{label} {value:.0f}%" for label, value in correct.items())
    # one clip: an illustration, never a ranking (the tables test the rows over seeds)
    text = f"clip {sample['name']}: pixel accuracy on this one clip (an illustration, not a comparison): {shown}"
    if notes:
        text += "; " + "; ".join(notes)
    return FigureResult(name, save(fig, out_dir, name), figure=fig, reading=text)

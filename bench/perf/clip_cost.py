"""CPU seconds to load and augment one training clip: today's loader path against the fast one, side by side.

Used by ``python -m bench.perf.data_loader_bench --clip-cost`` (see there for the command line)::

    root = cityscapes_layout_from_frames(Path("TDNet/Testing/data/vid1"), Path("/tmp/cs"), memory_length=4)
    rows = measure_clip_cost(cfg, memory_lengths=(2, 4), clips=22)
    print(clip_cost_report(rows))

The two paths read the same files with the same random draws (``bench.engine.batches.SeededClips``, one seed per
clip):

* ``reference``: PIL decoding (``decoder="pil"``) and the whole frames resized before the crop
  (``ClipTransform(window_resize=False)``), the loader as it was before the fast path;
* ``fast``: the default decoder (pyspng when installed) and only the crop window resized.

Each clip is loaded once per path, alternately, and timed with ``time.process_time`` (CPU time of this process:
robust to other jobs on the machine, unlike wall time); torch runs on one thread (``torch.set_num_threads(1)``
by the caller), so the numbers are CPU-s per clip on one core. Every pair is also checked to agree: the same
label and frames within the window resize's tolerance (``bench.data.transforms.WINDOW_RESIZE_TOLERANCE``).

Frames without labels (e.g. the TDNet repository's Cityscapes sequence ``Testing/data/vid1``, 15 consecutive
2048x1024 frames of frankfurt_000001) become a Cityscapes layout with ``cityscapes_layout_from_frames``: the
frames are linked into ``leftImg8bit_sequence/val/<city>/`` and every frame with ``memory_length`` predecessors
gets a stand-in label map ``gtFine/val/<city>/*_gtFine_labelTrainIds.png``: the frame's brightness in 16x16
blocks, quantised into the 19 train ids (the size and block structure of a label map; its values are not a
segmentation, which the cost of loading does not need).
"""

from __future__ import annotations

import dataclasses
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.config import Config
from bench.constants import IMAGENET_STD
from bench.data.build import build_dataset
from bench.engine.batches import SeededClips

FRAME_NAME = re.compile(r"^(?P<city>[a-z]+)_(?P<seq>\d{6})_(?P<frame>\d{6})_leftImg8bit\.png$")
PATHS = ("reference", "fast")
BLOCK = 16  # stand-in label block size in pixels


def cityscapes_layout_from_frames(frames_dir: Path, root: Path, memory_length: int, split: str = "val") -> int:
    """Link the ``*_leftImg8bit.png`` frames of ``frames_dir`` into a Cityscapes layout under ``root`` with
    stand-in labels for every frame that has ``memory_length`` predecessors; returns how many were labelled."""
    frames = sorted(p for p in Path(frames_dir).iterdir() if FRAME_NAME.match(p.name))
    if len(frames) <= memory_length:
        raise ValueError(
            f"{frames_dir} holds {len(frames)} Cityscapes frames (*_leftImg8bit.png); at least "
            f"{memory_length + 1} consecutive frames are needed for memory length {memory_length}"
        )
    labelled = 0
    for path in frames:
        match = FRAME_NAME.match(path.name)
        assert match is not None
        city, number = match["city"], int(match["frame"])
        sequence = root / "leftImg8bit_sequence" / split / city
        sequence.mkdir(parents=True, exist_ok=True)
        link = sequence / path.name
        if not link.exists():
            os.symlink(path.resolve(), link)
        stem = path.name[: -len("_leftImg8bit.png")]
        past = [f"{city}_{match['seq']}_{number - k:06d}_leftImg8bit.png" for k in range(1, memory_length + 1)]
        if all((frames_dir / name).is_file() for name in past):
            labels = root / "gtFine" / split / city
            labels.mkdir(parents=True, exist_ok=True)
            Image.fromarray(stand_in_label(path)).save(labels / f"{stem}_gtFine_labelTrainIds.png")
            labelled += 1
    return labelled


def stand_in_label(frame: Path) -> np.ndarray:
    """uint8 ``(H, W)`` train ids 0..18: the frame's mean brightness per 16x16 block in 19 equal-count bins."""
    with Image.open(frame) as image:
        grey = np.asarray(image.convert("L"), dtype=np.float32)
    h, w = (s - s % BLOCK for s in grey.shape)
    blocks = grey[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).mean(axis=(1, 3))
    edges = np.quantile(blocks, np.linspace(0, 1, 20)[1:-1])
    ids = np.digitize(blocks, edges).astype(np.uint8)
    label = np.repeat(np.repeat(ids, BLOCK, axis=0), BLOCK, axis=1)
    return np.pad(label, ((0, grey.shape[0] - h), (0, grey.shape[1] - w)), mode="edge")


def _datasets(cfg: Config, memory_length: int) -> dict[str, Any]:
    """The training split twice: the reference path and the fast path (module docstring)."""
    fast = build_dataset(cfg.data, cfg.data.train_split, memory_length, train=True)
    reference = build_dataset(cfg.data, cfg.data.train_split, memory_length, train=True)
    if not hasattr(reference, "decoder"):
        raise ValueError(f"--clip-cost measures the file datasets (cityscapes, camvid), not {cfg.data.dataset}")
    reference.decoder = "pil"
    reference.transform = dataclasses.replace(reference.transform, window_resize=False)
    return {"reference": reference, "fast": fast}


def _agree(reference: dict, fast: dict) -> float:
    """Largest frame difference on the 0..255 scale; raises when the labels or the shapes differ."""
    if not torch.equal(reference["label"], fast["label"]) or reference["frames"].shape != fast["frames"].shape:
        raise AssertionError(f"{fast['name']}: the fast path cut another crop or label than the reference")
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return float(((reference["frames"] - fast["frames"]) * std).abs().max())


def measure_clip_cost(cfg: Config, memory_lengths: tuple[int, ...], clips: int, seed: int = 0) -> list[dict]:
    """For each memory length, ``clips`` clips through both paths, alternately: CPU-s lists per path and the
    largest frame difference (0..255 scale)."""
    rows = []
    for memory_length in memory_lengths:
        datasets = _datasets(cfg, memory_length)
        seeded = {name: SeededClips(dataset, seed) for name, dataset in datasets.items()}
        size = len(datasets["fast"])
        seconds: dict[str, list[float]] = {name: [] for name in PATHS}
        worst = 0.0
        for k in range(clips):
            key = (k // size, k % size)  # a new epoch after every clip: other crops of the same files
            samples = {}
            for name in PATHS if k % 2 == 0 else PATHS[::-1]:  # alternate the order: no path always goes first
                start = time.process_time()
                samples[name] = seeded[name][key]
                seconds[name].append(time.process_time() - start)
            worst = max(worst, _agree(samples["reference"], samples["fast"]))
        shape = tuple(samples["fast"]["frames"].shape)
        rows.append({"memory_length": memory_length, "seconds": seconds, "max_diff": worst, "shape": shape})
    return rows


def clip_cost_report(rows: list[dict]) -> str:
    """One line per memory length: mean CPU-s per clip of each path, their ratio, the agreement."""
    lines = [f"CPU-s per training clip on one core (time.process_time, {torch.get_num_threads()} torch thread)"]
    for row in rows:
        ref, fast = (statistics.fmean(row["seconds"][name]) for name in PATHS)
        ref_median, fast_median = (statistics.median(row["seconds"][name]) for name in PATHS)
        lines.append(
            f"T={row['memory_length']}: reference {ref:.3f} s, fast {fast:.3f} s, reference / fast {ref / fast:.2f}x "
            f"({len(row['seconds']['fast'])} clips of {list(row['shape'])}; medians {ref_median:.3f} / "
            f"{fast_median:.3f} s; largest frame difference {row['max_diff']:.1e} of 255)"
        )
    return "\n".join(lines)

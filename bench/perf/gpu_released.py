"""``make gpu-check`` part ``released_eval``: how long evaluating released weights takes, per image.

    from bench.perf.gpu_released import released_eval
    released_eval(ctx)                                 # ctx: bench.perf.gpu_context.PartContext

For official TMANet R-50-D8 (T = 2) and mmseg PSPNet R-50-D8, each loaded from a file in the released (mmseg)
layout through ``model.checkpoint`` (random weights: the time does not depend on them), one 1024x2048 Cityscapes
frame (with its memory frames) predicted as ``bench reproduce`` does: slide 769x769 / 513 (the 769x769 configs),
single-scale and ms+flip (ratios 0.5-1.75 and the mirrored image: 62 windows per direction, 124 in all). Rows:
seconds per image (after one warm-up image), windows per image, peak GPU memory, and the load time of the file.
Smoke mode: resnet18-sized models on 16x24 frames, 16x16 windows, single-scale and flip, one image, on the CPU.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.config import load_config
from bench.data.catalog import dataset_info
from bench.evaluation.inference import slide_windows
from bench.evaluation.measure import cuda_sync
from bench.evaluation.protocols import MMSEG_SCALES, scaled_size
from bench.evaluation.tta import Protocol, predict_scores
from bench.perf.gpu_context import RECIPE, SMOKE_MODEL, PartContext
from bench.run.model import build_model
from bench.weights import mmseg_checkpoint

MODELS: tuple[tuple[str, list[str]], ...] = (
    ("tmanet", ["model.name=tmanet", "model.memory_length=2"]),
    ("pspnet", ["model.name=pspnet"]),
)


def _protocols(smoke: bool) -> list[Protocol]:
    """Single-scale and ms+flip under slide 769/513; smoke: 16/11 windows, single-scale and flip (a new input
    shape costs the CPU a kernel compilation each, so the test's budget keeps one)."""
    if smoke:
        return [Protocol("slide", (16, 16), (11, 11)), Protocol("slide", (16, 16), (11, 11), (1.0,), True)]
    return [Protocol("slide", (769, 769), (513, 513)), Protocol("slide", (769, 769), (513, 513), MMSEG_SCALES, True)]


def _windows(protocol: Protocol, size: tuple[int, int]) -> int:
    per_direction = sum(
        len(slide_windows(scaled_size(size, s), protocol.crop_size, protocol.stride)) for s in protocol.scales
    )
    return per_direction * (2 if protocol.flip else 1)


def _released_model(ctx: PartContext, overrides: list[str], folder: Path) -> tuple[torch.nn.Module, float]:
    """The model loaded from a released-layout file of random weights; (model on the device, load seconds)."""
    cfg = load_config(RECIPE, overrides)
    torch.manual_seed(0)
    source = build_model(cfg)
    path = folder / "released.pth"
    torch.save(mmseg_checkpoint(source.state_dict(), dataset_info(cfg.data).class_names, cfg.model.align_corners),
               path)  # fmt: skip
    del source
    start = time.perf_counter()
    loaded = build_model(load_config(RECIPE, [*overrides, f"model.checkpoint={path}"]))
    return loaded.to(ctx.device).eval(), time.perf_counter() - start


def _seconds_per_image(ctx: PartContext, model: torch.nn.Module, protocol: Protocol, size: tuple[int, int]) -> float:
    frames = torch.randn(1, int(model.memory_length) + 1, 3, *size, device=ctx.device)
    times = []
    with torch.no_grad():
        for _ in range(1 if ctx.smoke else 2):  # the first is the warm-up (cuDNN algorithm choice, allocator)
            cuda_sync(ctx.device)
            start = time.perf_counter()
            predict_scores(model, frames, None, protocol)
            cuda_sync(ctx.device)
            times.append(time.perf_counter() - start)
    return times[-1]


def released_eval(ctx: PartContext) -> None:
    size = (16, 24) if ctx.smoke else (1024, 2048)
    base = ["model.pretrained=false", f"device={ctx.device.type}"] + (SMOKE_MODEL if ctx.smoke else [])
    with tempfile.TemporaryDirectory() as folder:
        for name, overrides in MODELS:
            if ctx.out_of_budget(name):
                return
            model, load_s = _released_model(ctx, base + overrides, Path(folder))
            for protocol in _protocols(ctx.smoke):
                if ctx.out_of_budget(f"{name} {protocol.short_label()}"):
                    return
                if ctx.device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(ctx.device)
                row: dict[str, Any] = {
                    "model": name,
                    "T": int(model.memory_length),
                    "size": f"{size[0]}x{size[1]}",
                    "protocol": protocol.label(),
                    "windows": _windows(protocol, size),
                    "seconds_per_image": round(_seconds_per_image(ctx, model, protocol, size), 3),
                    "load_s": round(load_s, 2),
                }
                if ctx.device.type == "cuda":
                    row["peak_memory_mb"] = round(torch.cuda.max_memory_allocated(ctx.device) / 2**20, 1)
                ctx.add(row)
            del model
            if ctx.device.type == "cuda":
                torch.cuda.empty_cache()
    ctx.notes.append(
        "fp32, batch 1, random weights loaded from a released-layout (mmseg) file, random frames; seconds of the "
        "second image (the first warms up); ms+flip = ratios 0.5-1.75 and the mirrored image, as mmseg --aug-test"
    )
    ctx.status = "done"

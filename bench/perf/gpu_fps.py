"""``make gpu-check`` part "fps": the transformer-era rows under the field's FPS protocol (docs/fps.md) at the
VSPW (480x853) and Cityscapes (1024x2048) input sizes: SegFormer, CFFM, TMANet (its read on MiT's stride-8
level, CFFM's three references) and the per-frame head on MiT-B1, both modes of each temporal model, with GFLOPs
(GMACs, the mmseg convention) and parameters beside each row. In smoke mode (no CUDA) the same rows run on the
tiny MiT at 32x32.

    from bench.perf.gpu_fps import fps
    fps(ctx)            # ctx: bench.perf.gpu_context.PartContext; adds rows and notes, sets ctx.status
"""

from __future__ import annotations

from typing import Any

import torch

from bench.config import load_config
from bench.evaluation.fps import FIELD_SIZES, PROTOCOL, measure_fps
from bench.evaluation.latency import ModeMismatchError
from bench.perf.gpu_context import RECIPE, SMOKE_PYRAMID, PartContext
from bench.run.model import build_model

MIT_B1 = ["model.backbone=mit_b1"]
# (row label, model name, overrides): TMANet and per-frame read MiT's stride-8 level, TMANet CFFM's 3 references
FPS_ROWS: list[tuple[str, str, list[str]]] = [
    ("segformer MiT-B1", "segformer", MIT_B1),
    ("cffm MiT-B1", "cffm", [*MIT_B1, "model.memory_length=3"]),
    ("tmanet MiT-B1 s8", "tmanet", [*MIT_B1, "model.feature_level=s8", "model.memory_length=3"]),
    ("per_frame MiT-B1 s8", "per_frame", [*MIT_B1, "model.feature_level=s8"]),
]
SMOKE_HEAD = ["model.key_channels=8", "model.value_channels=16", "model.channels=16", "model.aux_channels=16"]


def _rows(label: str, result: dict[str, Any], size: tuple[int, int]) -> list[dict[str, Any]]:
    return [
        {
            "model": label,
            "T": result["memory_length"],
            "size": f"{size[0]}x{size[1]}",
            "mode": mode,
            "fps": m["fps"],
            "median_ms": m["median_ms"],
            "iqr_ms": m["iqr_ms"],
            "gmacs": m["gmacs"],
            "params_m": result["params"] / 1e6,
            "unstable": m["unstable"],
        }
        for mode, m in result["modes"].items()
    ]


def fps(ctx: PartContext) -> None:
    sizes = list(FIELD_SIZES.values()) if not ctx.smoke else [(32, 32)]
    frames, warmup, repeats = (20, 5, 3) if not ctx.smoke else (1, 1, 1)
    base = ["model.pretrained=false", f"device={ctx.device.type}"] + (SMOKE_HEAD + SMOKE_PYRAMID if ctx.smoke else [])
    for size in sizes:
        for label, name, overrides in FPS_ROWS:
            if ctx.out_of_budget(f"{label} at {size[0]}x{size[1]}"):
                return
            model = None
            try:
                torch.manual_seed(0)
                cfg = load_config(RECIPE, [*base, f"model.name={name}", *overrides])
                model = build_model(cfg)
                result = measure_fps(model, name, size, frames, warmup, repeats, ctx.device)
            except (ModeMismatchError, RuntimeError, ValueError) as err:  # one row failing keeps the others
                ctx.notes.append(f"{label} at {size}: {type(err).__name__}: {' '.join(str(err).split())[:300]}")
                continue
            finally:
                model = None
                if ctx.device.type == "cuda":
                    torch.cuda.empty_cache()
            for row in _rows(label, result, size):
                ctx.add(row)
    ctx.notes.append(f"protocol: {PROTOCOL}; {frames} timed frames x {repeats} passes after {warmup} warm-up frames")
    ctx.notes.append("random init; 19 classes (the Cityscapes recipe config); latency does not depend on weights")
    ctx.status = "done"

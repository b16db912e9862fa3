"""FLOPs and parameters of a streamed model: one steady-state frame, or a keyframe cycle's mean.

count_frame_flops(stream, frame, flow)     # {"flops"} (+ "flops_key", "flops_non_key" for keyframe models)
count_parameters(model)                    # {"params", "params_inference"}
flop_stats(stream, (frame, flow), device)  # GFLOPs (and per frame kind) and GMACs of the last frame
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from bench.models.streaming import StreamingSegmenter

FLOP_CONVENTION = (
    "gflops: torch.utils.flop_counter.FlopCounterMode, 2 FLOPs per multiply-add; "
    "gmacs = gflops / 2 (one multiply-add = one FLOP, the mmseg/fvcore 'GFLOPs'); "
    "attention on its true shapes: 2*B*N*(T*N)*(Ck+Cv) per memory read (QK^T and SV, softmax "
    "not counted; zero-padding for fused kernels excluded)"
)
# Streaming and recompute run the same ops on the same inputs, in a different grouping; the tolerance only


def count_step_flops(stream: StreamingSegmenter, frame: Tensor, flow: Tensor | None) -> int:
    """FLOPs (2 per multiply-add) of one ``stream.step``; the step is real (it advances the memory)."""
    with FlopCounterMode(display=False) as counter:
        stream.step(frame, flow)
    return int(counter.get_total_flops())


def count_frame_flops(stream: StreamingSegmenter, frame: Tensor, flow: Tensor | None) -> dict[str, Any]:
    """FLOPs per frame: one step for most models; for a keyframe model (interval k) steps until a keyframe and a
    non-keyframe were counted, ``flops`` = the cycle mean (key + (k - 1) * non-key) / k.

    Returns ``{"flops": int}`` plus ``{"flops_key", "flops_non_key"}`` for keyframe models. FlopCounterMode counts
    torch operators only: a classical (OpenCV) flow costs time but no counted FLOPs.
    """
    k = stream.keyframe_interval
    if not k:
        return {"flops": count_step_flops(stream, frame, flow)}
    counted: dict[str, int] = {}
    for _ in range(k + 1):
        flops = count_step_flops(stream, frame, flow)
        counted.setdefault(stream.last_frame_type, flops)
        if "key" in counted and ("non_key" in counted or k == 1):
            break
    non_key = counted.get("non_key", counted["key"])
    return {
        "flops": int(round((counted["key"] + (k - 1) * non_key) / k)),
        "flops_key": counted["key"],
        "flops_non_key": non_key,
    }


def count_parameters(model: nn.Module) -> dict[str, int]:
    """All parameters, and those used at inference: without the modules only training uses (a model's
    ``training_only_modules()``, else its ``aux_head``), as mmseg get_flops drops the auxiliary head."""
    if callable(getattr(model, "training_only_modules", None)):
        unused = list(model.training_only_modules())
    else:
        unused = [model.aux_head] if hasattr(model, "aux_head") else []
    total = sum(p.numel() for p in model.parameters())
    return {"params": total, "params_inference": total - sum(p.numel() for m in unused for p in m.parameters())}


def flop_stats(stream: StreamingSegmenter, last: tuple[Tensor, Tensor | None], device: torch.device) -> dict:
    """GFLOPs (total and per kind) and GMACs of one streamed frame, the last of the sequence."""
    frame, flow = last
    flops = count_frame_flops(stream, frame.to(device), flow.to(device) if flow is not None else None)
    return {
        **{name.replace("flops", "gflops"): value / 1e9 for name, value in flops.items()},
        "gmacs": flops["flops"] / 2e9,
    }

"""The FPS protocol of the field (docs/fps.md): batch 1, a fixed input size, fp32, warm-up, median and IQR over
repeated passes, CUDA synchronisation, both modes of a temporal model; GFLOPs and parameters beside it.

    from bench.evaluation.fps import measure_fps
    result = measure_fps(model, "cffm", (480, 853), device="cuda")       # VSPW 480p
    result["modes"]["streaming"]["fps"], result["modes"]["recompute"]["median_ms"], result["params"]

It is ``bench.evaluation.latency.measure_latency`` on random frames of one size (weights and pixel values do
not change the cost of these models), inside ``fp32_math`` (no autocast; TF32 off for matmuls and cuDNN
convolutions, whatever the process had set), with the protocol written into the result (``protocol``).
Streaming is CFFM's convention ("the features of reference frames are already in memory", VSS-CFFM issue #1);
recompute re-encodes every reference frame at every frame, as the official test code does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from bench.evaluation.inference import needs_flow_input
from bench.evaluation.latency import DEFAULT_REPEATS, measure_latency
from bench.models.streaming import STREAM_MODES

FIELD_SIZES: dict[str, tuple[int, int]] = {"vspw": (480, 853), "cityscapes": (1024, 2048)}
PROTOCOL = (
    "batch 1; fixed input size, random frames (seed 0), whole image, single scale, no flip; fp32 (no autocast, "
    "TF32 off for matmul and cuDNN); logits at input size (argmax and data loading excluded); warm-up frames "
    "untimed; median of per-pass medians and their IQR over repeated passes; wall clock with "
    "torch.cuda.synchronize() around each frame (CUDA events beside it); temporal models in both modes: "
    "streaming (reference features cached) and recompute (every reference re-encoded)"
)


@contextlib.contextmanager
def fp32_math() -> Iterator[None]:
    """TF32 off for CUDA matmuls and cuDNN convolutions inside the block; the previous settings come back."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def fixed_size_frames(model: nn.Module, count: int, size: tuple[int, int]) -> list[tuple[Tensor, Tensor | None]]:
    """``count`` random frames (1, 3, H, W) of one size (seed 0), with zero flow for models that take flow."""
    generator = torch.Generator().manual_seed(0)
    t = int(model.memory_length)
    flow = torch.zeros(1, t, 2, *size) if needs_flow_input(model) else None
    return [(torch.randn(1, 3, *size, generator=generator), flow) for _ in range(count)]


def measure_fps(
    model: nn.Module,
    name: str,
    size: tuple[int, int],
    frames: int = 30,
    warmup: int = 10,
    repeats: int = DEFAULT_REPEATS,
    device: torch.device | str = "cpu",
    threads: int | None = None,
    modes: Sequence[str] = STREAM_MODES,
    max_extra_passes: int = 0,
) -> dict[str, Any]:
    """The latency result of ``model`` (registered as ``name``) under the protocol at ``size`` (H, W)."""
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"size must be two positive sides (H, W), got {size}")
    count = 1 + max(warmup, int(model.memory_length)) + frames + 1
    with fp32_math():
        result = measure_latency(
            model,
            fixed_size_frames(model, count, (height, width)),
            warmup=warmup,
            modes=modes,
            device=device,
            threads=threads,
            repeats=repeats,
            max_extra_passes=max_extra_passes,
        )
    result.update({"model": name, "input": f"random frames {height}x{width}", "protocol": PROTOCOL})
    result["precision"] = "fp32 (TF32 off)"
    return result

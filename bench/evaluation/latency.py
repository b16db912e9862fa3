"""Per-frame latency of a registered model on real clips, streamed one frame at a time; FLOPs, params, memory.

    from bench.evaluation.latency import measure_latency, measure_model_latency, stream_frames
    result = measure_latency(model, list(stream_frames(dataset, 40)), warmup=5, device="cpu", threads=2)
    result = measure_model_latency(model, "tmanet", cfg.data, cfg.launch, frames=30)  # validation clips
    result["modes"]["streaming"]["median_ms"], result["modes"]["recompute"]["gmacs"], result["max_abs_diff"]

Protocol (the stored-run command is ``bench.run.latency_run``):

* frames come from the configured validation split, clip after clip, each clip's frames in time order, at
  batch 1 (``bench latency`` without the dataset: random frames of the evaluation size, ``input`` says so;
  ``bench.evaluation.latency_input``); the state (memory) is carried from frame to frame through
  ``bench.models.streaming.StreamingSegmenter``.
  Clip boundaries are scene cuts the memory does not know about; that changes outputs, not the cost.
* video models run in two modes: ``streaming`` (cached backbone features of the last T frames: one backbone
  pass per frame) and ``recompute`` (the whole T+1 window every frame, as the official code). A per-frame
  model (``memory_length`` 0) has one computation, measured once and reported as ``streaming``.
* per mode: the cold start (first frame after ``reset()``, with the memory filled by repeating it; the first
  mode measured also pays the process's first-call costs, reported as ``first_call_ms``), then at least
  ``max(warmup, T)`` untimed frames so the memory is full, then ``frames`` timed frames (one pass). Further
  passes stream the same timed frames again with the memory carried on: ``repeats`` passes (``--repeats``,
  ``launch.latency_repeats``), then up to ``max_extra_passes`` more while the measurement is unstable.
  ``median_ms`` is the median of the pass medians, ``iqr_ms`` their interquartile range and ``spread`` =
  IQR / median; ``unstable`` is true when the spread stays above ``max_spread`` (10%): one busy moment cannot
  move a median of medians, a machine busy throughout shows as unstable. p90, p99, mean, min, max and FPS
  (1000 / mean) are over all timed frames of all passes (``frames_median_ms`` is their median). Timing is wall
  clock around each step with ``torch.cuda.synchronize()`` on GPU (plus CUDA-event GPU time) and a fixed
  ``torch.set_num_threads`` on CPU.
* flow estimation (RAFT, DIS, Farneback) runs inside the model, so its time is counted.
* keyframe models (``dff``, ``accel``: a keyframe every k frames, ``bench.models.streaming``) add
  ``frame_types``: the timed frames split into ``key`` and ``non_key`` (median, p90, ... each) and
  ``cycle_mean_ms`` = (key median + (k - 1) * non-key median) / k; their ``gflops`` is the cycle mean, with
  ``gflops_key`` and ``gflops_non_key`` beside it (a classical OpenCV flow adds time but no counted FLOPs).
* FLOPs of one steady-state frame with ``torch.utils.flop_counter.FlopCounterMode``, which counts 2 FLOPs per
  multiply-add: ``gflops`` is that count, ``gmacs = gflops / 2`` is the mmseg/fvcore "GFLOPs" convention.
  Attention is counted on its true shapes (``bench.models.attention.tma_read_flops``: QK^T + SV, softmax not
  counted), also where the CPU kernel zero-pads head sizes.
* peak memory: CUDA ``max_memory_allocated`` per mode; on CPU the peak resident set size (Linux ``VmHWM``,
  reset per mode through ``/proc/self/clear_refs``; elsewhere ``ru_maxrss``, the process-lifetime peak).
* both modes' logits on the same frames must agree (max abs difference reported; a mismatch is an error).

``bench latency`` (``bench.run.latency_run``) takes the run's trained weights if it has a checkpoint, else a random
init (latency does not depend on them), and stores the result with the run. The trainer measures its in-memory
model with ``measure_model_latency`` when ``launch.latency`` is true and puts the result in the record.
Statistics of the times: ``bench.evaluation.latency_stats``; FLOPs: ``bench.evaluation.flops``; peak memory:
``bench.evaluation.measure``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from bench.config import DataConfig, LaunchConfig
from bench.errors import BenchError
from bench.evaluation.flops import FLOP_CONVENTION, count_parameters, flop_stats
from bench.evaluation.inference import needs_flow_input
from bench.evaluation.latency_input import latency_frames, stream_frames  # noqa: F401 - stream_frames re-exported
from bench.evaluation.latency_stats import UNSTABLE_SPREAD, frame_type_stats, summarise_passes, summarise_times
from bench.evaluation.measure import PeakMemory, cpu_details, cpu_model, cuda_sync
from bench.models.streaming import STREAM_MODES, StreamingSegmenter
from bench.progress import Progress

# 2: median_ms is the median of pass medians; adds iqr_ms, spread, pass_medians_ms, passes, unstable,
# frames_median_ms per mode and repeats, stability at the top (readers of schema 1 fields keep working)
LATENCY_SCHEMA = 2
DEFAULT_REPEATS = 5
MAX_EXTRA_PASSES = 5
# absorbs reordered floating-point sums (and TF32 on GPU).
AGREEMENT_RTOL = 1e-3


class ModeMismatchError(BenchError, RuntimeError):
    """Streaming and recompute logits differ by more than the tolerance: a caching bug."""


# --------------------------------------------------------------------------------------------------
# measurement helpers


# --------------------------------------------------------------------------------------------------
# one mode


def timed_step(
    stream: StreamingSegmenter, frame: Tensor, flow: Tensor | None, device: torch.device
) -> tuple[float, float | None, Tensor]:
    """One ``stream.step``: (wall ms, CUDA-event ms or None on the CPU, logits)."""
    frame = frame.to(device, non_blocking=True)
    flow = flow.to(device, non_blocking=True) if flow is not None else None
    cuda_sync(device)
    events = [torch.cuda.Event(enable_timing=True) for _ in range(2)] if device.type == "cuda" else []
    if events:
        events[0].record()
    t0 = time.perf_counter()
    logits = stream.step(frame, flow)
    if events:
        events[1].record()
    cuda_sync(device)
    elapsed = (time.perf_counter() - t0) * 1000.0
    return elapsed, events[0].elapsed_time(events[1]) if events else None, logits


def _first_pass(
    stream: StreamingSegmenter,
    frames: list[tuple[Tensor, Tensor | None]],
    warmup: int,
    device: torch.device,
    keep: set[int],
    types: list[str],
    gpu_times: list[float],
) -> tuple[float, list[float], dict[int, Tensor]]:
    """The first pass of ``measure_mode``: cold-start ms, the timed ms after the warm-up, the kept logits (CPU);
    frame types and GPU times are appended to ``types`` / ``gpu_times``."""
    cold_ms, first, kept = math.nan, [], {}
    bar = Progress(len(frames), f"latency {stream.mode}", unit="frame", leave=False)  # outside the timed region
    for i, (frame, flow) in enumerate(frames):
        elapsed, gpu_ms, logits = timed_step(stream, frame, flow, device)
        if i == 0:
            cold_ms = elapsed
        elif i > warmup:
            first.append(elapsed)
            types.append(stream.last_frame_type)
            gpu_times += [gpu_ms] if gpu_ms is not None else []
        if i in keep:
            kept[i] = logits.detach().float().cpu()
        bar.update(1)
    bar.close()
    return cold_ms, first, kept


def measure_mode(
    model: nn.Module,
    frames: list[tuple[Tensor, Tensor | None]],
    mode: str,
    warmup: int,
    device: torch.device,
    keep: set[int],
    repeats: int = 1,
    max_extra_passes: int = 0,
    max_spread: float = UNSTABLE_SPREAD,
) -> tuple[dict[str, Any], dict[int, Tensor]]:
    """Stream ``frames`` through ``model`` in ``mode``: frame 0 is the cold start, the next ``warmup`` frames
    are untimed, the rest are timed (the first pass); each further pass times those frames again (the memory
    carried on) until ``repeats`` passes, then while unstable up to ``max_extra_passes`` more
    (``summarise_passes``); the last frame is used for the FLOP count (``count_frame_flops``). Keyframe models
    add ``frame_types`` (``frame_type_stats``) and per-type FLOPs.

    Returns the statistics and the logits (on CPU, first pass) of the frame indices in ``keep``.
    """
    stream = StreamingSegmenter(model, mode=mode)
    stream.reset()
    memory = PeakMemory(device)
    memory.reset()
    gpu_times: list[float] = []
    types: list[str] = []
    last = len(frames) - 1  # the last frame is kept for the FLOP count
    cold_ms, first, kept = _first_pass(stream, frames[:last], warmup, device, keep, types, gpu_times)
    passes = [first]
    while len(passes) < repeats or (
        len(passes) < repeats + max_extra_passes and summarise_passes(passes, max_spread)["unstable"]
    ):
        steps = []
        for frame, flow in frames[warmup + 1 : last]:
            steps.append(timed_step(stream, frame, flow, device))
            types.append(stream.last_frame_type)
        passes.append([elapsed for elapsed, _, _ in steps])
        gpu_times += [gpu_ms for _, gpu_ms, _ in steps if gpu_ms is not None]
    stats: dict[str, Any] = {
        **summarise_passes(passes, max_spread),
        "cold_start_ms": cold_ms,
        "timed_frames": len(first),
        "peak_memory_mb": memory.peak_mb(),
        "peak_memory_kind": memory.kind,
        **flop_stats(stream, frames[last], device),
    }
    if stream.keyframe_interval:
        stats["frame_types"] = frame_type_stats([t for times in passes for t in times], types, stream.keyframe_interval)
    if gpu_times:
        stats["gpu_median_ms"] = summarise_times(gpu_times)["median_ms"]
    return stats, kept


# --------------------------------------------------------------------------------------------------
# both modes


def measure_latency(
    model: nn.Module,
    frames: list[tuple[Tensor, Tensor | None]],
    warmup: int = 5,
    modes: Sequence[str] = STREAM_MODES,
    device: torch.device | str = "cpu",
    threads: int | None = 2,
    repeats: int = DEFAULT_REPEATS,
    max_extra_passes: int = MAX_EXTRA_PASSES,
    max_spread: float = UNSTABLE_SPREAD,
) -> dict[str, Any]:
    """Latency, FLOPs and peak memory of ``model`` in each mode over the same frame sequence.

    ``frames``: (frame (1, 3, H, W), flow (1, T, 2, H, W) or None) in stream order. The number of timed frames
    per pass is ``len(frames) - 2 - max(warmup, T)`` (one cold-start frame and one FLOP-count frame are not
    timed); ``repeats`` passes, up to ``max_extra_passes`` more while a mode's spread exceeds ``max_spread``.
    """
    device = torch.device(device) if isinstance(device, str) else device
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown or not modes:
        raise ValueError(f"modes must be a non-empty subset of {STREAM_MODES}, got {list(modes)}")
    t = int(model.memory_length)
    warmup = max(int(warmup), t)  # the memory is full before timing starts
    if repeats < 1 or max_extra_passes < 0:
        raise ValueError(f"repeats must be >= 1 and max_extra_passes >= 0, got {repeats} and {max_extra_passes}")
    if len(frames) < warmup + 3:
        raise ValueError(
            f"need at least {warmup + 3} frames (cold start, {warmup} warm-up, 1 timed, 1 for FLOPs); got {len(frames)}"
        )
    modes = list(dict.fromkeys(modes)) if t > 0 else ["streaming"]
    previous_threads = torch.get_num_threads()
    if device.type == "cpu" and threads:
        torch.set_num_threads(int(threads))
    model = model.to(device).eval()
    keep = {0, warmup, len(frames) - 2} | set(range(1, min(t + 2, len(frames) - 1)))
    results: dict[str, Any] = {}
    outputs: dict[str, dict[int, Tensor]] = {}
    first_call = math.nan
    try:
        with torch.inference_mode():
            for i, mode in enumerate(modes):
                stats, outputs[mode] = measure_mode(
                    model, frames, mode, warmup, device, keep, repeats, max_extra_passes, max_spread
                )
                if i == 0:
                    first_call = stats["cold_start_ms"]
                results[mode] = stats
    finally:
        torch.set_num_threads(previous_threads)
    result = _latency_result(model, frames, device, threads, warmup, first_call, repeats, max_extra_passes, max_spread)
    result["modes"] = results
    result["stability"]["unstable_modes"] = [mode for mode, stats in results.items() if stats["unstable"]]
    if t == 0:
        result["modes_note"] = "memory_length 0: streaming and recompute are the same computation, measured once"
    if len(outputs) == 2:
        result.update(compare_modes(outputs, results))
    return result


def _latency_result(
    model: nn.Module,
    frames: list[tuple[Tensor, Tensor | None]],
    device: torch.device,
    threads: int | None,
    warmup: int,
    first_call: float,
    repeats: int,
    max_extra_passes: int,
    max_spread: float,
) -> dict[str, Any]:
    """The measurement's settings, environment and model size (``measure_latency`` adds the modes)."""
    return {
        "schema": LATENCY_SCHEMA,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "cpu": cpu_details(),
        "threads": int(threads) if device.type == "cpu" and threads else torch.get_num_threads(),
        "timer": "perf_counter + cuda.synchronize (and CUDA events)" if device.type == "cuda" else "perf_counter",
        "memory_length": int(model.memory_length),
        "image_size": list(frames[0][0].shape[-2:]),
        "batch_size": int(frames[0][0].shape[0]),
        "warmup": warmup,
        "frames": len(frames),
        "first_call_ms": first_call,
        "repeats": int(repeats),
        "stability": {
            "max_spread": max_spread,
            "max_extra_passes": int(max_extra_passes),
            "unstable_modes": [],
        },
        "flop_convention": FLOP_CONVENTION,
        **count_parameters(model),
        "modes": {},
        "torch": torch.__version__,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }


def compare_modes(outputs: dict[str, dict[int, Tensor]], results: dict[str, Any]) -> dict[str, Any]:
    """Streaming vs recompute on the same frames: max abs logit difference (an error past the tolerance) and
    the latency ratio."""
    diff, scale = 0.0, 0.0
    for index, logits in outputs["streaming"].items():
        other = outputs["recompute"][index]
        diff = max(diff, float((logits - other).abs().max()))
        scale = max(scale, float(logits.abs().max()))
    tolerance = AGREEMENT_RTOL * (1.0 + scale)
    if diff > tolerance:
        raise ModeMismatchError(
            f"streaming and recompute logits differ by {diff:.3g} (> {tolerance:.3g}) on the same frames"
        )
    return {
        "max_abs_diff": diff,
        "agreement_tolerance": tolerance,
        "modes_agree": True,
        "recompute_over_streaming": results["recompute"]["median_ms"] / results["streaming"]["median_ms"],
    }


# --------------------------------------------------------------------------------------------------
# the command


def measure_model_latency(
    model: nn.Module,
    name: str,
    data: DataConfig,
    launch: LaunchConfig,
    frames: int = 30,
    warmup: int = 5,
    threads: int | None = 2,
    modes: Sequence[str] = STREAM_MODES,
    device: torch.device | str = "cpu",
    weights: str = "",
    repeats: int | None = None,
    missing_data: str = "error",
) -> dict[str, Any]:
    """Latency of an in-memory ``model`` (registered as ``name``) on the validation clips of ``data`` (``frames``
    timed frames per mode and pass, ``repeats`` passes: default ``launch.latency_repeats``).

    ``weights`` says where the weights came from (stored in the result). ``missing_data``: "random" streams
    random frames of the evaluation size when the dataset cannot be read (``bench.evaluation.latency_input``;
    ``input`` in the result says which frames were streamed), "error" raises. Leaves the model in eval mode on
    ``device``.
    """
    t = int(model.memory_length)
    count = 1 + max(warmup, t) + frames + 1
    clip_frames, source = latency_frames(data, count, t, needs_flow_input(model), missing_data)
    repeats = launch.latency_repeats if repeats is None else repeats
    result = measure_latency(
        model,
        clip_frames,
        warmup=warmup,
        modes=modes,
        device=device,
        threads=threads,
        repeats=repeats,
    )
    result.update(
        {
            "model": name,
            "dataset": data.dataset,
            "split": data.val_split,
            "input": source,
            "weights": weights,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "hostname": os.uname().nodename,
        }
    )
    return result

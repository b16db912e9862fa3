"""The optical-flow family side by side: per-frame latency and FLOPs of flow_warp / DFF / Accel / TMANet / per_frame.

Run::

    python -m bench.perf.flow_family_bench                           # demo scale, 1 thread, about a minute
    python -m bench.perf.flow_family_bench --keyframe-intervals 1 2 5 10 --frames 40 --max-seconds 300

One run, one process, the same clips for every model: synthetic validation clips at the demo scale of
``configs/synthetic_tmanet.yaml`` (32x32, resnet10t, value/bottleneck/aux 32/64/32 channels, 6 classes, random
init), streamed clip after clip through ``bench.models.streaming.StreamingSegmenter`` (streaming mode, batch 1,
``torch.no_grad``, ``--threads`` torch and OpenCV threads). Rows are printed as they finish:

* per model: median ms per frame over ``--frames`` timed frames (after ``--warmup``), the median of keyframes and
  of other frames for keyframe models and their cycle mean (key + (k - 1) * non-key) / k, the flow estimator's
  share of the total time (forward hooks around ``model.flow_net``), and GFLOPs per frame
  (``torch.utils.flop_counter.FlopCounterMode``, 2 FLOPs per multiply-add, averaged over a keyframe cycle;
  OpenCV's DIS is not a torch operator and adds time, not counted FLOPs);
* cost growth with k: the DFF and Accel rows for each ``--keyframe-intervals`` value;
* FLOPs of DFF at k = 5 against per_frame per frame, at demo scale and at ``--full-size`` (512x1024) with the
  official head (resnet50c, 256/512/256 channels, 19 classes; counted on the meta device: shapes only, no
  arithmetic), ratio printed (target: at most 0.5);
* OpenCV DIS at ``--full-size`` on one thread, per preset (ms per image pair, median of ``--dis-pairs``), beside
  the figure the DIS paper gives (OpenCV's documentation states no timing for its presets).

``--max-seconds`` bounds the run: a section that would start after the budget is reported as skipped.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from baselines.accel import accel
from baselines.dff import dff
from baselines.flow_warp import flow_warp
from baselines.per_frame import per_frame
from bench.constants import IMAGENET_MEAN, IMAGENET_STD
from bench.data.synthetic import SyntheticVideo
from bench.flow.classical import DIS_PRESETS, dis_preset_id, to_grey_uint8
from bench.models.streaming import StreamingSegmenter
from bench.models.tmanet import tmanet

DEMO_HEAD = dict(backbone="resnet10t", value_channels=32, channels=64, aux_channels=32)
FULL_HEAD = dict(backbone="resnet50c", value_channels=256, channels=512, aux_channels=256)
# Kroeger et al., "Fast Optical Flow using Dense Inverse Search", ECCV 2016 (arXiv 1603.03590), abstract and
# Fig. 1: 300 Hz to 600 Hz on a single CPU core on Sintel (1024x436), preprocessing excluded
DIS_PAPER = "DIS paper: 300-600 Hz (3.3-1.7 ms) per pair on one CPU core at 1024x436 (Sintel), preprocessing excluded"


def demo_frames(count: int, size: tuple[int, int], seed: int = 0) -> Tensor:
    """``count`` frames (N, 1, 3, H, W) of synthetic validation clips (12 frames each) in stream order."""
    video = SyntheticVideo(size=size, num_classes=6, clip_length=12, object_speed=0.15, seed=seed)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    frames: list[Tensor] = []
    index = 0
    while len(frames) < count:
        clip = video.render("val", index, 12)
        frames += list(((torch.as_tensor(clip.frames).float() - mean) / std)[:, None])
        index += 1
    return torch.stack(frames[:count])


def build_models(ks: list[int], head: dict[str, Any], num_classes: int, source: str) -> dict[str, nn.Module]:
    """The models of one run, in print order (random init, eval mode)."""
    models: dict[str, nn.Module] = {
        "per_frame": per_frame(num_classes=num_classes, **head),
        "tmanet T=1": tmanet(num_classes=num_classes, memory_length=1, key_channels=16, **head),
        f"flow_warp T=1 {source}": flow_warp(num_classes=num_classes, memory_length=1, flow_source=source, **head),
    }
    for k in ks:
        models[f"dff k={k} {source}"] = dff(num_classes=num_classes, keyframe_interval=k, flow_source=source, **head)
    for k in ks:
        models[f"accel k={k} {source}"] = accel(
            num_classes=num_classes, keyframe_interval=k, flow_source=source, update_backbone=head["backbone"], **head
        )
    return {name: model.eval() for name, model in models.items()}


class FlowTimer:
    """Wall time spent inside ``model.flow_net`` (forward pre/post hooks), in ms."""

    def __init__(self, model: nn.Module) -> None:
        self.total_ms, self._start = 0.0, 0.0
        net = getattr(model, "flow_net", None)
        self.handles = (
            [] if net is None else [net.register_forward_pre_hook(self._begin), net.register_forward_hook(self._end)]
        )

    def _begin(self, *_: Any) -> None:
        self._start = time.perf_counter()

    def _end(self, *_: Any) -> None:
        self.total_ms += (time.perf_counter() - self._start) * 1e3

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def cycle_flops(model: nn.Module, frame: Tensor, flow: Tensor | None = None) -> float:
    """FLOPs per frame of a fresh stream over one keyframe cycle (one step for other models), memory filled."""
    stream = StreamingSegmenter(model, "streaming")
    k = int(getattr(model, "keyframe_interval", 0) or 1)
    with torch.no_grad():
        if not getattr(model, "keyframe_interval", 0):
            stream.step(frame, flow)  # fills the memory; the counted step is a steady-state one
        with FlopCounterMode(display=False) as counter:
            for _ in range(k):
                stream.step(frame, flow)
    return counter.get_total_flops() / k


def time_model(model: nn.Module, frames: Tensor, warmup: int) -> dict[str, Any]:
    """Stream ``frames`` (N, 1, 3, H, W): median ms per frame, per frame type, flow share, GFLOPs per frame."""
    stream = StreamingSegmenter(model, "streaming")
    timer = FlowTimer(model)
    times: dict[str, list[float]] = {"key": [], "non_key": []}
    flow_ms = total_ms = 0.0
    with torch.no_grad():
        for i, frame in enumerate(frames):
            before = timer.total_ms
            start = time.perf_counter()
            stream.step(frame)
            elapsed = (time.perf_counter() - start) * 1e3
            if i >= warmup:
                times[stream.last_frame_type].append(elapsed)
                total_ms, flow_ms = total_ms + elapsed, flow_ms + timer.total_ms - before
    timer.close()
    k = int(getattr(model, "keyframe_interval", 0) or 0)
    key = statistics.median(times["key"]) if times["key"] else float("nan")
    non_key = statistics.median(times["non_key"]) if times["non_key"] else key
    result = {
        "median_ms": statistics.median(times["key"] + times["non_key"]),
        "key_ms": key,
        "non_key_ms": non_key if k > 1 else None,
        "flow_share": flow_ms / total_ms if total_ms else 0.0,
        "gflops": cycle_flops(model, frames[0]) / 1e9,
    }
    result["cycle_ms"] = (key + (k - 1) * non_key) / k if k else result["median_ms"]
    return result


def print_row(name: str, row: dict[str, Any]) -> None:
    non_key = "" if row["non_key_ms"] is None else f"{row['non_key_ms']:8.2f}"
    print(
        f"{name:<26} {row['median_ms']:9.2f} {row['key_ms']:8.2f} {non_key:>8} {row['cycle_ms']:9.2f} "
        f"{100 * row['flow_share']:6.1f}% {row['gflops']:9.4f}",
        flush=True,
    )


def flops_ratio(head: dict[str, Any], size: tuple[int, int], num_classes: int, device: str) -> tuple[float, float]:
    """GFLOPs per frame of per_frame and of DFF k=5 (cycle mean) at ``size``; ground-truth flow on ``device``
    ("meta": shapes only), so only torch operators are counted, as for every model."""
    h, w = size
    frame = torch.zeros(1, 3, h, w, device=device)
    flow = torch.zeros(1, 4, 2, h, w, device=device)
    base = per_frame(num_classes=num_classes, **head).eval().to(device)
    key = dff(num_classes=num_classes, keyframe_interval=5, flow_source="ground_truth", **head).eval().to(device)
    return cycle_flops(base, frame) / 1e9, cycle_flops(key, frame, flow) / 1e9


def dis_timing(size: tuple[int, int], pairs: int) -> dict[str, float]:
    """Median ms per DIS image pair at ``size`` on one OpenCV thread, per preset (synthetic frames, grey uint8)."""
    frames = to_grey_uint8(demo_frames(pairs + 1, size)[:, 0])
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        result = {}
        for preset in DIS_PRESETS:
            dis = cv2.DISOpticalFlow_create(dis_preset_id(preset))
            dis.calc(frames[1], frames[0], None)  # first call: allocations
            times = []
            for i in range(pairs):
                start = time.perf_counter()
                dis.calc(frames[i + 1], frames[i], None)
                times.append((time.perf_counter() - start) * 1e3)
            result[preset] = statistics.median(times)
    finally:
        cv2.setNumThreads(previous)
    return result


def within_budget(args: argparse.Namespace, started: float, what: str) -> bool:
    """True while ``--max-seconds`` is not spent; else prints that ``what`` is skipped."""
    if time.perf_counter() - started <= args.max_seconds:
        return True
    print(f"skipped ({what}): --max-seconds {args.max_seconds:g} spent", flush=True)
    return False


def latency_section(args: argparse.Namespace, started: float) -> dict[str, dict[str, Any]]:
    """The demo-scale latency rows, printed as they finish."""
    if not within_budget(args, started, "latency rows"):
        return {}
    torch.manual_seed(0)
    frames = demo_frames(args.warmup + args.frames, tuple(args.size))
    models = build_models(args.keyframe_intervals, DEMO_HEAD, 6, args.flow_source)
    print(f"{'model':<26} {'ms/frame':>9} {'key':>8} {'non-key':>8} {'cycle ms':>9} {'flow':>7} {'GFLOPs':>9}")
    rows: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        if not within_budget(args, started, name):
            break
        rows[name] = time_model(model, frames, args.warmup)
        print_row(name, rows[name])
    return rows


def summary_section(args: argparse.Namespace, rows: dict[str, dict[str, Any]], started: float) -> None:
    """Cost growth with k, FLOPs ratios at both scales, DIS at full size."""
    base = rows.get("per_frame")
    for family in ("dff", "accel"):
        cycle = {
            k: rows[f"{family} k={k} {args.flow_source}"]["cycle_ms"]
            for k in args.keyframe_intervals
            if f"{family} k={k} {args.flow_source}" in rows
        }
        if base and cycle:
            print(
                f"{family} cycle ms / per_frame ms by k: "
                + ", ".join(f"k={k}: {ms / base['median_ms']:.2f}" for k, ms in cycle.items()),
                flush=True,
            )
    for label, head, size, classes, device in (
        ("demo", DEMO_HEAD, tuple(args.size), 6, "cpu"),
        ("full", {**FULL_HEAD, "backbone": args.full_backbone}, tuple(args.full_size), 19, "meta"),
    ):
        if not within_budget(args, started, f"FLOPs at {label} scale"):
            return
        pf, key = flops_ratio(head, size, classes, device)
        print(
            f"FLOPs per frame at {size[0]}x{size[1]} ({head['backbone']}): per_frame {pf:.3f} G, dff k=5 "
            f"{key:.3f} G, ratio {key / pf:.3f} (target <= 0.5)",
            flush=True,
        )
    if within_budget(args, started, "DIS at full size"):
        timing = dis_timing(tuple(args.full_size), args.dis_pairs)
        print(
            f"DIS at {args.full_size[0]}x{args.full_size[1]}, 1 OpenCV thread, median of {args.dis_pairs} pairs: "
            + ", ".join(f"{p} {ms:.1f} ms" for p, ms in timing.items()),
            flush=True,
        )
        print(f"  reference: {DIS_PAPER}; OpenCV's DISOpticalFlow documentation gives no timing per preset", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, nargs=2, default=[32, 32], metavar=("H", "W"))
    parser.add_argument("--full-size", type=int, nargs=2, default=[512, 1024], metavar=("H", "W"))
    parser.add_argument("--full-backbone", default="resnet50c", help="backbone of the full-size FLOP count")
    parser.add_argument("--keyframe-intervals", type=int, nargs="+", default=[1, 2, 5, 10])
    parser.add_argument("--flow-source", default="dis", choices=["dis", "farneback"])
    parser.add_argument("--frames", type=int, default=40, help="timed frames per model")
    parser.add_argument("--warmup", type=int, default=10, help="untimed frames first")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads for the latency rows")
    parser.add_argument("--dis-pairs", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="skip what would start after this")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(
        f"flow family, demo scale {args.size[0]}x{args.size[1]} ({DEMO_HEAD['backbone']}, random init), batch 1, "
        f"CPU, {args.threads} thread(s), torch {torch.__version__}, opencv {cv2.__version__}, numpy "
        f"{np.__version__}; median of {args.frames} frames after {args.warmup}",
        flush=True,
    )
    rows = latency_section(args, started)
    summary_section(args, rows, started)
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()

"""Per-frame latency: TMANet streaming (cached memory features) vs recompute (full window) vs per-frame baseline.

Run::

    python -m bench.perf.streaming_bench                                   # CPU: resnet18, 128x128, T=2
    python -m bench.perf.streaming_bench --backbone resnet50 --size 512 1024 --memory-length 4 --device cuda
    python -m bench.perf.streaming_bench --max-seconds 60    # stop streaming after 60 s (at least 1 timed frame)

Every model is in eval mode under ``torch.no_grad``; a stream of ``--frames`` random frames is processed by
``bench.models.streaming.StreamingSegmenter`` after ``--warmup`` frames, the three streams in lockstep, and the median
wall time per frame is printed (synchronised on CUDA). The head uses the official channels (key 64, value 256,
bottleneck 512) unless given. Expected: streaming runs the backbone once per frame (like per-frame) and adds
the memory encoders and the TMA read; recompute runs it T+1 times per frame, as the official test code.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from baselines.per_frame import per_frame
from bench.evaluation.measure import cuda_sync
from bench.models.streaming import StreamingSegmenter
from bench.models.tmanet import tmanet


def frame_latencies_ms(
    streams: list[StreamingSegmenter], frames: torch.Tensor, warmup: int, max_seconds: float = float("inf")
) -> list[list[float]]:
    """Milliseconds per ``step`` of every stream for ``frames`` (N, B, 3, H, W), first ``warmup`` excluded;
    the frames left once ``max_seconds`` are spent (after at least one timed frame) are not streamed.

    The streams advance in lockstep (frame k of every stream, then frame k+1), so load changes on a shared
    machine affect all of them alike.
    """
    device = frames.device
    times: list[list[float]] = [[] for _ in streams]
    for stream in streams:
        stream.reset()
    started = time.perf_counter()
    for k, frame in enumerate(frames):
        if k > warmup and time.perf_counter() - started > max_seconds:
            print(
                f"--max-seconds {max_seconds:.0f} spent: {k - warmup} of {len(frames) - warmup} frames timed",
                flush=True,
            )
            break
        for stream, record in zip(streams, times):
            cuda_sync(device)
            start = time.perf_counter()
            stream.step(frame)
            cuda_sync(device)
            if k >= warmup:
                record.append((time.perf_counter() - start) * 1e3)
    return times


def run(args: argparse.Namespace) -> list[tuple[str, float]]:
    device = torch.device(args.device)
    torch.manual_seed(0)
    head = dict(value_channels=args.value_channels, channels=args.channels, aux_channels=64)
    tma = (
        tmanet(
            num_classes=args.num_classes,
            backbone=args.backbone,
            memory_length=args.memory_length,
            key_channels=args.key_channels,
            attention=args.attention,
            **head,
        )
        .to(device)
        .eval()
    )
    base = per_frame(num_classes=args.num_classes, backbone=args.backbone, **head).to(device).eval()
    h, w = args.size
    frames = torch.randn(args.warmup + args.frames, args.batch, 3, h, w, device=device)
    names = ["per_frame", "tmanet streaming", "tmanet recompute"]
    streams = [
        StreamingSegmenter(base, "streaming"),
        StreamingSegmenter(tma, "streaming"),
        StreamingSegmenter(tma, "recompute"),
    ]
    times = frame_latencies_ms(streams, frames, args.warmup, args.max_seconds)
    return [(name, statistics.median(record)) for name, record in zip(names, times)]


def print_table(results: list[tuple[str, float]], args: argparse.Namespace) -> None:
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(
        f"per-frame latency, {args.backbone}, {args.size[0]}x{args.size[1]}, batch {args.batch}, "
        f"T={args.memory_length}, key/value/channels {args.key_channels}/{args.value_channels}/{args.channels}, "
        f"attention={args.attention}, device={args.device} ({device}), median of {args.frames} frames"
    )
    latency = dict(results)
    print(f"{'model':<18} {'ms/frame':>9} {'fps':>7} {'x per_frame':>11}")
    for name, ms in results:
        print(f"{name:<18} {ms:9.1f} {1e3 / ms:7.1f} {ms / latency['per_frame']:11.2f}")
    print(
        f"recompute / streaming = {latency['tmanet recompute'] / latency['tmanet streaming']:.2f} "
        f"(backbone calls per frame: {args.memory_length + 1} vs 1)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, ...")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--size", type=int, nargs=2, default=[128, 128], metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--memory-length", type=int, default=2)
    parser.add_argument("--num-classes", type=int, default=19)
    parser.add_argument("--key-channels", type=int, default=64)
    parser.add_argument("--value-channels", type=int, default=256)
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--attention", default="sdpa", choices=["sdpa", "reference"])
    parser.add_argument("--frames", type=int, default=None, help="timed frames (default 8 CPU, 50 CUDA)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="stop streaming after this many seconds (default 600; at least one timed frame)",
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed frames first (default 2 CPU, 10 CUDA)")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = args.device.startswith("cuda")
    args.frames = args.frames or (50 if cuda else 8)
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print_table(run(args), args)


if __name__ == "__main__":
    main()

"""Benchmark (not a test): TMANet per-frame latency, streaming vs recompute, at several memory lengths.

    python -m bench.perf.latency_ratio                                  # T = 1, 2, 4; small model, 64x64, CPU
    python -m bench.perf.latency_ratio --memory-lengths 1 2 4 8 --size 128 128 --frames 40 --threads 4
    python -m bench.perf.latency_ratio --config configs/cityscapes_tmanet.yaml --device cuda --size 769 769
    python -m bench.perf.latency_ratio --max-seconds 120 --repeats 5 --max-extra-passes 2

Each row is printed when its memory length is measured. The time is bounded: ``--repeats`` passes per mode and
at most ``--max-extra-passes`` more while a mode is unstable (default 0: an unstable row is printed flagged
``unstable`` rather than re-measured on a busy machine), and memory lengths not started within ``--max-seconds``
are skipped.

Every memory length runs in this one process on the same synthetic validation clips (streamed frame by frame,
``bench.evaluation.latency.measure_latency``), so the rows are side by side: the median ms per frame of each mode, their
ratio (recompute / streaming: how much the official recompute-everything inference costs over caching backbone
features), GMACs per frame of each mode, and the max abs difference between the two modes' logits.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch

from bench.config import load_config
from bench.data.build import build_dataset
from bench.distributed import resolve_device
from bench.evaluation.latency import measure_latency, stream_frames
from bench.run.model import build_model

SMALL_MODEL = [
    "model.backbone=resnet18",
    "model.key_channels=16",
    "model.value_channels=32",
    "model.channels=64",
    "model.aux_channels=32",
]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default=None, help="config file (default: built-in defaults + a small model)")
    p.add_argument("--memory-lengths", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--size", type=int, nargs=2, default=[64, 64], metavar=("H", "W"), help="synthetic frame size")
    p.add_argument("--frames", type=int, default=20, help="timed frames per mode")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per mode (median of pass medians)")
    p.add_argument(
        "--max-extra-passes",
        type=int,
        default=0,
        help="extra passes while a mode is unstable (default 0: flag it instead)",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=300.0,
        help="memory lengths not started within this many seconds are skipped (default 300)",
    )
    p.add_argument("overrides", nargs="*", default=[], help="dotted config overrides")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    base = [] if args.config else SMALL_MODEL
    overrides = base + [
        "model.name=tmanet",
        "data.dataset=synthetic",
        f"data.synthetic.size=[{args.size[0]},{args.size[1]}]",
        f"data.synthetic.clip_length={max(args.memory_lengths) + 2}",
        f"device={args.device}",
        *args.overrides,
    ]
    device = resolve_device(args.device)
    print(
        f"TMANet streaming vs recompute | device {device}, threads {args.threads}, {args.size[0]}x{args.size[1]}, "
        f"{args.frames} timed frames after {args.warmup} warm-up (at least T) | torch {torch.__version__}"
    )
    header = (
        f"{'T':>2} | {'stream ms':>9} | {'recomp ms':>9} | {'ratio':>5} | {'stream GMACs':>12} | "
        f"{'recomp GMACs':>12} | {'max|diff|':>9} | unstable"
    )
    print(header)
    print("-" * len(header), flush=True)
    started = time.perf_counter()
    for t in args.memory_lengths:
        if time.perf_counter() - started > args.max_seconds:
            print(f"{t:>2} | skipped: --max-seconds {args.max_seconds:.0f} spent", flush=True)
            continue
        cfg = load_config(args.config, overrides + [f"model.memory_length={t}"])
        dataset = build_dataset(cfg.data, cfg.data.val_split, t, train=False)
        torch.manual_seed(0)
        model = build_model(cfg)
        count = 1 + max(args.warmup, t) + args.frames + 1
        result = measure_latency(
            model,
            list(stream_frames(dataset, count)),
            warmup=args.warmup,
            device=device,
            threads=args.threads,
            repeats=args.repeats,
            max_extra_passes=args.max_extra_passes,
        )
        s, r = result["modes"]["streaming"], result["modes"]["recompute"]
        print(
            f"{t:>2} | {s['median_ms']:>9.2f} | {r['median_ms']:>9.2f} | {r['median_ms'] / s['median_ms']:>5.2f} | "
            f"{s['gmacs']:>12.3f} | {r['gmacs']:>12.3f} | {result['max_abs_diff']:>9.1e} | "
            f"{' '.join(result['stability']['unstable_modes']) or '-'}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark (not a test): whole-video evaluation throughput on the synthetic long videos, streaming against
recompute, and where the time goes (reading / rendering frames, the model, scoring, writing PNGs, mVC alone).

    python -m bench.perf.video_eval_bench                                  # T = 3, 16 videos x 24 frames, 64x64
    python -m bench.perf.video_eval_bench --memory-length 4 --size 128 --videos 8 --length 32 --batch 4
    python -m bench.perf.video_eval_bench --config configs/synthetic_tmanet.yaml --repeats 5 --max-seconds 120

Both modes evaluate the same videos in this one process, alternating (streaming, recompute, streaming, ...) for
``--repeats`` passes each, so a load change on the machine hits both; each pass writes the predictions as palette
PNGs in the submission layout to a temporary folder, as ``bench eval RUN eval.whole_videos=true --save-preds``
does (``bench.evaluation.videos.evaluate_videos`` with its ``timings``). Printed per mode: the median frames per
second over passes, the recompute / streaming time ratio, and the median share of each part of a pass; then the
share of mVC alone, measured by replaying the written predictions and the labels through
``bench.metrics.VideoConsistency`` (the "score" part is mVC plus the confusion counts). Passes not started within
``--max-seconds`` are skipped. Random weights: the cost does not depend on them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.config import Config, load_config
from bench.data.build import build_videos
from bench.data.catalog import dataset_info
from bench.data.submission import read_prediction, submission_file
from bench.distributed import resolve_device
from bench.evaluation.videos import evaluate_videos
from bench.metrics import VideoConsistency
from bench.run.model import build_model

PARTS = ("read", "predict", "score", "write")


def one_pass(model: torch.nn.Module, cfg: Config, mode: str, out: Path) -> tuple[float, dict[str, float], int]:
    """(wall seconds, seconds per part, frames) of one whole-video evaluation in ``mode``, PNGs written to ``out``."""
    cfg.eval.stream_mode = mode
    videos = build_videos(cfg.data, cfg.data.val_split)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    metrics = evaluate_videos(
        model, videos, cfg.eval, cfg.data, out_dir=out, palette=dataset_info(cfg.data).palette, timings=timings
    )
    return time.perf_counter() - start, timings, int(metrics["num_frames"])


def mvc_seconds(cfg: Config, out: Path) -> float:
    """Seconds ``VideoConsistency`` (every variant, ``eval.vc_windows``) takes over the written predictions."""
    videos = build_videos(cfg.data, cfg.data.val_split)
    pairs = []
    for name in videos.names[: cfg.eval.max_videos or None]:
        frames = list(videos.frames(name, images=False))
        preds = [read_prediction(submission_file(out, name, f.name), videos.num_classes) for f in frames]
        pairs.append((name, [f.raw for f in frames], preds))
    vc = VideoConsistency(cfg.eval.vc_windows, gt_lut=videos.gt_lut)
    start = time.perf_counter()
    for name, gts, preds in pairs:
        vc.begin_video(name)
        for gt, pred in zip(gts, preds):
            vc.add_frame(gt, pred)
        vc.end_video()
    return time.perf_counter() - start


def report(mode: str, passes: list[tuple[float, dict[str, float], int]], reference: float | None) -> float:
    """Print one mode's row; returns its median wall seconds per pass."""
    wall = statistics.median(p[0] for p in passes)
    frames = passes[0][2]
    shares = {part: statistics.median(p[1].get(part, 0.0) / p[0] for p in passes) for part in PARTS}
    ratio = f", {wall / reference:.2f}x streaming" if reference else ""
    text = ", ".join(f"{part} {100 * share:.1f}%" for part, share in shares.items())
    print(f"{mode:>10}: {frames / wall:8.1f} frames/s ({len(passes)} passes{ratio}); {text}", flush=True)
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/synthetic_tmanet.yaml")
    parser.add_argument("--memory-length", type=int, default=3)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--length", type=int, default=24, help="frames per video (> 8 for mVC_8, > 16 for mVC_16)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1, help="videos streamed together (eval.batch_size)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-seconds", type=float, default=float("inf"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = [
        f"model.memory_length={args.memory_length}",
        f"data.synthetic.size=[{args.size},{args.size}]",
        f"data.synthetic.val_clips={args.videos}",
        f"data.synthetic.val_video_length={args.length}",
        f"eval.batch_size={args.batch}",
        "eval.vc_windows=[8,16]",
        f"device={args.device}",
    ]
    cfg = load_config(args.config, overrides)
    model = build_model(cfg).to(resolve_device(cfg.device)).eval()
    print(
        f"{cfg.model.name} T={args.memory_length}, {args.videos} videos x {args.length} frames of {args.size}px, "
        f"batch {args.batch}, {args.threads} threads, {cfg.device}",
        flush=True,
    )
    passes: dict[str, list] = {"streaming": [], "recompute": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            if k and time.perf_counter() - started > args.max_seconds:
                print(f"--max-seconds {args.max_seconds:.0f} spent after {k} passes per mode", flush=True)
                break
            for mode in passes:
                passes[mode].append(one_pass(model, cfg, mode, Path(tmp) / mode))
        reference = report("streaming", passes["streaming"], None)
        report("recompute", passes["recompute"], reference)
        seconds = mvc_seconds(cfg, Path(tmp) / "streaming")
    print(
        f"{'mVC alone':>10}: {100 * seconds / reference:.1f}% of a streaming pass ({seconds * 1e3:.0f} ms for "
        f"{len(cfg.eval.vc_windows)} windows x 5 variants)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

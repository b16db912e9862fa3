"""Is the data loader the bottleneck? Data-loader wait per step next to the model's step time, in one run.

Run::

    python -m bench.perf.data_loader_bench configs/synthetic_tmanet.yaml
    python -m bench.perf.data_loader_bench configs/camvid_segnet11.yaml data.root=/tmp/camvid_root \
        train.batch_size=2 --steps 4 --warmup 1
    python -m bench.perf.data_loader_bench configs/cityscapes_tmanet.yaml data.num_workers=8 device=cuda
    python -m bench.perf.data_loader_bench configs/synthetic_tmanet.yaml --max-seconds 60   # stop timing after 60 s
    python -m bench.perf.data_loader_bench configs/cityscapes_tmanet.yaml --clip-cost --frames TDNet/Testing/data/vid1
    python -m bench.perf.data_loader_bench configs/cityscapes_tmanet.yaml data.root=/data/cityscapes --clip-cost \
        --memory-lengths 2 4 --clips 40

``--clip-cost`` measures something else: the CPU seconds to load and augment one training clip on one core, the
loader as it was (PIL, whole frames resized before the crop) against the fast path (pyspng, only the crop window
resized), side by side on the same files and random draws (``bench.perf.clip_cost``). ``--frames DIR`` takes a
folder of consecutive Cityscapes frames without labels (the TDNet repository's ``Testing/data/vid1``) and builds a
temporary layout with stand-in labels.

Each timed step is printed as it finishes; ``--max-seconds`` ends the timing early (at least one timed step).

For the recipe (config + overrides; ``model.pretrained`` is forced off: random init) it builds the training
split, ``bench.engine.batches.InfiniteBatches`` with the recipe's ``data.num_workers`` (-1 = auto, resolved as in
training) and the model, then for ``--steps`` steps after ``--warmup`` untimed ones measures, alternately:

* data ms: wall time of ``next(batches)`` (with workers, the time the step waits for a batch; with 0 workers,
  loading, augmenting and collating the batch in the process);
* model ms: host-to-device copy, forward, loss and backward on ``device`` (synchronised on CUDA), plain fp32
  (``train.amp`` is not applied), no optimiser step.

It prints medians and ``data / model``: above 1 the GPU (or CPU) waits for data; with 0 workers the ratio is the
number of workers that would keep up (if the machine has the cores). The whole batch ``train.batch_size`` runs in
this one process (no DDP split).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from bench.config import Config, load_config
from bench.data.build import build_dataset
from bench.distributed import DistEnv, LoaderSettings, resolve_device
from bench.engine.batches import InfiniteBatches
from bench.engine.recipe import total_loss
from bench.evaluation.measure import cuda_sync
from bench.perf.clip_cost import cityscapes_layout_from_frames, clip_cost_report, measure_clip_cost
from bench.run.model import build_model


def measure(
    cfg: Config,
    steps: int,
    warmup: int,
    max_seconds: float = math.inf,
    on_step: Callable[[float, float], None] | None = None,
) -> dict[str, Any]:
    """``{"data_ms", "model_ms"}`` lists over ``steps`` timed steps (fewer when ``max_seconds`` is spent; at least
    one), plus the resolved workers and device; ``on_step(data_ms, model_ms)`` is called after each timed step."""
    started = time.perf_counter()
    device = resolve_device(cfg.device)
    env = DistEnv(device=device)
    model = build_model(cfg).to(device).train()
    dataset = build_dataset(cfg.data, cfg.data.train_split, int(cfg.model.memory_length), train=True)
    batches = InfiniteBatches(dataset, int(cfg.train.batch_size), int(cfg.train.seed), env, LoaderSettings.of(cfg.data))
    data_ms, model_ms = [], []
    for i in range(warmup + steps):
        start = time.perf_counter()
        batch = next(batches)
        loaded = time.perf_counter()
        frames = batch["frames"].to(device, non_blocking=True)
        label = batch["label"].to(device, non_blocking=True)
        flow = batch["flow"].to(device, non_blocking=True) if "flow" in batch else None
        total = total_loss(model(frames, flow), label, cfg.train)[0]
        total.backward()
        model.zero_grad(set_to_none=True)
        cuda_sync(device)
        done = time.perf_counter()
        if i >= warmup:
            data_ms.append(1000 * (loaded - start))
            model_ms.append(1000 * (done - loaded))
            if on_step is not None:
                on_step(data_ms[-1], model_ms[-1])
            if done - started > max_seconds:
                break
    return {
        "data_ms": data_ms,
        "model_ms": model_ms,
        "num_workers": batches.num_workers,
        "device": str(device),
        "batch_shape": list(batch["frames"].shape),
    }


def report(result: dict[str, Any]) -> str:
    """The medians, the ratio and the setting, as printable lines."""
    data, model = statistics.median(result["data_ms"]), statistics.median(result["model_ms"])
    return "\n".join(
        [
            f"device {result['device']}, data workers {result['num_workers']}, batch frames {result['batch_shape']}, "
            f"{len(result['data_ms'])} timed steps",
            f"data-loader ms/step (median): {data:9.1f}   (min {min(result['data_ms']):.1f}, "
            f"max {max(result['data_ms']):.1f})",
            f"model ms/step (median):       {model:9.1f}   (forward + backward, random init)",
            f"data / model:                 {data / model:9.3f}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="recipe YAML, e.g. configs/camvid_segnet11.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.root=/tmp/camvid_root")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (worker start-up; default 2)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="stop timing after this many seconds (default 600; at least one timed step)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads on CPU (0 = torch's default)")
    parser.add_argument("--clip-cost", action="store_true", help="CPU-s per clip: reference vs fast loader path")
    parser.add_argument("--memory-lengths", type=int, nargs="+", default=[2, 4], help="--clip-cost: T values")
    parser.add_argument("--clips", type=int, default=22, help="--clip-cost: clips per path and T (default 22)")
    parser.add_argument("--frames", help="--clip-cost: folder of consecutive *_leftImg8bit.png frames, no labels")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.clips < 1:
        parser.error("--steps and --clips must be >= 1 and --warmup >= 0")
    if args.clip_cost:
        clip_cost(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, [*args.overrides, "model.pretrained=false"])
    step = iter(range(1, args.steps + 1))
    show = lambda data, model: print(f"step {next(step)}: data {data:.1f} ms, model {model:.1f} ms", flush=True)  # noqa: E731
    print(report(measure(cfg, args.steps, args.warmup, args.max_seconds, show)))


def clip_cost(args: argparse.Namespace) -> None:
    """``--clip-cost``: on one torch thread (unless ``--threads``), optionally on a layout built from ``--frames``."""
    torch.set_num_threads(args.threads or 1)
    with tempfile.TemporaryDirectory(prefix="clip-cost-") as scratch:
        overrides = list(args.overrides)
        if args.frames:
            labelled = cityscapes_layout_from_frames(Path(args.frames), Path(scratch), max(args.memory_lengths))
            print(f"{labelled} clips from {args.frames} (stand-in labels; bench.perf.clip_cost)")
            overrides += [f"data.root={scratch}", "data.train_split=val", "data.dataset=cityscapes"]
        cfg = load_config(args.config, [*overrides, "model.pretrained=false"])
        print(clip_cost_report(measure_clip_cost(cfg, tuple(args.memory_lengths), args.clips)))


if __name__ == "__main__":
    main()

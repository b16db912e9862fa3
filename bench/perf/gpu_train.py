"""``make gpu-check`` part 4: one training step of the Cityscapes recipe (``configs/cityscapes_tmanet.yaml``: global
batch, 769 crop; random init) on random tensors, synchronised between phases: data (making the batch on the host
and copying it), forward (+ loss), backward, optimizer; GPU memory, GPU utilisation (``torch.cuda.utilization``,
which needs pynvml) and the projected time of the recipe's 80k iterations. A global batch that does not fit on
one GPU is measured at the recipe's per-GPU batch instead, with a note.

    from bench.perf.gpu_train import train_step
    train_step(ctx)                                    # ctx: bench.perf.gpu_context.PartContext
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import torch

from bench.config import load_config
from bench.engine.optimizer import build_optimizer, scheduled_lr, set_lr
from bench.engine.recipe import MixedPrecision, total_loss
from bench.evaluation.measure import cuda_sync
from bench.perf.gpu_context import RECIPE, SMOKE_MODEL, PartContext
from bench.run.model import build_model


class UtilisationSampler:
    """Mean and max of ``torch.cuda.utilization()`` (needs pynvml) sampled every 50 ms in a thread."""

    def __init__(self, device: torch.device) -> None:
        self.samples: list[int] = []
        self.reason = ""
        try:
            torch.cuda.utilization(device)
            self.device = device
        except Exception as err:  # noqa: BLE001 - pynvml missing or no NVML: reported as n/a
            self.device, self.reason = None, f"n/a ({type(err).__name__}: {err})"[:120]

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.samples.append(int(torch.cuda.utilization(self.device)))
            time.sleep(0.05)

    def __enter__(self) -> UtilisationSampler:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True) if self.device is not None else None
        if self._thread:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return self.reason or "n/a (no sample)"
        return f"mean {statistics.mean(self.samples):.0f}%, max {max(self.samples)}% ({len(self.samples)} samples)"


def _phase_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    amp: MixedPrecision,
    cfg: Any,
    batch: int,
    device: torch.device,
    iteration: int,
) -> dict[str, float]:
    """One SGD step on random tensors, synchronised between phases: ms of data, forward, backward, optimizer."""
    h, w = cfg.data.crop_size
    clock: list[float] = [time.perf_counter()]

    def lap() -> None:
        cuda_sync(device)
        clock.append(time.perf_counter())

    frames = torch.randn(batch, int(model.memory_length) + 1, 3, h, w).to(device, non_blocking=True)
    label = torch.randint(0, 19, (batch, h, w)).to(device, non_blocking=True)
    lap()
    with amp.autocast():
        out = model(frames)
    total = total_loss(out, label, cfg.train)[0]
    lap()
    amp.scaler.scale(total).backward()
    lap()
    set_lr(optimizer, scheduled_lr(iteration, cfg.train))
    amp.scaler.step(optimizer)
    amp.scaler.update()
    optimizer.zero_grad(set_to_none=True)
    lap()
    return {k: 1e3 * (b - a) for k, a, b in zip(("data", "forward", "backward", "optimizer"), clock, clock[1:])}


def _train_steps(ctx: PartContext, cfg: Any, batch: int, steps: int) -> list[dict[str, float]]:
    torch.manual_seed(0)
    model = build_model(cfg).to(ctx.device).train()
    optimizer, amp = build_optimizer(model, cfg.train), MixedPrecision.create(cfg.train.amp, ctx.device)
    times = []
    for i in range(steps):
        if i > 1 and ctx.out_of_budget(f"step {i + 1} of {steps}"):
            break
        times.append(_phase_step(model, optimizer, amp, cfg, batch, ctx.device, i))
    return times


def train_step(ctx: PartContext) -> None:
    overrides = ["model.pretrained=false", f"device={ctx.device.type}"]
    overrides += (SMOKE_MODEL + ["data.crop_size=[32,32]", "train.batch_size=2"]) if ctx.smoke else []
    cfg = load_config(RECIPE, overrides)
    batch, steps = int(cfg.train.batch_size), (2 if ctx.smoke else 5)
    cuda = ctx.device.type == "cuda"
    sampler = UtilisationSampler(ctx.device) if cuda else None
    if cuda:
        torch.cuda.reset_peak_memory_stats(ctx.device)
    times = None
    try:
        with sampler or _Null():
            times = _train_steps(ctx, cfg, batch, steps)
    except torch.cuda.OutOfMemoryError:
        pass  # retried below, outside this block, once the traceback (holding the model) is gone
    if times is None:
        per_gpu = batch // max(int(cfg.launch.gpus_per_node), 1)
        ctx.notes.append(
            f"global batch {batch} ran out of GPU memory on one GPU; measured the recipe's per-GPU "
            f"batch {per_gpu} instead ({cfg.launch.gpus_per_node} GPUs in the recipe)"
        )
        torch.cuda.empty_cache()
        batch = per_gpu
        with sampler or _Null():
            times = _train_steps(ctx, cfg, batch, steps)
    _train_rows(ctx, cfg, batch, times, sampler)


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _train_rows(ctx: PartContext, cfg: Any, batch: int, times: list[dict[str, float]], sampler: Any) -> None:
    timed = times[1:] if len(times) > 1 else times  # the first step pays cuDNN / allocator warm-up
    for phase in ("data", "forward", "backward", "optimizer"):
        ctx.add({"phase": phase, "median_ms": statistics.median(t[phase] for t in timed)})
    step_ms = statistics.median(sum(t.values()) for t in timed)
    iters = int(cfg.train.iters)
    ctx.add({"phase": "step", "median_ms": step_ms})
    cuda = ctx.device.type == "cuda"
    memory = (
        (
            f"max allocated {torch.cuda.max_memory_allocated(ctx.device) / 2**30:.1f} GiB, max reserved "
            f"{torch.cuda.max_memory_reserved(ctx.device) / 2**30:.1f} GiB"
        )
        if cuda
        else "n/a (CPU)"
    )
    ctx.notes += [
        f"batch {batch} clips of {int(cfg.model.memory_length) + 1} frames at "
        f"{cfg.data.crop_size[0]}x{cfg.data.crop_size[1]}, {cfg.model.backbone}, amp={cfg.train.amp}, "
        f"random init, random tensors (data = making the batch on the host + copy to the device; the "
        f"real loader: python -m bench.perf.data_loader_bench); median of {len(timed)} steps after 1",
        f"GPU memory: {memory}",
        f"GPU utilisation: {sampler.summary() if sampler else 'n/a (CPU)'}",
        f"projected {iters} iterations at this step time: {step_ms * iters / 3.6e6:.1f} h on this one "
        f"device (the recipe: {cfg.launch.gpus_per_node} GPUs sharing the global batch)",
    ]
    ctx.status = "done"

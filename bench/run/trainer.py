"""The shared trainer: one recipe for every model (tmanet.md §3), resumable, then evaluation and the run record.

    bench train configs/synthetic_tmanet.yaml train.iters=200          # command line
    torchrun --nproc-per-node 4 -m bench train CONFIG                   # DDP (also: srun with several tasks)

    record = train_and_evaluate(cfg, run_dir)                           # Python; returns record.json's dict

Recipe: SGD with momentum and weight decay on every parameter; poly learning rate with a floor,
``lr = (base - min) * (1 - it / iters) ** power + min`` per iteration (mmcv's poly with ``min_lr``); cross-entropy
with ignore index 255 averaged over all pixels (mmseg) or over valid pixels; auxiliary loss times
``train.aux_weight``; optional AMP (CUDA only) and gradient clipping.

Run directory (``run_dir``): ``log.jsonl`` every ``train.log_every`` iterations, ``checkpoint.pt`` every
``train.checkpoint_every`` iterations, at the end and when SIGUSR2 / SIGTERM arrives. Starting a run whose
directory holds a checkpoint resumes it exactly (weights, optimizer, AMP scaler, iteration, RNG states, data
position). The trainer does not read or write ``record.json``, ``config.yaml`` or ``claim.json`` and does not
check the stored config: ``bench.run.execute`` does (one way to execute a run).

Determinism: every augmented sample is drawn from its own seed ``(train.seed, epoch, index)`` and the sampler
is seeded per epoch, so the data stream does not depend on worker count or on where a run was interrupted; on
CPU an interrupted and resumed run ends with bit-identical weights (tests/test_trainer_resume.py).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from bench.run.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from bench.constants import IGNORE_INDEX
from bench.distributed import DistEnv, all_reduce_sum, barrier, init_distributed, shutdown_distributed
from bench.run.records import make_record, write_text_atomic
from bench.seeding import rng_state, sample_seed, seed_everything, set_rng_state

PREEMPTION_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGUSR2, signal.SIGTERM)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf; ``checkpoint.pt`` still holds the last good state."""

    def __init__(self, iteration: int, loss: float, aux_loss: float, checkpoint: Path) -> None:
        self.iteration = iteration
        super().__init__(f"non-finite loss at iteration {iteration} (loss={loss}, aux_loss={aux_loss}); training "
                         f"stopped and {checkpoint} keeps the last good state. Lower train.lr, set "
                         f"train.grad_clip, or use train.amp=none/bf16 instead of fp16")


class TrainingInterrupted(RuntimeError):
    """Training stopped early with a checkpoint saved (a preemption signal or the ``stop_after`` test hook)."""

    def __init__(self, message: str, iteration: int, signum: int | None = None) -> None:
        super().__init__(message)
        self.iteration = iteration
        self.signum = signum


# --------------------------------------------------------------------------------------------------
# schedule and loss


def poly_lr(iteration: int, max_iters: int, base_lr: float, min_lr: float, power: float) -> float:
    """mmcv ``PolyLrUpdaterHook`` with ``min_lr``: ``(base - min) * (1 - it/max) ** power + min``, ``it`` 0-based."""
    progress = min(iteration, max_iters) / max(max_iters, 1)
    return (base_lr - min_lr) * (1.0 - progress) ** power + min_lr


def segmentation_loss(logits: Tensor, label: Tensor, average: str = "all_pixels",
                      ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Cross-entropy of logits (B, C, H, W) against label (B, H, W).

    ``all_pixels``: mean over every pixel, ignored ones counting 0 (mmseg, tmanet.md §1.8);
    ``valid_pixels``: mean over non-ignored pixels (0 when there are none).
    """
    if logits.shape[-2:] != label.shape[-2:]:
        raise ValueError(f"logits {tuple(logits.shape)} and label {tuple(label.shape)} differ in size; models "
                         f"must return logits at the input size")
    per_pixel = F.cross_entropy(logits.float(), label, ignore_index=ignore_index, reduction="none")
    if average == "all_pixels":
        return per_pixel.mean()
    if average == "valid_pixels":
        return per_pixel.sum() / (label != ignore_index).sum().clamp(min=1)
    raise ValueError(f"unknown loss average {average!r}; choose 'all_pixels' or 'valid_pixels'")


# --------------------------------------------------------------------------------------------------
# data: a seeded, resumable, infinite stream of batches


class SeededClips(Dataset):
    """Wraps a clip dataset; item ``(epoch, index)`` is ``dataset[index]`` drawn under its own RNG seed.

    The transforms use python/numpy/torch global generators; they are seeded from ``(seed, epoch, index)``
    for the call and restored afterwards, so augmentation is a pure function of that triple.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        seed = sample_seed(self.seed, epoch, index)
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.default_generator.manual_seed(seed)  # CPU only: CUDA generators stay untouched
        try:
            return self.dataset[index]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled with ``seed + epoch``) that yields ``(epoch, index)`` and can start
    ``start`` samples into an epoch."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        for index in list(super().__iter__())[self.start:]:
            yield self.epoch, index

    def __len__(self) -> int:
        return self.num_samples - self.start


class InfiniteBatches:
    """Endless batches over epochs; ``state_dict()`` = (epoch, batches consumed in it) resumes exactly."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, env: DistEnv, num_workers: int = 0) -> None:
        from bench.data.build import collate_clips

        self.dataset = SeededClips(dataset, seed)
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.collate = collate_clips
        self.pin_memory = env.device.type == "cuda"
        self.sampler = ResumableSampler(dataset, env.world_size, env.rank, seed)
        self.batches_per_epoch = self.sampler.num_samples // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(f"the training split has {len(dataset)} clips, fewer than one batch per process "  # type: ignore[arg-type]
                             f"(train.batch_size={batch_size} x {env.world_size} processes)")
        self.epoch = 0
        self.position = 0
        self._iterator: Iterator[dict] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._iterator = None

    def _start(self) -> None:
        self.sampler.set_position(self.epoch, self.position * self.batch_size)
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=self.sampler, drop_last=True,
                            num_workers=self.num_workers, collate_fn=self.collate, pin_memory=self.pin_memory,
                            # its own generator: creating an iterator must not draw from the global RNG
                            generator=torch.Generator().manual_seed(self.seed + self.epoch))
        self._iterator = iter(loader)

    def __iter__(self) -> "InfiniteBatches":
        return self

    def __next__(self) -> dict:
        if self.position >= self.batches_per_epoch:
            self.epoch, self.position, self._iterator = self.epoch + 1, 0, None
        if self._iterator is None:
            self._start()
        assert self._iterator is not None
        batch = next(self._iterator)
        self.position += 1
        return batch


# --------------------------------------------------------------------------------------------------
# preemption signals


class PreemptionSignals:
    """Catches SIGUSR2 / SIGTERM during training: the handler only records the signal; the loop saves a
    checkpoint at the next iteration boundary and then hands the signal to the previous handler.

    A previous Python handler (e.g. submitit's, which requeues the job) is called; if it returns, training
    goes on. With the default disposition the trainer raises ``TrainingInterrupted`` and the signal is
    re-raised after clean-up, so the process ends as the signal intended. Ignored signals stay ignored.
    """

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.pending: int | None = None

    def __enter__(self) -> "PreemptionSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in PREEMPTION_SIGNALS:
                previous = signal.getsignal(sig)
                if previous is signal.SIG_IGN:
                    continue
                self.previous[sig] = previous
                signal.signal(sig, self._record)
        return self

    def _record(self, signum: int, frame: Any) -> None:
        # SLURM preemption (and submitit's job._interrupt) sends SIGTERM and then USR2 within milliseconds;
        # USR2 is the one submitit requeues on, so it must not be dropped behind a pending SIGTERM
        if self.pending is None or (self.pending == signal.SIGTERM and signum == signal.SIGUSR2):
            self.pending = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self.previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self.previous.clear()

    def forward(self, signum: int, iteration: int, checkpoint: Path) -> None:
        """Pass ``signum`` on after the checkpoint is saved (see the class docstring)."""
        self.pending = None
        name = signal.Signals(signum).name
        print(f"bench: {name} received; checkpoint {checkpoint} saved at iteration {iteration}; rerun the same "
              f"command (or let the launcher requeue) to resume", file=sys.stderr, flush=True)
        previous = self.previous.get(signum)
        if callable(previous):
            previous(signum, None)
            return
        raise TrainingInterrupted(f"stopped by {name} at iteration {iteration}; {checkpoint} saved", iteration, signum)


# --------------------------------------------------------------------------------------------------
# helpers


def amp_setup(amp: str, device: torch.device) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """(autocast dtype or None, GradScaler for fp16 or None); AMP is CUDA-only here and ignored elsewhere."""
    if amp == "none":
        return None, None
    if device.type != "cuda":
        warnings.warn(f"train.amp={amp} ignored on {device}: mixed precision is CUDA-only, training in float32",
                      stacklevel=2)
        return None, None
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return dtype, (torch.amp.GradScaler("cuda") if amp == "fp16" else None)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA max allocated memory, or the process's peak resident set size on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    except ImportError:  # not on POSIX
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def _truncate_log(path: Path, iteration: int) -> None:
    """Drop log lines written after ``iteration`` (they belong to work lost when the run was interrupted)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut short when the process was killed
            continue
        if entry.get("iter", 0) <= iteration:
            kept.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in kept))


class _Progress:
    """tqdm bar on a TTY (rank 0), otherwise nothing; log lines are printed when there is no bar."""

    def __init__(self, enabled: bool, total: int, initial: int) -> None:
        self.bar = None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True)

    def step(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def line(self, entry: dict[str, Any]) -> None:
        if self.enabled and self.bar is None:
            print(json.dumps(entry), flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------------------------------
# the run


def train_and_evaluate(cfg: Any, run_dir: Path, *, hooks: Any = (), stop_after: int | None = None) -> dict[str, Any]:
    """Train ``cfg`` in ``run_dir`` (resuming its checkpoint), evaluate, and return the record on every rank.

    ``stop_after`` (tests): save a checkpoint after that many iterations and raise ``TrainingInterrupted``,
    as a preemption would.
    """
    from bench.models.registry import load_plugins

    run_dir = Path(run_dir)
    load_plugins(cfg.plugins)
    env = init_distributed(cfg.device)
    try:
        return _run(cfg, run_dir, env, stop_after)
    except TrainingInterrupted as err:
        if err.signum is None:
            raise
        shutdown_distributed(env)
        signal.signal(err.signum, signal.SIG_DFL)  # end as the signal's default action would have
        os.kill(os.getpid(), err.signum)
        raise
    finally:
        shutdown_distributed(env)


def _run(cfg: Any, run_dir: Path, env: DistEnv, stop_after: int | None) -> dict[str, Any]:
    from bench.config import to_dict
    from bench.data.build import build_dataset
    from bench.run.evaluate import build_eval_dataset, build_model_for, evaluate_model

    started = time.perf_counter()
    tcfg = cfg.train
    device = env.device
    seed_everything(tcfg.seed, tcfg.deterministic)
    model = build_model_for(cfg)
    train_set = build_dataset(cfg.data, cfg.data.train_split, int(model.memory_length), train=True)
    model.to(device)
    if env.distributed and tcfg.sync_bn:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            warnings.warn("train.sync_bn ignored on CPU (SyncBatchNorm needs CUDA)", stacklevel=2)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=tcfg.lr, momentum=tcfg.momentum, weight_decay=tcfg.weight_decay)
    amp_dtype, scaler = amp_setup(tcfg.amp, device)
    network: nn.Module = model
    if env.distributed:
        network = nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    batches = InfiniteBatches(train_set, tcfg.batch_size, tcfg.seed, env, cfg.data.num_workers)

    checkpoint_path = run_dir / CHECKPOINT_NAME
    log_path = run_dir / "log.jsonl"
    iteration, elapsed_before = 0, 0.0
    if checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path, map_location="cpu")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        batches.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        iteration, elapsed_before = int(state["iteration"]), float(state.get("elapsed_s", 0.0))
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _truncate_log(log_path, iteration)

    def save(at: int) -> None:
        if env.is_main:
            save_checkpoint(checkpoint_path, {
                "iteration": at, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None, "rng": rng_state(),
                "data": batches.state_dict(), "elapsed_s": elapsed_before + time.perf_counter() - started,
                "config": to_dict(cfg), "config_hash": _hash(cfg),
            })
        barrier(env)

    def log_line(entry: dict[str, Any]) -> None:
        if env.is_main:
            with open(log_path, "a") as handle:
                handle.write(json.dumps(entry) + "\n")
            progress.line(entry)

    val: tuple[Dataset, bool, str | None] | None = None
    progress = _Progress(env.is_main, tcfg.iters, iteration)
    window = {"loss": 0.0, "aux": 0.0, "n": 0, "t": time.perf_counter()}
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    saved_at = iteration if checkpoint_path.is_file() else -1
    network.train()
    try:
        with PreemptionSignals() as signals:
            while iteration < tcfg.iters:
                batch = next(batches)
                lr = poly_lr(iteration, tcfg.iters, tcfg.lr, tcfg.min_lr, tcfg.poly_power)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                frames = batch["frames"].to(device, non_blocking=True)
                label = batch["label"].to(device, non_blocking=True)
                flow = batch["flow"].to(device, non_blocking=True) if "flow" in batch else None
                with autocast():
                    out = network(frames, flow)
                loss = segmentation_loss(out["out"], label, tcfg.loss_average)
                aux_loss = (segmentation_loss(out["aux"], label, tcfg.loss_average) if "aux" in out
                            else loss.new_zeros(()))
                total = loss + tcfg.aux_weight * aux_loss
                # one all-reduce: mean losses (for the NaN check and the log) and whether any rank was signalled
                stats = torch.stack([loss.detach(), aux_loss.detach(),
                                     loss.new_tensor(float(signals.pending is not None))])
                stats = all_reduce_sum(stats, env)
                mean_loss, mean_aux = (float(v) / env.world_size for v in stats[:2])
                if not (math.isfinite(mean_loss) and math.isfinite(mean_aux)):
                    raise NonFiniteLossError(iteration + 1, mean_loss, mean_aux, checkpoint_path)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(total).backward()
                    if tcfg.grad_clip > 0:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(trainable, tcfg.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    total.backward()
                    if tcfg.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(trainable, tcfg.grad_clip)
                    optimizer.step()
                iteration += 1
                progress.step(mean_loss)
                window["loss"] += mean_loss
                window["aux"] += mean_aux
                window["n"] += 1
                if iteration % tcfg.log_every == 0 or iteration == tcfg.iters:
                    now = time.perf_counter()
                    log_line({
                        "iter": iteration, "loss": window["loss"] / window["n"], "aux_loss": window["aux"] / window["n"],
                        "lr": lr, "throughput": window["n"] * tcfg.batch_size * env.world_size / (now - window["t"]),
                        "max_memory_mb": round(peak_memory_mb(device), 1),
                        "elapsed_s": round(elapsed_before + now - started, 3),
                    })
                    window = {"loss": 0.0, "aux": 0.0, "n": 0, "t": now}
                if tcfg.eval_every and iteration % tcfg.eval_every == 0 and iteration < tcfg.iters:
                    val = val or build_eval_dataset(cfg, model)
                    saved_rng = rng_state()
                    metrics = evaluate_model(model, val[0], cfg.eval, env, with_tc=val[1], tc_skipped=val[2],
                                             num_workers=cfg.data.num_workers)
                    set_rng_state(saved_rng)
                    log_line({"iter": iteration, "val": metrics})
                    window["t"] = time.perf_counter()
                signalled = float(stats[2]) > 0
                stopping = stop_after is not None and iteration >= stop_after and iteration < tcfg.iters
                if signalled or stopping or iteration % tcfg.checkpoint_every == 0 or iteration == tcfg.iters:
                    save(iteration)
                    saved_at = iteration
                if signalled:
                    signals.forward(signals.pending or signal.SIGTERM, iteration, checkpoint_path)
                if stopping:
                    raise TrainingInterrupted(f"stopped after iteration {iteration} (stop_after); "
                                              f"{checkpoint_path} saved", iteration)
    finally:
        progress.close()
    if saved_at != iteration:  # e.g. train.iters=0: the record still points at a checkpoint
        save(iteration)

    val = val or build_eval_dataset(cfg, model)
    if val[2]:
        warnings.warn(f"temporal consistency skipped: {val[2]}", stacklevel=2)
    metrics = evaluate_model(model, val[0], cfg.eval, env, with_tc=val[1], tc_skipped=val[2],
                             num_workers=cfg.data.num_workers)
    record = make_record(cfg, metrics=metrics, device=str(device), iters=iteration,
                         wall_time_s=elapsed_before + time.perf_counter() - started,
                         checkpoint=checkpoint_path)
    if env.is_main:
        log_line({"iter": iteration, "val": metrics})
    barrier(env)
    return record


def _hash(cfg: Any) -> str:
    from bench.run.identity import config_hash

    return config_hash(cfg)

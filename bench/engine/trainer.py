"""The shared trainer: one recipe for every model (docs/tmanet.md §3), resumable, then evaluation and the run record.

    result = train(job, hooks=[MyHook()])      # a TrainJob from bench.run.execute.train_job; -> TrainResult
    record = bench.run.execute.train_and_evaluate(cfg, run_dir)     # the same, from a config, as record.json's dict

    torchrun --nproc-per-node 4 -m bench train CONFIG               # DDP (also: srun with several tasks)

The run is six named stages in one loop (``_train``): **setup** (seed, model, data, optimiser), **resume** (the
run's ``checkpoint.pt``, if any: weights, optimiser, AMP scaler, iteration, RNG states, data position), then per
iteration **step** (one SGD step, bench.engine.recipe) and **log** (hooks, ``log.jsonl``), **evaluate** every
``train.eval_every`` iterations, a checkpoint every ``train.checkpoint_every``; and **finish**: the final
checkpoint, a check that the weights and one batch of logits are finite (``bench.engine.finite``), evaluation,
latency (with ``launch.latency``) and the ``TrainResult``, returned on every rank.

Files (the paths of the job, named by ``bench.run.rundir.RunDir``): the trainer writes only the run's checkpoint
and ``log.jsonl`` (``bench.engine.train_log``; and the loggers it is asked for, e.g. ``tensorboard/``);
``record.json``, ``config.yaml``, claims and the check that the run directory belongs to the config belong to the
caller (``bench.run.execute``). The model comes from the job's ``build_model`` (``bench.run.model``).

Batch: ``train.batch_size`` is the GLOBAL batch, split evenly across the DDP processes (the official 8 =
2 per GPU x 4 GPUs); both numbers are logged and recorded.

Hooks: objects with ``on_step_end(state: StepState)``, ``on_evaluate(iteration, metrics)`` and
``on_log(entry)`` (subclass ``TrainHook``). ``state.request_stop(reason)`` makes the loop save a checkpoint and
raise ``TrainingInterrupted``. The ``log.jsonl`` writer is such a hook and passes each line to the others'
``on_log``; the optional loggers (``logger_hooks``: ``train.tensorboard``, ``train.mlflow``, ``train.wandb``)
are hooks too.

Preemption: SIGUSR2 / SIGTERM -> checkpoint at the iteration boundary -> the previous handler (submitit's
requeue), or the signal is re-raised after clean-up (bench.engine.signals).

Determinism: every augmented sample is drawn from its own seed and the sampler is seeded per epoch
(bench.engine.batches), so on CPU an interrupted and resumed run ends with bit-identical weights
(tests/test_trainer_resume.py).
"""

from __future__ import annotations

import math
import os
import signal
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.data.build import build_dataset
from bench.distributed import (
    DistEnv,
    LoaderSettings,
    all_reduce_sum,
    barrier,
    broadcast_object,
    init_distributed,
    set_threads,
    shutdown_distributed,
)
from bench.engine.batches import InfiniteBatches, per_rank_batch
from bench.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from bench.engine.divergence import LossWatch
from bench.engine.finite import (
    NonFiniteLossError,
    NonFiniteStateError,
    first_non_finite,
    non_finite_logits,
    raise_if_any_rank,
)
from bench.engine.hooks import StepState, TrainHook
from bench.engine.job import TrainJob, TrainResult
from bench.engine.log_writer import TrainLog
from bench.engine.loggers import logger_hooks
from bench.engine.optimizer import build_optimizer, scheduled_lr, set_lr
from bench.engine.recipe import MixedPrecision, total_loss
from bench.engine.signals import PreemptionSignals, TrainingInterrupted
from bench.engine.state import Training
from bench.engine.temporal_loss import build_temporal_loss, train_memory_length
from bench.engine.train_log import truncate_log
from bench.evaluation.evaluate import evaluate_model
from bench.evaluation.latency import measure_model_latency
from bench.evaluation.videos import evaluate_videos
from bench.seeding import rng_state, seed_everything, set_rng_state

__all__ = [
    "train",
    "setup",
    "TrainHook",
    "StepState",
    "Training",
    "TrainingInterrupted",
    "NonFiniteLossError",
    "NonFiniteStateError",
]


# --------------------------------------------------------------------------------------------------
# stages


def setup(job: TrainJob, env: DistEnv) -> Training:
    """Seed, build the model (the job's builder) and the training data, SyncBN, optimiser, AMP, DDP. The only
    stage that sees the whole config."""
    cfg, tcfg = job.cfg, job.cfg.train
    batch_per_rank = per_rank_batch(tcfg.batch_size, env.world_size)
    seed_everything(tcfg.seed, tcfg.deterministic)
    # the dataset first: a missing dataset is reported before any pretrained weights are looked for
    memory = job.memory_length
    train_set = build_dataset(cfg.data, cfg.data.train_split, memory, train=True)
    model = job.build_model()
    tc = build_temporal_loss(tcfg, cfg.data, model)
    needed = train_memory_length(model, tc)
    if needed != memory:  # a model (or the TC loss) that reads another number of past frames than its argument
        train_set = build_dataset(cfg.data, cfg.data.train_split, needed, train=True)
    model.to(env.device)
    if tc is not None and tc.estimator is not None:
        tc.estimator.to(env.device)
    if env.distributed and tcfg.sync_bn:
        if env.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            warnings.warn("train.sync_bn ignored on CPU (SyncBatchNorm needs CUDA)", stacklevel=2)
    trainable = [p for p in model.parameters() if p.requires_grad]
    network: nn.Module = model
    if env.distributed:
        device_ids = [env.device] if env.device.type == "cuda" else None
        network = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if env.is_main:
        job.paths.folder.mkdir(parents=True, exist_ok=True)
    return Training(
        tcfg,
        cfg.data,
        cfg.eval,
        cfg.launch,
        job,
        env,
        model,
        network,
        build_optimizer(model, tcfg),
        trainable,
        MixedPrecision.create(tcfg.amp, env.device),
        InfiniteBatches(train_set, batch_per_rank, tcfg.seed, env, LoaderSettings.of(cfg.data)),
        batch_per_rank,
        tc=tc,
        losses=LossWatch.for_iters(tcfg.iters),
    )


def resume(run: Training) -> None:
    """Continue from the run's checkpoint, if any; drop log lines written after it.

    The caller (the run executor) has checked that the run directory belongs to the config; the trainer does not.
    """
    path = run.checkpoint_path
    if path.is_file():
        state = load_checkpoint(path, map_location="cpu")
        _check_training_state(state, path)
        try:
            run.model.load_state_dict(state["model"])
            run.optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                run.amp.scaler.load_state_dict(state["scaler"])
            run.batches.load_state_dict(state["data"])
            set_rng_state(state["rng"])
            run.iteration, run.elapsed_before = int(state["iteration"]), float(state.get("elapsed_s", 0.0))
            run.losses.load_state_dict(state.get("loss_watch") or {})
        except (KeyError, ValueError, TypeError, RuntimeError) as err:
            detail = " ".join(str(err).split())[:300]  # load_state_dict lists every key on many lines
            raise CheckpointError(
                f"{path} cannot be resumed ({type(err).__name__}: {detail}); {_move_aside_hint(path)}"
            ) from err
        run.saved_at = run.iteration
    if run.env.is_main:  # a finished checkpoint is evaluated again: its old validation line goes
        truncate_log(run.job.paths.log, run.iteration, final=run.iteration >= run.train.iters)


def _move_aside_hint(path: Path) -> str:
    return f"move it aside (mv {path} {path}.foreign) to train from scratch, or pass another run_dir"


def _check_training_state(state: Any, path: Path) -> None:
    """A checkpoint to resume holds what ``save`` writes; anything else is a one-line ``CheckpointError``."""
    needed = ("iteration", "model", "optimizer", "data", "rng")
    missing = [k for k in needed if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(
            f"{path} is not a training checkpoint of bench train (no {', '.join(missing)}); {_move_aside_hint(path)}"
        )


def step(run: Training) -> StepState:
    """One optimiser step on the next batch; a NaN/inf loss (mean over ranks) raises ``NonFiniteLossError``."""
    tcfg, device = run.train, run.env.device
    batch = next(run.batches)
    lr = scheduled_lr(run.iteration, tcfg)
    set_lr(run.optimizer, lr)
    frames = batch["frames"].to(device, non_blocking=True)
    label = batch["label"].to(device, non_blocking=True)
    flow = batch["flow"].to(device, non_blocking=True) if "flow" in batch else None
    extra = None
    with run.amp.autocast():
        if run.tc is None:
            out = run.network(frames, flow)
        else:  # ETC's term on the pair (t-1, t); the usual loss on frame t
            out, extra = run.tc.forward_pair(run.network, frames, flow)
    total, loss, aux = total_loss(out, label, tcfg)
    if extra is not None:
        total = total + run.tc.weight * extra
    losses = all_reduce_sum(torch.stack([loss.detach(), aux.detach(), total.detach()]), run.env)
    mean_loss, mean_aux, mean_total = (float(v) / run.env.world_size for v in losses)
    if not (math.isfinite(mean_loss) and math.isfinite(mean_aux) and math.isfinite(mean_total)):
        raise NonFiniteLossError(run.iteration + 1, mean_loss, mean_aux, run.checkpoint_path, run.saved_at)
    run.amp.backward_and_step(total, run.optimizer, run.trainable, tcfg.grad_clip)
    run.iteration += 1
    return StepState(run.iteration, tcfg.iters, lr, mean_loss, mean_aux, run.model)


def evaluate(run: Training) -> dict[str, Any]:
    """Metrics of the current model on the validation split (its clips, or its whole videos with
    ``eval.whole_videos``); the global RNG is left as it was."""
    if run.eval.whole_videos:
        videos = run.val_videos()
        saved = rng_state()
        metrics = evaluate_videos(run.model, videos, run.eval, run.data, run.env)
        set_rng_state(saved)
        return metrics
    dataset, with_tc, reason = run.val_set()
    saved = rng_state()
    metrics = evaluate_model(
        run.model,
        dataset,
        run.eval,
        run.env,
        with_tc=with_tc,
        tc_skipped=reason,
        num_workers=LoaderSettings.of(run.data),
    )
    set_rng_state(saved)
    return metrics


def save(run: Training) -> None:
    """Write the checkpoint (rank 0) after checking that every weight and buffer is finite."""
    raise_if_any_rank(first_non_finite(run.model), run)
    if run.env.is_main:
        save_checkpoint(
            run.checkpoint_path,
            {
                "iteration": run.iteration,
                "model": run.model.state_dict(),
                "optimizer": run.optimizer.state_dict(),
                "scaler": run.amp.scaler.state_dict(),
                "rng": rng_state(),
                "data": run.batches.state_dict(),
                "elapsed_s": run.elapsed(),
                "loss_watch": run.losses.state_dict(),
                **run.job.stamp,  # config, config_hash, classes
            },
        )
    barrier(run.env)
    run.saved_at = run.iteration


def checkpoint_or_stop(run: Training, state: StepState, signals: PreemptionSignals) -> None:
    """Save on schedule, at the end, on a preemption signal or a hook's stop request (agreed across ranks);
    then hand a signal over or raise ``TrainingInterrupted`` for a stop request."""
    tcfg = run.train
    flags = torch.tensor([float(signals.pending is not None), float(state.stop_reason is not None)])
    signalled, stopping = (bool(v > 0) for v in all_reduce_sum(flags.to(run.env.device), run.env))
    stopping = stopping and run.iteration < tcfg.iters
    if signalled or stopping or run.iteration % tcfg.checkpoint_every == 0 or run.iteration == tcfg.iters:
        save(run)
    if signalled:
        signals.forward(signals.pending or signal.SIGTERM, run.iteration, run.checkpoint_path)
    if stopping:
        raise TrainingInterrupted(
            f"stopped after iteration {run.iteration} ({state.stop_reason or 'another rank'});"
            f" {run.checkpoint_path} saved",
            run.iteration,
        )


def finish(run: Training, hooks: Sequence[TrainHook]) -> TrainResult:
    """Final checkpoint, finite weights and logits, evaluation, latency (``launch.latency``), the result."""
    if run.saved_at != run.iteration:  # e.g. train.iters=0: the record still points at a checkpoint
        save(run)
    raise_if_any_rank(first_non_finite(run.model) or non_finite_logits(run), run)
    run.losses.check(run.iteration, scheduled_lr(max(run.iteration - 1, 0), run.train))
    reason = run.val_set()[2]
    if reason:
        warnings.warn(f"temporal consistency skipped: {reason}", stacklevel=2)
    metrics = evaluate(run)
    for hook in hooks:
        hook.on_evaluate(run.iteration, metrics)
    return TrainResult(
        metrics=metrics,
        device=str(run.env.device),
        iters=run.iteration,
        wall_time_s=run.elapsed(),
        checkpoint=run.checkpoint_path,
        batch_size=run.train.batch_size,
        batch_size_per_rank=run.batch_per_rank,
        world_size=run.env.world_size,
        latency=_measure_latency(run) if run.launch.latency and run.job.latency else None,
    )


# --------------------------------------------------------------------------------------------------
# the run


def train(job: TrainJob, hooks: Sequence[TrainHook] = ()) -> TrainResult:
    """Train the job (resuming its checkpoint), evaluate, return the result on every rank.

    Writes only the job's checkpoint and log. Raises ``NonFiniteLossError`` / ``NonFiniteStateError`` for a
    diverged run, ``TrainingInterrupted`` when stopped (signal or hook).
    """
    env = init_distributed(job.cfg.device)
    set_threads(job.cfg.threads)
    try:
        return _train(job, env, hooks)
    except TrainingInterrupted as err:
        if err.signum is None:
            raise
        shutdown_distributed(env)
        signal.signal(err.signum, signal.SIG_DFL)  # end as the signal's default action would have
        os.kill(os.getpid(), err.signum)
        raise
    finally:
        shutdown_distributed(env)


def _train(job: TrainJob, env: DistEnv, hooks: Sequence[TrainHook]) -> TrainResult:
    loggers = logger_hooks(job.cfg, job.paths, env.is_main)  # checked before setup
    run = setup(job, env)
    resume(run)
    hooks = (*loggers, *hooks)
    hooks = (TrainLog(run, listeners=hooks), *hooks)
    tcfg = run.train
    try:
        with PreemptionSignals() as signals:
            while run.iteration < tcfg.iters:
                state = step(run)
                run.losses.add(state.loss)
                for hook in hooks:
                    hook.on_step_end(state)
                if tcfg.eval_every and run.iteration % tcfg.eval_every == 0 and run.iteration < tcfg.iters:
                    metrics = evaluate(run)
                    for hook in hooks:
                        hook.on_evaluate(run.iteration, metrics)
                checkpoint_or_stop(run, state, signals)
        return finish(run, hooks)
    finally:
        for hook in hooks:
            hook.close()


def _measure_latency(run: Training) -> dict[str, Any]:
    """``bench.evaluation.latency.measure_model_latency`` of the trained in-memory model on rank 0, sent to every
    rank."""
    result = None
    if run.env.is_main:
        result = measure_model_latency(
            run.model,
            run.job.model_name,
            run.data,
            run.launch,
            frames=run.launch.latency_frames,
            threads=torch.get_num_threads(),
            device=run.env.device,
            weights=f"the trained model in memory (iteration {run.iteration})",
        )
    return broadcast_object(result, run.env)

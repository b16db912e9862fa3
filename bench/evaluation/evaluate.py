"""Evaluation over a split: inference on every image (``bench.evaluation.inference``), mIoU / pixel accuracy with
per-image counts, and temporal consistency (``bench.evaluation.temporal``).

    dataset, plan, reason = build_eval_dataset(cfg.data, cfg.eval, model)   # the validation split (TcPlan)
    metrics = evaluate_model(model, dataset, cfg.eval, env, with_tc=plan)   # pure inference + metrics

Evaluation never builds a model: ``evaluate_model`` takes one (the trainer's in-memory model, or
``bench.run.model.load_run_model`` for a stored run: ``bench eval``, ``bench.run.eval_run``). Every DDP rank
takes a share of the images; counts are all-reduced and per-image counts gathered in dataset order.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from bench.config import DataConfig, EvalConfig
from bench.constants import IGNORE_INDEX
from bench.data.build import build_dataset, collate_clips
from bench.distributed import DistEnv, LoaderSettings, all_gather_list, all_reduce_sum, loader_options
from bench.evaluation.inference import current_clip, predict_logits
from bench.evaluation.temporal import TcPlan, TemporalCounts, resolve_plan, tc_flow_fn, tc_plan
from bench.metrics import confusion_matrix, segmentation_summary
from bench.progress import Progress


def build_eval_dataset(data: DataConfig, ev: EvalConfig, model: nn.Module) -> tuple[Dataset, TcPlan, str | None]:
    """The validation dataset (``data.val_split``) with ``plan.pairs`` extra past frames for TC.

    Returns (dataset, TC plan (falsy when no TC), reason a requested TC measure is skipped or None).
    """
    memory = int(getattr(getattr(model, "module", model), "memory_length", 0))
    plan = tc_plan(data, ev, model)
    dataset = build_dataset(data, data.val_split, memory + plan.pairs, train=False)
    if plan.etc and plan.pairs > 1 and hasattr(dataset, "step_flow"):
        dataset.step_flow = True  # ground-truth flow between consecutive earlier frames (synthetic)
    return dataset, plan, plan.skipped


# --------------------------------------------------------------------------------------------------
# counts per image and over the split


def per_image_confusion(pred: Tensor, label: Tensor, num_classes: int, ignore_index: int) -> Tensor:
    """(B, C, C) int64 confusion matrices, one per image of ``pred`` / ``label`` (B, H, W); ignored pixels dropped."""
    return torch.stack([confusion_matrix(p, t, num_classes, ignore_index) for p, t in zip(pred, label)])


class SplitCounts:
    """Per-image intersection / union / label-pixel counts of one rank's images, and their sum (C, C)."""

    def __init__(self, num_classes: int, ignore_index: int) -> None:
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.total = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.rows: list[tuple[int, str, list[int], list[int], list[int]]] = []  # index, name, I, U, label pixels

    def add(self, indices: list[int], names: list[str], pred: Tensor, label: Tensor) -> None:
        """Count a batch: dataset ``indices`` and sample ``names`` of its B images, ``pred``/``label`` (B, H, W)."""
        per = per_image_confusion(pred, label, self.num_classes, self.ignore_index).cpu()
        self.total += per.sum(0)
        tp = per.diagonal(dim1=1, dim2=2)
        labelled, predicted = per.sum(2), per.sum(1)
        union = labelled + predicted - tp
        for i, index in enumerate(indices):
            self.rows.append(
                (
                    index,
                    names[i],
                    tp[i].tolist(),
                    union[i].tolist(),
                    labelled[i].tolist(),
                )
            )

    def gather(self, env: DistEnv) -> None:
        """Sum the totals over DDP ranks and collect every rank's rows, in dataset order, on every rank."""
        self.total = all_reduce_sum(self.total.to(env.device), env).cpu()
        self.rows = sorted(all_gather_list(self.rows, env), key=lambda row: row[0])

    def per_image(self) -> dict[str, list]:
        """``{"names", "intersection", "union", "label_pixels"}``: lists over images in dataset order."""
        return {
            "names": [r[1] for r in self.rows],
            "intersection": [r[2] for r in self.rows],
            "union": [r[3] for r in self.rows],
            "label_pixels": [r[4] for r in self.rows],
        }


# --------------------------------------------------------------------------------------------------
# evaluation loop


def _progress(iterable: Any, total: int, desc: str, enabled: bool) -> Any:
    """``iterable`` with a bar on a terminal, else status lines (``bench.progress``)."""
    with Progress(total, desc, enabled=enabled, unit="batch", leave=False) as bar:
        for item in iterable:
            yield item
            bar.update(1)


def _collate_with_step_flow(samples: list[dict]) -> dict:
    """``collate_clips`` plus ``step_flow`` (B, T, 2, H, W) when every sample has it."""
    batch = collate_clips(samples)
    if all("step_flow" in s for s in samples):
        batch["step_flow"] = torch.stack([s["step_flow"] for s in samples])
    return batch


def _predict_batch(
    model: nn.Module,
    batch: dict,
    device: torch.device,
    window: dict[str, Any],
    memory: int,
    temporal: TemporalCounts | None,
) -> Tensor:
    """Predicted classes (B, H, W) of the batch's current frames; with ``temporal`` the earlier ones, counted."""
    frames = batch["frames"].to(device, non_blocking=True)
    current, flow = current_clip(batch, model)
    flow = None if flow is None else flow.to(device, non_blocking=True)
    pred = predict_logits(model, current.to(device, non_blocking=True), flow, **window).argmax(1)
    if temporal is not None:
        temporal.count(model, batch, frames, pred, window, memory)
    return pred


def _shard_loader(
    dataset: Dataset, shard: list[int], batch_size: int, num_workers: LoaderSettings | int, env: DistEnv
) -> DataLoader:
    """In-order batches of this rank's ``shard`` of ``dataset``; one pass, so no persistent workers."""
    return DataLoader(
        Subset(dataset, shard),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=_collate_with_step_flow,
        **loader_options(num_workers, env, persistent=False),
    )


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    dataset: Dataset,
    eval_cfg: EvalConfig,
    env: DistEnv | None = None,
    *,
    with_tc: bool | TcPlan = False,
    tc_skipped: str | None = None,
    num_workers: LoaderSettings | int = 0,
    on_batch: Callable[[list[str], Tensor], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (unwrapped, any device) on ``dataset``; every DDP rank takes a share and counts are
    all-reduced (per-image counts gathered), so every rank returns the same metrics.

    Returns ``{"miou", "pixel_acc", "per_class_iou", "pixel_agreement", "etc_tc", "etc_pairs", "tc_flow",
    "tc_skipped", "num_images", "mode", "per_image"}``; ``per_image`` = ``{"names": [N], "intersection" / "union" /
    "label_pixels": [N][C] ints}`` in dataset order, ignored pixels excluded (their sums over images give the
    split's confusion-matrix counts). ``with_tc``: a ``TcPlan`` (``build_eval_dataset``), or True for the measures
    of ``eval.tc_metric`` on all the dataset's extra past frames (it must hold ``memory_length + N`` of them,
    consecutive). ``num_workers`` -1 = auto (``bench.distributed.resolve_num_workers``), or the ``data.*`` loader
    settings (``bench.distributed.LoaderSettings``). ``on_batch(names, pred (B, H, W))`` sees every batch's
    predicted classes (e.g. ``bench.evaluation.predictions.PredictionWriter.write``).
    """
    env = env or DistEnv(device=next(model.parameters()).device)
    model = getattr(model, "module", model)
    memory = int(getattr(model, "memory_length", 0))
    was_training = model.training
    model.eval()
    indices = list(range(len(dataset)))[: eval_cfg.max_images or None]
    shard = indices[env.rank :: env.world_size]
    loader = _shard_loader(dataset, shard, eval_cfg.batch_size, num_workers, env)
    counts = SplitCounts(dataset.num_classes, getattr(dataset, "ignore_index", IGNORE_INDEX))
    plan = resolve_plan(with_tc, eval_cfg, dataset, memory)
    estimate = tc_flow_fn(eval_cfg.tc_flow, eval_cfg.tc_raft_weights, env.device) if plan else None
    temporal = TemporalCounts(plan, dataset.num_classes, estimate) if plan else None
    window = dict(mode=eval_cfg.mode, crop_size=tuple(eval_cfg.crop_size), stride=tuple(eval_cfg.stride))
    done = 0
    try:
        for batch in _progress(loader, len(loader), "eval", env.is_main):
            pred = _predict_batch(model, batch, env.device, window, memory, temporal)
            size = pred.shape[0]
            counts.add(shard[done : done + size], list(batch["name"]), pred, batch["label"].to(pred.device))
            if on_batch is not None:
                on_batch(list(batch["name"]), pred)
            done += size
    finally:
        model.train(was_training)
    metrics = _gathered_metrics(counts, temporal, plan, dataset.class_names, eval_cfg, env, tc_skipped)
    if hasattr(dataset, "skipped_files"):  # files data.missing_files=skip left out (VSPW): counted in the record
        metrics["skipped_files"] = list(dataset.skipped_files)
    return metrics


def _gathered_metrics(
    counts: SplitCounts,
    temporal: TemporalCounts | None,
    plan: TcPlan,
    class_names: list[str],
    eval_cfg: EvalConfig,
    env: DistEnv,
    tc_skipped: str | None,
) -> dict[str, Any]:
    """Every rank's counts reduced into the metrics ``evaluate_model`` returns."""
    counts.gather(env)
    metrics = segmentation_summary(counts.total, class_names)
    if temporal is not None:
        temporal.all_reduce(env)
    metrics.update((temporal or TemporalCounts(plan, 1, None)).metrics(plan.pairs, eval_cfg))
    metrics.update(
        {
            "tc_skipped": plan.skipped or (None if plan else tc_skipped),
            "num_images": len(counts.rows),
            "mode": eval_cfg.mode,
            "per_image": counts.per_image(),
        }
    )
    return metrics

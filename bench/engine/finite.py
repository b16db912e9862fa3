"""Divergence guards: a NaN/inf loss, weights, buffers or logits stop the run with a one-line error.

raise_if_any_rank(first_non_finite(model) or non_finite_logits(run), run)   # NonFiniteStateError on every rank
raise NonFiniteLossError(iteration, loss, aux, checkpoint, saved_at)
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from bench.data.build import collate_clips
from bench.distributed import all_reduce_sum
from bench.engine.state import Training
from bench.errors import BenchError
from bench.evaluation.inference import current_clip, predict_logits


class NonFiniteLossError(BenchError, FloatingPointError):
    """The training loss became NaN or inf; the run stops (any checkpoint holds an earlier, finite state)."""

    def __init__(self, iteration: int, loss: float, aux_loss: float, checkpoint: Path, saved_at: int | None) -> None:
        self.iteration = iteration
        kept = (
            f"{checkpoint} keeps the last good state (iteration {saved_at})"
            if saved_at is not None
            else "no checkpoint had been saved yet"
        )
        super().__init__(
            f"non-finite loss at iteration {iteration} (loss={loss}, aux_loss={aux_loss}); training "
            f"stopped and {kept}. Lower train.lr, set train.grad_clip, or use train.amp=none/bf16 "
            f"instead of fp16"
        )


class NonFiniteStateError(BenchError, FloatingPointError):
    """The model's weights, buffers (e.g. BatchNorm running_var) or logits hold NaN/inf: the run is not recorded."""

    def __init__(self, what: str, iteration: int) -> None:
        self.what, self.iteration = what, iteration
        super().__init__(
            f"{what} is not finite at iteration {iteration}: training diverged and no record is made; "
            f"lower train.lr, set train.grad_clip, or use train.amp=none/bf16 instead of fp16"
        )


def first_non_finite(model: nn.Module) -> str | None:
    """``"parameter NAME"`` / ``"buffer NAME"`` of the first floating tensor holding NaN or inf, else None."""
    for kind, tensors in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for name, tensor in tensors:
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return f"{kind} {name}"
    return None


@torch.no_grad()
def non_finite_logits(run: Training) -> str | None:
    """``"logits of <sample>"`` when the model's eval-mode logits on the first validation clip hold NaN/inf."""
    dataset = run.val_set()[0]
    if len(dataset) == 0:  # type: ignore[arg-type]
        return None
    batch = collate_clips([dataset[0]])
    frames, flow = current_clip(batch, run.model)  # with TC the clip has extra past frames
    flow = None if flow is None else flow.to(run.env.device)
    ev, was_training = run.eval, run.model.training
    run.model.eval()
    try:
        logits = predict_logits(
            run.model, frames.to(run.env.device), flow, ev.mode, tuple(ev.crop_size), tuple(ev.stride)
        )
    finally:
        run.model.train(was_training)
    return None if bool(torch.isfinite(logits).all()) else f"logits of {batch['name'][0]}"


def raise_if_any_rank(problem: str | None, run: Training) -> None:
    """Raise ``NonFiniteStateError`` on every rank when any rank found ``problem`` (ranks stay in step)."""
    flag = all_reduce_sum(torch.tensor([float(problem is not None)], device=run.env.device), run.env)
    if float(flag) > 0:
        raise NonFiniteStateError(problem or "the model state on another rank", run.iteration)

"""The training recipe shared by every model (docs/tmanet.md §3): schedule, loss, optimiser, mixed precision.

    lr = poly_lr(it, iters, base_lr, min_lr, power)            # mmcv poly with min_lr, per iteration
    loss = segmentation_loss(logits, label, "all_pixels")      # CE, ignore 255, mmseg averaging
    amp = MixedPrecision.create(cfg.train.amp, device)
    with amp.autocast():
        out = network(frames, flow)
    amp.backward_and_step(total_loss, optimizer, trainable, grad_clip)

The optimiser, its parameter groups and the warm-up are ``bench.engine.optimizer``'s. There is one mixed-
precision path: ``autocast()`` is a ``torch.autocast`` that is disabled without AMP, and the scaler is a
``torch.amp.GradScaler`` that is disabled (scale = identity, ``step`` = ``optimizer.step()``) unless
``train.amp=fp16``, so a float32 step and an fp16 step run the same lines.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.config import TrainConfig
from bench.constants import IGNORE_INDEX

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def poly_lr(iteration: int, max_iters: int, base_lr: float, min_lr: float, power: float) -> float:
    """mmcv ``PolyLrUpdaterHook`` with ``min_lr``: ``(base - min) * (1 - it/max) ** power + min``, ``it`` 0-based."""
    progress = min(iteration, max_iters) / max(max_iters, 1)
    return (base_lr - min_lr) * (1.0 - progress) ** power + min_lr


def segmentation_loss(
    logits: Tensor, label: Tensor, average: str = "all_pixels", ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Cross-entropy of logits (B, C, H, W) against label (B, H, W).

    ``all_pixels``: mean over every pixel, ignored ones counting 0 (mmseg, docs/tmanet.md §1.8);
    ``valid_pixels``: mean over non-ignored pixels (0 when there are none).
    """
    if logits.shape[-2:] != label.shape[-2:]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and label {tuple(label.shape)} differ in size; models "
            f"must return logits at the input size"
        )
    per_pixel = F.cross_entropy(logits.float(), label, ignore_index=ignore_index, reduction="none")
    if average == "all_pixels":
        return per_pixel.mean()
    if average == "valid_pixels":
        return per_pixel.sum() / (label != ignore_index).sum().clamp(min=1)
    raise ValueError(f"unknown loss average {average!r}; choose 'all_pixels' or 'valid_pixels'")


def total_loss(out: dict[str, Tensor], label: Tensor, train_cfg: TrainConfig) -> tuple[Tensor, Tensor, Tensor]:
    """(loss + aux_weight * aux_loss, loss, aux_loss) of a model output ``{"out", "aux"?}``; aux 0 without a head."""
    loss = segmentation_loss(out["out"], label, train_cfg.loss_average)
    aux = segmentation_loss(out["aux"], label, train_cfg.loss_average) if "aux" in out else loss.new_zeros(())
    return loss + train_cfg.aux_weight * aux, loss, aux


@dataclass
class MixedPrecision:
    """An autocast context (disabled without AMP) and a GradScaler (disabled unless fp16)."""

    device_type: str
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler

    @classmethod
    def create(cls, amp: str, device: torch.device) -> MixedPrecision:
        """``train.amp`` none | bf16 | fp16; AMP is CUDA-only here and ignored with a warning elsewhere."""
        if amp != "none" and device.type != "cuda":
            warnings.warn(
                f"train.amp={amp} ignored on {device}: mixed precision is CUDA-only, training in float32", stacklevel=2
            )
            amp = "none"
        return cls(device.type, AMP_DTYPES.get(amp), torch.amp.GradScaler(device.type, enabled=amp == "fp16"))

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)

    def backward_and_step(
        self, loss: Tensor, optimizer: torch.optim.Optimizer, params: list[nn.Parameter], grad_clip: float
    ) -> None:
        """Backward of ``loss`` (scaled for fp16), optional gradient-norm clipping, optimiser step."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if grad_clip > 0:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()

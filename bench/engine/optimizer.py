"""The optimiser and its learning-rate schedule: SGD (the TMANet recipe) or AdamW with parameter groups and a
linear warm-up (the SegFormer / CFFM recipe).

    optimizer = build_optimizer(model, cfg.train)        # parameter groups, each with its "lr_mult"
    lr = scheduled_lr(it, cfg.train)                     # warm-up, then mmcv's poly with min_lr
    set_lr(optimizer, lr)                                # every group: lr * its lr_mult

Groups follow mmcv's ``paramwise_cfg`` as the official SegFormer and CFFM configs use it
(``custom_keys={'pos_block': decay_mult 0, 'norm': decay_mult 0, 'head': lr_mult 10}``; mmcv applies the first
matching key of the keys sorted by length, so ``head`` wins over ``norm``): every parameter outside the model's
``backbone`` module gets ``train.head_lr_mult``; the backbone's normalisation-layer parameters get
``train.norm_decay_mult`` times the weight decay (the head's keep it, as in the official runs). With both
multipliers at 1 there is one group, exactly as before (``torch.optim.SGD(params, ...)``), so existing runs,
checkpoints and resumes are unchanged.

Warm-up (mmcv ``warmup='linear'``): for ``it < warmup_iters`` the scheduled rate is scaled by
``1 - (1 - it / warmup_iters) * (1 - warmup_ratio)``.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.config import TrainConfig
from bench.engine.recipe import poly_lr

NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)


def scheduled_lr(iteration: int, train_cfg: TrainConfig) -> float:
    """The base learning rate at ``iteration``: poly, scaled down linearly during the warm-up."""
    lr = poly_lr(iteration, train_cfg.iters, train_cfg.lr, train_cfg.min_lr, train_cfg.poly_power)
    if iteration < train_cfg.warmup_iters:
        lr *= 1.0 - (1.0 - iteration / train_cfg.warmup_iters) * (1.0 - train_cfg.warmup_ratio)
    return lr


def parameter_groups(model: nn.Module, train_cfg: TrainConfig) -> list[dict]:
    """The trainable parameters of ``model`` by (lr multiplier, weight-decay multiplier), in model order; each
    group carries ``lr_mult`` and its own ``weight_decay``."""
    norm_params = {
        id(p) for name, m in model.named_modules() if isinstance(m, NORM_LAYERS) for p in m.parameters(recurse=False)
    }
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        in_backbone = name.startswith("backbone.")
        lr_mult = 1.0 if in_backbone else float(train_cfg.head_lr_mult)
        decay_mult = float(train_cfg.norm_decay_mult) if in_backbone and id(param) in norm_params else 1.0
        groups.setdefault((lr_mult, decay_mult), []).append(param)
    return [
        {"params": params, "lr_mult": lr_mult, "weight_decay": train_cfg.weight_decay * decay_mult}
        for (lr_mult, decay_mult), params in groups.items()
    ]


def build_optimizer(model: nn.Module, train_cfg: TrainConfig) -> torch.optim.Optimizer:
    """``train.optimizer``: SGD with momentum, or AdamW with ``adamw_beta1/2``; weight decay per group."""
    groups = parameter_groups(model, train_cfg)
    if train_cfg.optimizer == "adamw":
        betas = (train_cfg.adamw_beta1, train_cfg.adamw_beta2)
        return torch.optim.AdamW(groups, lr=train_cfg.lr, betas=betas, weight_decay=train_cfg.weight_decay)
    if len(groups) == 1:  # the plain recipe: one group, as the suite always built it
        groups = groups[0]["params"]
    return torch.optim.SGD(groups, lr=train_cfg.lr, momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's rate to ``lr`` times its ``lr_mult`` (1 for a group without one)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)

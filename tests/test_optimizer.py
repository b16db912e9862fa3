"""The optimiser: SGD unchanged by default, AdamW with the SegFormer / CFFM parameter groups (mmcv's first-matching
custom key: head lr x10, backbone norms without decay), and mmcv's linear warm-up before the poly schedule."""

import pytest
import torch

from bench.config import TrainConfig
from bench.engine.optimizer import build_optimizer, scheduled_lr, set_lr
from bench.engine.recipe import poly_lr
from bench.models.cffm import cffm
from bench.models.tmanet import tmanet

SEGFORMER_RECIPE = dict(
    optimizer="adamw",
    lr=6e-5,
    weight_decay=0.01,
    head_lr_mult=10.0,
    norm_decay_mult=0.0,
    poly_power=1.0,
    min_lr=0.0,
    warmup_iters=1500,
    warmup_ratio=1e-6,
    iters=160000,
)


def test_the_default_recipe_is_one_sgd_group_as_before():
    model = tmanet(num_classes=3, backbone="resnet18", key_channels=8, value_channels=16, channels=16, aux_channels=16)
    optimizer = build_optimizer(model, TrainConfig())
    assert type(optimizer) is torch.optim.SGD and len(optimizer.param_groups) == 1
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.01, 0.9, 5e-4) and "lr_mult" not in group
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]
    set_lr(optimizer, 0.005)
    assert group["lr"] == 0.005


def mmcv_first_matching_key(name: str) -> tuple[float, float]:
    """(lr_mult, decay_mult) of the official paramwise_cfg: keys by length then name, the first one in the name."""
    custom = {"pos_block": (1.0, 0.0), "norm": (1.0, 0.0), "head": (10.0, 1.0)}
    for key in sorted(sorted(custom), key=len, reverse=True):
        if key in name:
            return custom[key]
    return 1.0, 1.0


def test_adamw_groups_reproduce_the_official_paramwise_rule_on_cffm():
    model = cffm(num_classes=4, memory_length=3, backbone="mit_tiny", decoder_channels=16, cffm_depth=1)
    cfg = TrainConfig(**SEGFORMER_RECIPE)
    optimizer = build_optimizer(model, cfg)
    assert type(optimizer) is torch.optim.AdamW and optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    ours = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            ours[id(p)] = (group["lr_mult"], group["weight_decay"] / 0.01)
    for name, p in model.named_parameters():  # our names keep the official substrings: "head", "norm"
        assert ours[id(p)] == mmcv_first_matching_key(name), name
    assert len(ours) == sum(1 for _ in model.parameters())
    set_lr(optimizer, 6e-5)
    assert sorted({g["lr"] for g in optimizer.param_groups}) == pytest.approx([6e-5, 6e-4])


def test_linear_warmup_then_poly():
    cfg = TrainConfig(**SEGFORMER_RECIPE)
    assert scheduled_lr(0, cfg) == pytest.approx(6e-5 * 1e-6)
    assert scheduled_lr(750, cfg) == pytest.approx(poly_lr(750, 160000, 6e-5, 0.0, 1.0) * (1 - 0.5 * (1 - 1e-6)))
    assert scheduled_lr(1500, cfg) == pytest.approx(poly_lr(1500, 160000, 6e-5, 0.0, 1.0))
    assert scheduled_lr(160000, cfg) == 0.0
    plain = TrainConfig()
    assert [scheduled_lr(i, plain) for i in (0, 10)] == [poly_lr(i, 80000, 0.01, 1e-4, 0.9) for i in (0, 10)]

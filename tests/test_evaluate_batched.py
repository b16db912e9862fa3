"""Evaluation in batches gives the same metrics as one clip at a time (eval.batch_size is not part of a run id)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import tiny_config

from bench.data.build import build_dataset, collate_clips
from bench.distributed import DistEnv
from bench.engine.recipe import build_optimizer, total_loss
from bench.evaluation.evaluate import build_eval_dataset, evaluate_model
from bench.run.model import build_model


def briefly_trained(cfg):
    """The tiny model after a few SGD steps (past the random init, so predictions vary across pixels)."""
    torch.manual_seed(0)
    model = build_model(cfg).train()
    train_set = build_dataset(cfg.data, "train", int(getattr(model, "memory_length", 0)), train=True)
    optimizer = build_optimizer(model.parameters(), cfg.train)
    for step in range(3):
        batch = collate_clips([train_set[(2 * step + k) % len(train_set)] for k in range(2)])
        loss = total_loss(model(batch["frames"], batch.get("flow")), batch["label"], cfg.train)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize(
    "settings",
    [
        {"model.name": "tmanet", "model.memory_length": 2},
        {"model.name": "flow_warp", "model.memory_length": 1, "model.flow.source": "ground_truth"},
    ],
    ids=["tmanet", "flow_warp"],
)
def test_batched_evaluation_gives_the_same_metrics(settings):
    cfg = tiny_config(settings={**settings, "data.synthetic.val_clips": 3, "eval.tc_pairs": 2, "train.lr": 0.05})
    model = briefly_trained(cfg)
    dataset, plan, _ = build_eval_dataset(cfg.data, cfg.eval, model)
    # temporal consistency goes through the batches too (not for ground-truth-flow models: no flow of earlier frames)
    assert bool(plan) == (settings["model.name"] != "flow_warp")
    metrics = {
        size: evaluate_model(model, dataset, dataclasses.replace(cfg.eval, batch_size=size), DistEnv(), with_tc=plan)
        for size in (1, 2, 3)  # 2: an uneven last batch; 3: the whole split at once
    }
    assert 0.0 < metrics[1]["miou"] < 1.0 and len(set(metrics[1]["per_image"]["names"])) == 3
    assert metrics[2] == metrics[1] and metrics[3] == metrics[1]

"""Evaluation in batches gives the same metrics as one clip at a time (eval.batch_size is not part of a run id)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import tiny_config

from bench.data.build import build_dataset, collate_clips
from bench.distributed import DistEnv, set_threads
from bench.engine.optimizer import build_optimizer
from bench.engine.recipe import total_loss
from bench.evaluation.evaluate import build_eval_dataset, evaluate_model
from bench.run.model import build_model


def briefly_trained(cfg):
    """The tiny model after a few SGD steps (past the random init, so predictions vary across pixels)."""
    torch.manual_seed(0)
    model = build_model(cfg).train()
    train_set = build_dataset(cfg.data, "train", int(getattr(model, "memory_length", 0)), train=True)
    optimizer = build_optimizer(model, cfg.train)
    for step in range(3):
        batch = collate_clips([train_set[(2 * step + k) % len(train_set)] for k in range(2)])
        loss = total_loss(model(batch["frames"], batch.get("flow")), batch["label"], cfg.train)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture
def one_thread():
    """One torch thread, as runs use (``threads: 1``); restored afterwards."""
    before = torch.get_num_threads()
    set_threads(1)
    yield
    torch.set_num_threads(before)


def test_batched_evaluation_gives_the_same_metrics(one_thread):
    settings = {"model.name": "tmanet", "model.memory_length": 2, "data.synthetic.val_clips": 3, "eval.tc_pairs": 2}
    cfg = tiny_config(settings={**settings, "train.lr": 0.05})
    model = briefly_trained(cfg)
    dataset, plan, _ = build_eval_dataset(cfg.data, cfg.eval, model)
    assert plan  # temporal consistency: its earlier frames go through the batches too
    one, two = (
        evaluate_model(model, dataset, dataclasses.replace(cfg.eval, batch_size=size), DistEnv(), with_tc=plan)
        for size in (1, 2)  # 2 on 3 clips: a full batch and an uneven last one
    )
    assert 0.0 < one["miou"] < 1.0 and len(set(one["per_image"]["names"])) == 3
    assert two == one

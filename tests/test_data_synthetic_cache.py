"""Rendered synthetic clips are cached per dataset: the batches are identical to rendering every draw."""

from __future__ import annotations

import torch

from bench.config import load_config
from bench.data.build import build_dataset
from bench.distributed import DistEnv
from bench.engine.batches import InfiniteBatches


def demo_datasets(split: str = "train", train: bool = True, memory_length: int = 2):
    """The demo's synthetic data (smaller), once with the cache and once rendering every draw."""
    cfg = load_config(
        "configs/synthetic_tmanet.yaml",
        ["data.synthetic.train_clips=12", "data.synthetic.val_clips=4", "data.synthetic.size=[24,24]"],
    )
    cached = build_dataset(cfg.data, split, memory_length, train=train)
    plain = build_dataset(cfg.data, split, memory_length, train=train)
    plain.cache_bytes = 0
    return cached, plain


def assert_same_batch(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_training_batches_are_identical_with_the_cache():
    cached, plain = demo_datasets()
    env = DistEnv()
    with_cache, without = InfiniteBatches(cached, 4, seed=3, env=env), InfiniteBatches(plain, 4, seed=3, env=env)
    for _ in range(9):  # three epochs of 12 clips: later epochs draw the cached clips with new augmentation
        assert_same_batch(next(with_cache), next(without))
    assert len(cached._cache) == 12 and not plain._cache


def test_evaluation_samples_with_step_flow_are_identical_with_the_cache():
    cached, plain = demo_datasets("val", train=False)
    for _ in range(2):  # the second pass reads the cache
        for index in range(len(cached)):
            assert_same_batch(cached[index], plain[index])
    cached.step_flow = plain.step_flow = True  # evaluation's temporal consistency turns it on after the first use
    for index in range(len(cached)):
        sample = cached[index]
        assert "step_flow" in sample
        assert_same_batch(sample, plain[index])


def test_changing_a_sample_leaves_the_cache_alone():
    cached, _ = demo_datasets("val", train=False)
    first = cached[1]
    expected = {k: v.clone() for k, v in first.items() if isinstance(v, torch.Tensor)}
    for value in expected:
        first[value].zero_()
    again = cached[1]
    for key, value in expected.items():
        assert torch.equal(again[key], value), key


def test_the_cache_stays_within_its_budget():
    cached, _ = demo_datasets()
    clip_bytes = sum(t.numel() * t.element_size() for t in vars(cached.clip(0)).values())
    cached._cache.clear()
    cached._cached_bytes = 0
    cached.cache_bytes = 3 * clip_bytes
    for index in range(len(cached)):
        cached[index]
    assert len(cached._cache) == 3 and cached._cached_bytes <= cached.cache_bytes

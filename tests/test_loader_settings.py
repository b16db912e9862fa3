"""data.pin_memory / persistent_workers / prefetch_factor reach the DataLoader; threads reach torch; neither is
part of a run's identity."""

from __future__ import annotations

import torch
from helpers import tiny_config

from bench.distributed import DistEnv, LoaderSettings, loader_options, set_threads
from bench.engine.batches import InfiniteBatches
from bench.run.identity import RunIdentity

CPU, CUDA = DistEnv(device=torch.device("cpu")), DistEnv(device=torch.device("cuda", 0))


def test_loader_settings_from_the_config_override_the_automatic_choice():
    cfg = tiny_config("data.num_workers=3", "data.pin_memory=0", "data.persistent_workers=0", "data.prefetch_factor=6")
    settings = LoaderSettings.of(cfg.data)
    assert loader_options(settings, CUDA) == {
        "num_workers": 3,
        "pin_memory": False,
        "persistent_workers": False,
        "prefetch_factor": 6,
    }
    forced = LoaderSettings(num_workers=2, pin_memory=1, persistent_workers=1)
    assert loader_options(forced, CUDA)["pin_memory"] and loader_options(forced, CUDA)["persistent_workers"]
    assert not loader_options(forced, CPU)["pin_memory"]  # pinning needs CUDA
    assert loader_options(forced, CPU)["persistent_workers"]  # workers kept alive on the CPU too, when asked
    assert not loader_options(forced, CUDA, persistent=False)["persistent_workers"]  # a one-pass loader
    assert "prefetch_factor" not in loader_options(LoaderSettings(num_workers=0, prefetch_factor=6), CUDA)


def test_the_training_stream_uses_the_settings_and_gives_the_same_batches():
    from bench.data.build import build_dataset

    cfg = tiny_config()
    dataset = build_dataset(cfg.data, "train", 1, train=True)
    plain = InfiniteBatches(dataset, 4, seed=0, env=CPU)
    workers = InfiniteBatches(dataset, 4, seed=0, env=CPU, num_workers=LoaderSettings(2, 0, 1, 3))
    assert workers.loader_options == {
        "num_workers": 2,
        "pin_memory": False,
        "persistent_workers": True,
        "prefetch_factor": 3,
    }
    for _ in range(3):  # across an epoch boundary (8 clips, batches of 4)
        a, b = next(plain), next(workers)
        assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["label"], b["label"])


def test_loader_settings_threads_and_the_eval_batch_leave_the_run_id_alone():
    base = RunIdentity.of(tiny_config()).run_id
    for override in (
        "data.pin_memory=1",
        "data.persistent_workers=0",
        "data.prefetch_factor=8",
        "eval.batch_size=16",
        "threads=4",
    ):
        assert RunIdentity.of(tiny_config(override)).run_id == base, override


def test_set_threads_sets_torch_threads_and_zero_keeps_the_default():
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 == torch.get_num_threads()
        torch.set_num_threads(2)
        assert set_threads(0) == 2  # 0: leave torch's setting
    finally:
        torch.set_num_threads(before)

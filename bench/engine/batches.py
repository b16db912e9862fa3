"""A seeded, resumable, endless stream of training batches, split across DDP ranks.

    per_rank = per_rank_batch(cfg.train.batch_size, env.world_size)     # the global batch split evenly
    batches = InfiniteBatches(train_set, per_rank, seed=cfg.train.seed, env=env)
    batch = next(batches)                     # frames (B, T+1, 3, H, W), label (B, H, W), ... ; B = per_rank
    state = batches.state_dict()              # {"epoch", "position"}: stored in the checkpoint
    batches.load_state_dict(state)            # resumes with exactly the batches that would have come next

Every augmented sample is drawn from its own seed ``(seed, epoch, index)`` and the sampler is seeded per epoch,
so the stream does not depend on the worker count or on where a run was interrupted.

Loader settings (workers, pinned memory): ``bench.distributed.loader_options``, shared with evaluation.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from bench.config import ConfigError
from bench.data.build import collate_clips
from bench.distributed import DistEnv, LoaderSettings, loader_options
from bench.seeding import sample_seed


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """``train.batch_size`` is the global batch (mmseg's ``samples_per_gpu x GPUs``): each rank takes an equal share."""
    if world_size < 1 or global_batch % world_size:
        raise ConfigError(
            f"train.batch_size={global_batch} is the global batch and must divide evenly across the "
            f"{world_size} processes; use a multiple of {world_size}"
        )
    return global_batch // world_size


class SeededClips(Dataset):
    """Wraps a clip dataset; item ``(epoch, index)`` is ``dataset[index]`` drawn under its own RNG seed.

    The transforms use python/numpy/torch global generators; they are seeded from ``(seed, epoch, index)``
    for the call and restored afterwards, so augmentation is a pure function of that triple.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        seed = sample_seed(self.seed, epoch, index)
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.default_generator.manual_seed(seed)  # CPU only: CUDA generators stay untouched
        try:
            return self.dataset[index]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled with ``seed + epoch``) that yields ``(epoch, index)`` and can start
    ``start`` samples into an epoch."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        for index in list(super().__iter__())[self.start :]:
            yield self.epoch, index

    def __len__(self) -> int:
        return self.num_samples - self.start


class InfiniteBatches:
    """Endless batches of ``batch_size`` (per rank) over epochs; ``state_dict()`` = (epoch, batches consumed in
    it) resumes exactly."""

    def __init__(
        self, dataset: Dataset, batch_size: int, seed: int, env: DistEnv, num_workers: LoaderSettings | int = -1
    ) -> None:
        self.dataset = SeededClips(dataset, seed)
        self.batch_size = batch_size
        self.seed = seed
        self.loader_options = loader_options(num_workers, env)  # the data.* loader settings, or a worker count
        self.num_workers = self.loader_options["num_workers"]
        self.collate = collate_clips
        self.sampler = ResumableSampler(dataset, env.world_size, env.rank, seed)
        self.batches_per_epoch = self.sampler.num_samples // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"the training split has {len(dataset)} clips, fewer than one batch of {batch_size} per "  # type: ignore[arg-type]
                f"process for each of {env.world_size} processes; lower train.batch_size (global)"
            )
        self.epoch = 0
        self.position = 0
        self._loader: DataLoader | None = None  # built once: persistent workers survive epochs
        self._iterator: Iterator[dict] | None = None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._iterator = None

    def _start(self) -> None:
        self.sampler.set_position(self.epoch, self.position * self.batch_size)
        if self._loader is None:
            self._loader = DataLoader(
                self.dataset,
                batch_size=self.batch_size,
                sampler=self.sampler,
                drop_last=True,
                collate_fn=self.collate,
                **self.loader_options,
                # its own generator: creating an iterator must not draw from the global RNG
                generator=torch.Generator(),
            )
        assert self._loader.generator is not None
        self._loader.generator.manual_seed(self.seed + self.epoch)
        self._iterator = iter(self._loader)

    def __iter__(self) -> InfiniteBatches:
        return self

    def __next__(self) -> dict:
        if self.position >= self.batches_per_epoch:
            self.epoch, self.position, self._iterator = self.epoch + 1, 0, None
        if self._iterator is None:
            self._start()
        assert self._iterator is not None
        batch = next(self._iterator)
        self.position += 1
        return batch

"""DistributedDataParallel set-up from the environment: torchrun, or a SLURM job with several tasks.

    env = init_distributed("auto")     # DistEnv(rank, world_size, local_rank, device, ...)
    ...                                # env.is_main decides who writes files
    shutdown_distributed(env)

* torchrun sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` / ``MASTER_PORT``.
* Inside a SLURM job with ``SLURM_NTASKS > 1`` (srun or submitit), submitit's ``TorchDistributedEnvironment``
  exports the same variables (master = first host of the job, port derived from the job id).
* Otherwise the run is a single process (world size 1) and nothing is initialised.

The backend is NCCL on CUDA and Gloo on CPU.

Threads: ``set_threads(cfg.threads)`` at the start of every run (``bench.engine.trainer``, ``bench eval``,
``bench latency``): torch's intra-op threads are a config value (default 1), not the launcher's or the machine's
choice, because the thread count changes CPU float digits; 0 leaves torch's default (every core, or the SLURM
allocation: ``bench.grid.slurm``).

Each process's share of the machine for data loading (``loader_options``, used by training and evaluation):
``data.num_workers`` -1 = auto, i.e. ``min(4, CPUs per process)`` on CUDA and 0 (load in the training process)
on CPU, where workers would compete with the model for the same cores; on CUDA pinned memory and persistent
workers (kept alive across epochs and evaluations instead of being re-forked). ``data.pin_memory``,
``data.persistent_workers`` and ``data.prefetch_factor`` set them (``LoaderSettings``; -1 = that automatic choice).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistEnv:
    """Where this process sits in the job and which device it uses."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def global_rank() -> int:
    """This process's rank in the job from the environment (torchrun's ``RANK``, SLURM's ``SLURM_PROCID``), 0 for
    a single process; readable before the process group exists (the run executor decides who claims)."""
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def _launcher_world() -> str | None:
    """'torchrun', 'slurm' or None (single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ:
        return "torchrun"
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ:
        return "slurm"
    return None


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` = CUDA if available else CPU; ``cuda`` under DDP means this process's local GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} but CUDA is not available here; use device=cpu or device=auto")
    if name == "cuda":
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return torch.device(name)


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the process group when launched by torchrun or as a multi-task SLURM job; else a single process."""
    if dist.is_available() and dist.is_initialized():  # e.g. a caller set it up already
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, resolve_device(device, local_rank))
    launcher = _launcher_world()
    if launcher is None:
        return DistEnv(device=resolve_device(device))
    if launcher == "slurm":
        from submitit.helpers import TorchDistributedEnvironment

        # keep every GPU of the node visible: the device is picked by local rank below
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistEnv(rank, world, local_rank, resolved, initialized_here=True)


def shutdown_distributed(env: DistEnv) -> None:
    """Leave the process group if ``init_distributed`` created it."""
    if env.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place (no-op for a single process); returns it."""
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_list(items: list, env: DistEnv) -> list:
    """Every rank's ``items`` (picklable) concatenated in rank order, on every rank (``items`` for one process)."""
    if not env.distributed:
        return list(items)
    parts: list = [None] * env.world_size
    dist.all_gather_object(parts, items)
    return [item for part in parts for item in part]


def broadcast_object(value: Any, env: DistEnv, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` (picklable) on every rank (``value`` itself for one process)."""
    if not env.distributed:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op for a single process)."""
    if env.distributed:
        dist.barrier()


def set_threads(threads: int) -> int:
    """``torch.set_num_threads(threads)`` (``cfg.threads``; 0 = leave torch's default); returns the count in use."""
    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


AUTO_WORKERS_CAP = 4  # per process; data_loader_bench measured loading well under the step time with 4


def resolve_num_workers(num_workers: int, env: DistEnv) -> int:
    """``data.num_workers``, with -1 (auto) resolved: min(4, CPUs per process) on CUDA, 0 on CPU."""
    if num_workers >= 0:
        return num_workers
    if env.device.type != "cuda":
        return 0
    # the affinity mask is already per task under srun --cpus-per-task; torchrun processes share the node's
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local_processes = 1 if "SLURM_CPUS_PER_TASK" in os.environ else int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return min(AUTO_WORKERS_CAP, max(1, cpus // max(1, local_processes)))


@dataclass(frozen=True)
class LoaderSettings:
    """The ``data.*`` loader settings: ``num_workers`` (-1 auto), ``pin_memory`` and ``persistent_workers`` (-1
    auto, 0 off, 1 on), ``prefetch_factor`` (batches per worker loaded ahead)."""

    num_workers: int = -1
    pin_memory: int = -1
    persistent_workers: int = -1
    prefetch_factor: int = 2

    @classmethod
    def of(cls, data: Any) -> LoaderSettings:
        """From a ``DataConfig`` (or anything with those four attributes)."""
        return cls(int(data.num_workers), int(data.pin_memory), int(data.persistent_workers), int(data.prefetch_factor))


def loader_options(settings: LoaderSettings | int, env: DistEnv, persistent: bool = True) -> dict[str, Any]:
    """``DataLoader`` keyword arguments from ``settings`` (or a bare ``num_workers``): workers (auto resolved),
    pinned memory (auto: on CUDA; never without CUDA), persistent workers (``persistent``: a loader iterated more
    than once; auto: on CUDA with workers) and the prefetch factor (with workers)."""
    settings = settings if isinstance(settings, LoaderSettings) else LoaderSettings(num_workers=int(settings))
    workers = resolve_num_workers(settings.num_workers, env)
    cuda = env.device.type == "cuda"
    pin = cuda if settings.pin_memory < 0 else cuda and bool(settings.pin_memory)
    keep = cuda if settings.persistent_workers < 0 else bool(settings.persistent_workers)
    options = {"num_workers": workers, "pin_memory": pin, "persistent_workers": persistent and keep and workers > 0}
    if workers > 0:
        options["prefetch_factor"] = settings.prefetch_factor
    return options

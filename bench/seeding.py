"""Seeds and random-number-generator state: full determinism on CPU, exact resumption everywhere.

seed_everything(0, deterministic=True)     # python, numpy, torch (+ CUDA) and deterministic kernels
state = rng_state()                        # stored in checkpoint.pt
set_rng_state(state)                       # on resume
sample_seed(0, epoch=3, index=17)          # the seed of one augmented sample (see bench.engine.trainer)
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; with ``deterministic`` also select deterministic kernels.

    On CUDA some kernels (e.g. the bilinear-upsampling backward) have no deterministic version, so
    ``use_deterministic_algorithms`` runs in warn-only mode there; on CPU every op used here is deterministic.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too
    if deterministic:
        # cuBLAS needs a fixed workspace for reproducible matmuls (CUDA docs, "Reproducibility")
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
        # filling every new tensor with NaN only guards against reading uninitialised memory, which no
        # kernel here does; it costs ~7% of a CPU training step
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for sample ``index`` in ``epoch``: independent of worker count, rank and resumption."""
    words = np.random.SeedSequence([seed % 2**32, epoch, index]).generate_state(2, dtype=np.uint32)
    return int(words[0]) << 31 ^ int(words[1])


def rng_state() -> dict[str, Any]:
    """States of python's, numpy's and torch's (CPU and every CUDA device) global generators.

    Everything is a tensor, a number or a tuple of numbers, so ``torch.load(weights_only=True)`` reads it back.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned (CUDA states only when CUDA is available)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)

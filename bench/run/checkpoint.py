"""Atomic training checkpoints: ``run_dir/checkpoint.pt`` is always either the old or the new complete file.

    save_checkpoint(path, state)          # torch.save to a temporary file in the same folder, fsync, os.replace
    state = load_checkpoint(path)         # weights_only load (tensors, numbers, strings, lists, dicts)

A training state (built by ``bench.run.trainer``) holds::

    {"iteration": int, "model": state_dict, "optimizer": ..., "scaler": GradScaler state ({} without fp16),
     "rng": bench.seeding.rng_state(), "data": {"epoch": int, "position": int},
     "elapsed_s": float, "config": resolved config dict, "config_hash": str, "classes": [class names]}

Its weights are always finite (the trainer checks before saving). To rebuild the trained model from a run use
``bench.models.build.load_run_model(run_dir)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.run.records import write_atomic


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or does not belong to this run."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically; a crash mid-write leaves the previous file intact."""
    return write_atomic(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (or any ``torch.save`` of plain containers)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors, truncated files, foreign formats
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err


def load_model_weights(model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """Load the weights of the checkpoint at ``path`` into ``model``; returns the whole checkpoint."""
    checkpoint = load_checkpoint(path)
    model.load_state_dict(model_state_from(checkpoint))
    return checkpoint


def model_state_from(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model weights of a training checkpoint, or of a bare state dict; a DDP ``module.`` prefix is removed."""
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, dict):
        raise CheckpointError("checkpoint holds no model state_dict")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state

"""Atomic training checkpoints: ``run_dir/checkpoint.pt`` is always either the old or the new complete file.

    save_checkpoint(path, state)          # torch.save to a temporary file in the same folder, fsync, os.replace
    state = load_checkpoint(path)         # weights_only load (tensors, numbers, strings, lists, dicts)

A training state (built by ``bench.engine.trainer``) holds::

    {"iteration": int, "model": state_dict, "optimizer": ..., "scaler": GradScaler state ({} without fp16),
     "rng": bench.seeding.rng_state(), "data": {"epoch": int, "position": int},
     "elapsed_s": float, "config": resolved config dict, "config_hash": str, "classes": [class names],
     "run_id": str, "code": the code fingerprint (bench.run.fingerprint)}

The last five are the run's stamp (``TrainJob.stamp``): ``bench.run.resume`` reads them (``read_stamp``) and
refuses to resume a checkpoint of another run or of other code.

Its weights are always finite (the trainer checks before saving). To rebuild the trained model from a run use
``bench.run.model.load_run_model(run_dir)``.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import torch

from bench.atomic import atomic_file
from bench.errors import BenchError

STAMP = ("config", "code")  # dict entries of the stamp that read_stamp keeps (the training state's dicts are left out)


class CheckpointError(BenchError, RuntimeError):
    """A checkpoint is missing, unreadable or does not belong to this run."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically; a crash mid-write leaves the previous file intact.

    A full disk is a ``CheckpointError`` naming the folder (the previous checkpoint is still there).
    """
    had_one = Path(path).is_file()
    try:
        with atomic_file(path) as handle:
            torch.save(state, handle)
        return Path(path)
    except (OSError, RuntimeError) as err:
        if not disk_full(err):
            raise
        folder = Path(path).parent
        then = (
            (
                "the previous checkpoint there is intact: free space (df -h {f}) and rerun the same command to "
                "resume from it"
            )
            if had_one
            else (
                "no checkpoint was saved yet: free space (df -h {f}) and rerun "
                "the same command (it starts from the beginning)"
            )
        )
        raise CheckpointError(
            f"no disk space left to save {Path(path).name} in {folder}; {then.format(f=folder)}"
        ) from err


def disk_full(err: BaseException) -> bool:
    """True for ENOSPC / EDQUOT, and for torch.save's zip writer failing on a full disk (it reports a
    ``RuntimeError: [enforce fail at inline_container.cc:...] ... unexpected pos`` instead of ENOSPC)."""
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(err)
    return "inline_container.cc" in text and (
        "unexpected pos" in text or "No space left" in text or "file write failed" in text
    )


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (or any ``torch.save`` of plain containers)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors, truncated files, foreign formats
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from err


def read_stamp(path: str | Path) -> dict[str, Any]:
    """The entries of a checkpoint that are not tensors (iteration, config, config_hash, run_id, code, ...),
    read through a memory map so the weights are not loaded (a plain load for files that cannot be mapped)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # an old (non-zip) format cannot be mapped; load_checkpoint names what is wrong
        state = load_checkpoint(path)
    if not isinstance(state, dict):
        return {}
    return {key: value for key, value in state.items() if not isinstance(value, (dict, torch.Tensor)) or key in STAMP}


def load_model_weights(model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    """Load the weights of the checkpoint at ``path`` into ``model``; returns the whole checkpoint."""
    checkpoint = load_checkpoint(path)
    load_state_into(model, model_state_from(checkpoint, path), path)
    return checkpoint


def model_state_from(checkpoint: Any, path: str | Path = "the checkpoint") -> dict[str, torch.Tensor]:
    """The model weights of a training checkpoint (its ``"model"``), or of a bare state dict (name -> tensor);
    a DDP ``module.`` prefix is removed. Anything else (a bare tensor, a dict of other things) is a
    ``CheckpointError`` naming ``path``."""
    hint = "pass the checkpoint.pt that bench train wrote (a dict with the weights under 'model') or a state dict"
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint; {hint}")
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        keys = ", ".join(sorted(map(str, checkpoint))[:6]) or "none"
        raise CheckpointError(
            f"{path} holds no model weights (its keys: {keys}; 'model' is missing or not a dict of tensors); {hint}"
        )
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_state_into(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """``model.load_state_dict(state)``; weights of another architecture are a one-line ``CheckpointError``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    resized = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or resized:
        parts = [
            f"{len(keys)} {what} (e.g. {keys[0]})"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", resized))
            if keys
        ]
        raise CheckpointError(
            f"the weights in {path} do not fit the model {type(model).__name__}: "
            f"{', '.join(parts)} (the model has {len(expected)}); evaluate it with the config it was "
            f"trained with"
        )
    model.load_state_dict(state)

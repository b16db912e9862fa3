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

"""Reading a checkpoint file into tensors, whatever container it comes in; nothing but tensors is unpickled.

    from bench.weights.files import read_checkpoint
    ckpt = read_checkpoint("pspnet_r50-d8_769x769_80k_cityscapes_20200606_210121-5ccf03dd.pth")
    ckpt.state          # {"backbone.stem.0.weight": Tensor, ...}: the weights, DDP "module." prefix removed
    ckpt.meta           # mmcv/mmseg "meta" (CLASSES, mmcv_version, iter, ...), or a suite checkpoint's
                        # config / classes / iteration; {} for a bare state dict
    ckpt.container      # "mmseg" | "bench" | "wrapped" | "bare" | "safetensors"

Containers (docs/checkpoints.md; mmcv ``save_checkpoint``): mmcv 1.x / mmseg 0.x and
mmengine / mmseg 1.x write ``{"meta": ..., "state_dict": ..., "optimizer": ...}``; the suite's trainer writes
``{"model": ..., "config": ..., "classes": ..., "optimizer": ..., ...}`` (``bench.run.checkpoint``); hubs ship
bare state dicts (``.pth``) or ``.safetensors``. ``.pth`` files are opened with ``torch.load(weights_only=True)``:
a file whose pickle holds other Python objects (numpy scalars, mmengine's message hub) is refused in one line
that says how to keep only its weights. A missing, empty, truncated or foreign file is a one-line
``CheckpointFileError`` naming the file.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from bench.weights.errors import CheckpointFileError, MissingCheckpointFile

# entries of a suite training checkpoint that are training state, not a description of the weights
_TRAINING_STATE = frozenset({"model", "optimizer", "scaler", "rng", "data", "loss_watch"})
_UNSUPPORTED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file's weights (name -> tensor), its metadata and the kind of container it came in."""

    path: Path
    state: dict[str, Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    container: str = "bare"


def read_checkpoint(path: str | Path, hint: str = "") -> Checkpoint:
    """The weights and metadata of a ``.pth`` / ``.pt`` / ``.bin`` / ``.safetensors`` file.

    ``hint`` is added to the message when the file does not exist (say where to download it from).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        where = hint or "download it (by hand: nothing is downloaded at run time) and give its local path"
        raise MissingCheckpointFile(f"checkpoint file {path} does not exist; {where}")
    if path.stat().st_size == 0:
        raise CheckpointFileError(f"checkpoint file {path} is empty (an interrupted download?); download it again")
    if path.suffix == ".safetensors":
        return Checkpoint(path, _read_safetensors(path), {}, "safetensors")
    return unwrap(_read_pickle(path), path)


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        return load_file(str(path))
    except SafetensorError as err:
        raise CheckpointFileError(
            f"checkpoint file {path} is truncated or corrupt ({err}); download it again and compare its hash"
        ) from err


def _read_pickle(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if _looks_like_torch(path):
            raise CheckpointFileError(_refused(path, err)) from err
        raise CheckpointFileError(_foreign(path, err)) from err
    except Exception as err:  # a cut file fails in many ways (RuntimeError, EOFError, OSError), a foreign one too
        if _looks_like_torch(path):
            raise CheckpointFileError(
                f"checkpoint file {path} is truncated or corrupt ({path.stat().st_size} bytes; {type(err).__name__}: "
                f"{_first_line(err)}); download it again and compare its hash"
            ) from err
        raise CheckpointFileError(_foreign(path, err)) from err


def _foreign(path: Path, err: Exception) -> str:
    return (
        f"{path} is not a PyTorch checkpoint ({type(err).__name__}: {_first_line(err)}); "
        f"give a .pth / .pt / .bin file written by torch.save, or a .safetensors file"
    )


def _looks_like_torch(path: Path) -> bool:
    """A zip archive (torch.save since PyTorch 1.6) or a pickle stream (the legacy format) by its first bytes."""
    with path.open("rb") as handle:
        head = handle.read(2)
    return head == b"PK" or head[:1] == b"\x80"


def _refused(path: Path, err: pickle.UnpicklingError) -> str:
    """One line for a pickle that ``weights_only`` refuses: which object, and how to keep only the weights."""
    found = _UNSUPPORTED_GLOBAL.search(str(err))
    name = found.group(1) if found else "an object that is not a tensor"
    if name.startswith("torch."):  # a torch global cut short: the pickle stream ends early
        return f"checkpoint file {path} is truncated or corrupt (its pickle ends inside {name}); download it again"
    out = path.with_name(path.stem + ".weights.pth")
    return (
        f"checkpoint file {path} holds Python objects besides tensors ({name}), which "
        f"torch.load(weights_only=True) refuses (unpickling them could run code); if you trust its source, keep only "
        f"its weights with: python -c \"import torch; c = torch.load('{path}', map_location='cpu', "
        f"weights_only=False); torch.save({{'state_dict': c.get('state_dict', c)}}, '{out}')\" and give {out.name}"
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def unwrap(raw: Any, path: Path) -> Checkpoint:
    """The weights inside a loaded container; ``path`` names the file in errors."""
    if not isinstance(raw, dict):
        raise CheckpointFileError(
            f"{path} holds a {type(raw).__name__}, not a state dict or a checkpoint; give a file written by "
            f"torch.save(model.state_dict()) or by mmcv/mmseg/bench"
        )
    if isinstance(raw.get("state_dict"), dict):
        meta = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
        return Checkpoint(path, _tensors(raw["state_dict"], path), dict(meta), "mmseg")
    if isinstance(raw.get("model"), dict) and ("config" in raw or "iteration" in raw):
        meta = {k: v for k, v in raw.items() if k not in _TRAINING_STATE}
        return Checkpoint(path, _tensors(raw["model"], path), meta, "bench")
    for name in ("model", "module"):
        if isinstance(raw.get(name), dict):
            return Checkpoint(path, _tensors(raw[name], path), {}, "wrapped")
    return Checkpoint(path, _tensors(raw, path), {}, "bare")


def _tensors(state: dict[Any, Any], path: Path) -> dict[str, Tensor]:
    """The tensor entries of ``state``, a DDP ``module.`` prefix removed; none at all is an error."""
    tensors = {str(k): v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        keys = ", ".join(sorted(map(str, state))[:6]) or "none"
        raise CheckpointFileError(
            f"{path} holds no weights (no tensors; its keys: {keys}); give a model checkpoint or a state dict"
        )
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex (mmcv's published names end in its first 8 digits: ``-5ccf03dd.pth``)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""The errors of reading and mapping checkpoints; each message is one line that names the file and what to do.

Usage::

    from bench.weights.errors import WeightsError
    try:
        load_weights(model, path)
    except WeightsError as err:       # CheckpointFileError, LayoutError or WeightsMismatchError
        print(err)                    # one line; the bench command prints it as bench: <Class>: <message>
"""

from __future__ import annotations

from bench.errors import BenchError


class WeightsError(BenchError, ValueError):
    """A checkpoint that cannot be used as asked: the base of this package's errors (a user error, not a bug)."""


class CheckpointFileError(WeightsError):
    """The file is missing, empty, truncated, refused by ``torch.load(weights_only=True)`` or not a checkpoint."""


class MissingCheckpointFile(CheckpointFileError, FileNotFoundError):
    """The file does not exist (the message says where to download it, when the caller knows)."""


class LayoutError(WeightsError):
    """The checkpoint's key layout is unknown, is another model's, or contradicts ``checkpoint_format``."""


class WeightsMismatchError(WeightsError):
    """A key of the checkpoint is missing from the model, unexpected in it, or of another shape."""

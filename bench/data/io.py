"""Reading frames and label maps from disk, with errors that say what is wrong.

Used by the real datasets (``cityscapes.py``, ``camvid.py``)::

    frame = read_rgb(path)                      # uint8 (3, H, W)
    label = read_label(path, lut, num_classes)  # int64 (H, W), values in [0, C) or 255

Every problem with a dataset folder raises :class:`DatasetError` (a ``ValueError``) whose message
names the offending path and, where useful, the expected layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from bench.constants import IGNORE_INDEX
from bench.data.errors import DatasetError


def layout_error(problem: str, path: Path | str, layout: str) -> DatasetError:
    """An error naming the first offending ``path`` and showing the expected ``layout``."""
    return DatasetError(f"{problem}: {path}\n\nExpected layout:\n{layout}")


# PIL modes of one channel holding more than 8 bits: convert("RGB") clips them (a 16-bit frame turns white)
WIDE_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;32", "I;32L", "I;32B"})


def wide_frame_error(path: Path | str, mode: str) -> DatasetError:
    """The one-line error for a frame stored with more than 8 bits per sample."""
    return DatasetError(
        f"frame {path} is a {'16' if '16' in mode else '32'}-bit single-channel image (PIL mode {mode}); converting "
        f"it to RGB would clip it to white. Expected 8-bit RGB frames (PNG/JPEG, 3 x 8 bits): convert them, e.g. "
        f"ffmpeg -i IN -pix_fmt rgb24 OUT.png"
    )


def read_rgb(path: Path | str) -> torch.Tensor:
    """Decode a PNG/JPEG file as RGB. Returns uint8 ``(3, H, W)``. A frame of more than 8 bits per sample is a
    ``DatasetError`` (``wide_frame_error``)."""
    # PIL rather than torchvision.io, whose image decoding is deprecated since torchvision 0.29
    try:
        with Image.open(path) as image:
            if image.mode in WIDE_MODES:
                raise wide_frame_error(path, image.mode)
            pixels = np.asarray(image.convert("RGB"))
    except OSError as error:
        raise DatasetError(f"cannot read image {path}: {error}") from error
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def read_label(path: Path | str, lut: np.ndarray, num_classes: int) -> torch.Tensor:
    """Read a single-channel index PNG and map it through ``lut``.

    ``lut`` is an int64 array of 256 entries: raw value -> class id in ``[0, num_classes)``, 255
    (ignore), or -1 for values that must not occur. Returns int64 ``(H, W)``. Raises
    :class:`DatasetError` naming the file and the offending raw values.
    """
    try:
        with Image.open(path) as image:
            raw = np.asarray(image)
    except OSError as error:
        raise DatasetError(f"cannot read label map {path}: {error}") from error
    if raw.ndim != 2:
        raise DatasetError(
            f"label map {path} has shape {raw.shape}; expected a single-channel index PNG "
            "(colour-coded labels must be converted to class indices first)"
        )
    bits = raw.dtype.itemsize * 8
    raw = raw.astype(np.int64)
    out_of_range = np.unique(raw[(raw < 0) | (raw > 255)])
    if out_of_range.size:
        raise DatasetError(
            f"label map {path} is a {bits}-bit image holding values outside 0..255 "
            f"({out_of_range[:20].tolist()}); expected an 8-bit index PNG of class ids "
            f"(0..{num_classes - 1}, {IGNORE_INDEX} = ignore, or the dataset's own ids)"
        )
    mapped = lut[raw]
    bad = np.unique(raw[mapped < 0])
    if bad.size:
        raise DatasetError(
            f"label map {path} holds invalid values {bad[:20].tolist()}; "
            f"allowed are the classes 0..{num_classes - 1} and {IGNORE_INDEX} (ignore)"
        )
    return torch.from_numpy(mapped)


def resize_to(frame: torch.Tensor, size: tuple[int, int], path: Path | str) -> torch.Tensor:
    """Resize a uint8 ``(3, h, w)`` frame to ``size`` (H, W) if needed; the aspect ratio must match."""
    h, w = frame.shape[-2:]
    if (h, w) == tuple(size):
        return frame
    if abs(h / w - size[0] / size[1]) > 0.01:
        raise DatasetError(f"frame {path} is {h}x{w} but its label map is {size[0]}x{size[1]} (different aspect ratio)")
    resized = F.interpolate(frame[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    return resized[0].round().clamp(0, 255).to(torch.uint8)

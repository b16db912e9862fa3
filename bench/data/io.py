"""Reading frames and label maps from disk, with errors that say what is wrong.

Used by the real datasets (``cityscapes.py``, ``camvid.py``)::

    frame = read_rgb(path)                      # uint8 (3, H, W)
    label = read_label(path, lut, num_classes)  # int64 (H, W), values in [0, C) or 255
    read_rgb(path, decoder="pil")               # force a decoder: "pyspng" or "pil" (default: DEFAULT_DECODER)

PNG decoding: 8-bit greyscale, RGB and RGBA PNGs are decoded by pyspng (libspng) when it is installed, about
twice as fast as PIL on a 2048x1024 Cityscapes frame (``python -m bench.perf.data_loader_bench --clip-cost``);
the pixels are the same (``tests/test_data_loader_speed.py``; no gamma or transparency handling in either, the
alpha channel is dropped). Every other file (JPEG, palette or 16-bit PNGs, or any PNG without pyspng) goes
through PIL, as before.

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

try:
    import pyspng
except ImportError:  # optional at run time: PIL decodes every file then (same pixels, slower)
    pyspng = None

DECODERS = ("pyspng", "pil")
DEFAULT_DECODER = "pyspng" if pyspng is not None else "pil"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# IHDR colour types pyspng decodes to exactly PIL's pixels at bit depth 8: greyscale, RGB, RGBA
SPNG_COLOUR_TYPES = {0: 1, 2: 3, 6: 4}  # colour type -> channels


def layout_error(problem: str, path: Path | str, layout: str) -> DatasetError:
    """An error naming the first offending ``path`` and showing the expected ``layout``."""
    return DatasetError(f"{problem}: {path}\n\nExpected layout:\n{layout}")


def decode_with_spng(data: bytes) -> np.ndarray | None:
    """pyspng's pixels of an 8-bit greyscale/RGB/RGBA PNG in ``data`` ((H, W) or (H, W, C) uint8), else None."""
    if pyspng is None or len(data) < 26 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    bit_depth, colour_type = data[24], data[25]
    if bit_depth != 8 or colour_type not in SPNG_COLOUR_TYPES:
        return None
    return pyspng.load(data)


def _decode(path: Path | str, decoder: str | None, what: str) -> np.ndarray | None:
    """pyspng's pixels when ``decoder`` allows it and the file qualifies, else None (the caller uses PIL)."""
    if (decoder or DEFAULT_DECODER) not in DECODERS:
        raise ValueError(f"unknown image decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
    if (decoder or DEFAULT_DECODER) != "pyspng" or pyspng is None:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        return decode_with_spng(data)
    except (OSError, RuntimeError) as error:  # pyspng raises RuntimeError for a corrupt file
        raise DatasetError(f"cannot read {what} {path}: {error}") from error


# PIL modes of one channel holding more than 8 bits: convert("RGB") clips them (a 16-bit frame turns white)
WIDE_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;32", "I;32L", "I;32B"})


def wide_frame_error(path: Path | str, mode: str) -> DatasetError:
    """The one-line error for a frame stored with more than 8 bits per sample."""
    return DatasetError(
        f"frame {path} is a {'16' if '16' in mode else '32'}-bit single-channel image (PIL mode {mode}); converting "
        f"it to RGB would clip it to white. Expected 8-bit RGB frames (PNG/JPEG, 3 x 8 bits): convert them, e.g. "
        f"ffmpeg -i IN -pix_fmt rgb24 OUT.png"
    )


def read_rgb(path: Path | str, decoder: str | None = None) -> torch.Tensor:
    """Decode a PNG/JPEG file as RGB. Returns uint8 ``(3, H, W)``. ``decoder``: see the module docstring. A frame
    of more than 8 bits per sample is a ``DatasetError`` (``wide_frame_error``)."""
    pixels = _decode(path, decoder, "image")
    if pixels is not None and pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)  # greyscale: PIL's convert("RGB") repeats the channel
    elif pixels is not None:
        pixels = pixels[..., :3]
    else:
        try:
            with Image.open(path) as image:
                if image.mode in WIDE_MODES:
                    raise wide_frame_error(path, image.mode)
                pixels = np.asarray(image.convert("RGB"))
        except OSError as error:
            raise DatasetError(f"cannot read image {path}: {error}") from error
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def read_raw_label(path: Path | str, decoder: str | None = None) -> np.ndarray:
    """The stored values of a single-channel index (or palette) PNG, ``(H, W)``, unmapped (uint8 for 8-bit files;
    wider integers otherwise). ``decoder``: see the module docstring."""
    raw = _decode(path, decoder, "label map")
    if raw is None:
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
    return raw if raw.dtype == np.uint8 else raw.astype(np.int64)


def map_label(
    raw: np.ndarray, lut: np.ndarray, num_classes: int, path: Path | str, allowed: str | None = None
) -> torch.Tensor:
    """``lut[raw]`` as int64 ``(H, W)``; values outside 0..255 or marked -1 in ``lut`` raise, naming ``path`` and
    what is ``allowed`` (default: the classes 0..num_classes-1 and 255)."""
    if raw.dtype == np.uint8:  # the common case, checked with one pass over the pixels
        present = np.flatnonzero(np.bincount(raw.ravel(), minlength=256))
        bad = present[lut[present] < 0]
        mapped = lut[raw] if not bad.size else None
    else:
        out_of_range = np.unique(raw[(raw < 0) | (raw > 255)])
        if out_of_range.size:
            raise DatasetError(
                f"label map {path} holds values outside 0..255 ({out_of_range[:20].tolist()}: a 16-bit image?); "
                f"expected an 8-bit index PNG of class ids ({num_classes} classes and {IGNORE_INDEX} = ignore, or "
                f"the dataset's own ids)"
            )
        mapped = lut[raw]
        bad = np.unique(raw[mapped < 0])
    if bad.size:
        allowed = allowed or f"the classes 0..{num_classes - 1} and {IGNORE_INDEX} (ignore)"
        raise DatasetError(f"label map {path} holds invalid values {bad[:20].tolist()}; allowed are {allowed}")
    return torch.from_numpy(mapped)


def read_label(
    path: Path | str, lut: np.ndarray, num_classes: int, allowed: str | None = None, decoder: str | None = None
) -> torch.Tensor:
    """Read a single-channel index PNG and map it through ``lut``.

    ``lut`` is an int64 array of 256 entries: raw value -> class id in ``[0, num_classes)``, 255
    (ignore), or -1 for values that must not occur. Returns int64 ``(H, W)``. Raises
    :class:`DatasetError` naming the file, the offending raw values and what is ``allowed``.
    """
    return map_label(read_raw_label(path, decoder), lut, num_classes, path, allowed)


def resize_to(frame: torch.Tensor, size: tuple[int, int], path: Path | str) -> torch.Tensor:
    """Resize a uint8 ``(3, h, w)`` frame to ``size`` (H, W) if needed; the aspect ratio must match."""
    h, w = frame.shape[-2:]
    if (h, w) == tuple(size):
        return frame
    if abs(h / w - size[0] / size[1]) > 0.01:
        raise DatasetError(f"frame {path} is {h}x{w} but its label map is {size[0]}x{size[1]} (different aspect ratio)")
    resized = F.interpolate(frame[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    return resized[0].round().clamp(0, 255).to(torch.uint8)

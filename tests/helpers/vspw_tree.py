"""A tiny VSPW_480p tree in the release's exact layout, for tests (``from helpers.vspw_tree import ...``).

    root = write_vspw_tree(tmp_path, {"val": {"1_aaa": 12, "2_bbb": 5}})
    # root/val.txt, root/data/1_aaa/origin/00000001.jpg ... 00000012.jpg, root/data/1_aaa/mask/00000001.png ...

Frame k (0-based position) of a video is a flat image whose red channel is ``20 * k`` (JPEG keeps a flat colour
within a few levels) and whose mask (a palette PNG, as masks of the release) is ``mask_of(k)``: column blocks of
0 (others), class value ``1 + k % 3``, 124 and 255 (void).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

H, W = 8, 12


def frame_name(position: int) -> str:
    """The release's frame names: 8 digits, numbered from 1."""
    return f"{position + 1:08d}"


def mask_of(position: int, size: tuple[int, int] = (H, W)) -> np.ndarray:
    """Column blocks (a quarter of the width each) of 0, ``1 + position % 3``, 124 and 255."""
    mask = np.zeros(size, dtype=np.uint8)
    q = size[1] // 4
    mask[:, q : 2 * q], mask[:, 2 * q : 3 * q], mask[:, 3 * q :] = 1 + position % 3, 124, 255
    return mask


def write_mask(path: Path, mask: np.ndarray) -> None:
    image = Image.fromarray(mask, mode="P")
    image.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    image.save(path)


def write_video(root: Path, video: str, frames: int, labelled: bool = True, size: tuple[int, int] = (H, W)) -> None:
    origin, mask = root / "data" / video / "origin", root / "data" / video / "mask"
    origin.mkdir(parents=True, exist_ok=True)
    if labelled:
        mask.mkdir(parents=True, exist_ok=True)
    for k in range(frames):
        pixels = np.zeros((*size, 3), dtype=np.uint8)
        pixels[..., 0], pixels[..., 1] = 20 * k % 250, 100
        pixels[:, : size[1] // 2, 2] = 200  # a left/right edge, so a model has something to see
        Image.fromarray(pixels).save(origin / f"{frame_name(k)}.jpg", quality=95)
        if labelled:
            write_mask(mask / f"{frame_name(k)}.png", mask_of(k, size))


def write_vspw_tree(base: Path, splits: dict[str, dict[str, int]], size: tuple[int, int] = (H, W)) -> Path:
    """``base/VSPW_480p`` with one split file per key of ``splits`` ({split: {video: frame count}}); the test
    split's videos get no masks, as in the release."""
    root = base / "VSPW_480p"
    for split, videos in splits.items():
        root.mkdir(parents=True, exist_ok=True)
        (root / f"{split}.txt").write_text("".join(f"{v}\n" for v in videos))
        for video, frames in videos.items():
            write_video(root, video, frames, labelled=split != "test", size=size)
    return root

"""A PNG grid of clips, to check a dataset by eye.

One row per clip; columns: the memory frames (oldest first), the current frame, its label (coloured,
ignore = black) and, for the synthetic data, the ground-truth flow t -> t-1 as a colour wheel image.

Usage::

    python -m bench.data.preview --out preview.png --clips 4 --memory-length 2   # synthetic defaults
    save_clip_grid(dataset, [0, 1, 2], "clips.png")
    preview_main(cfg.data, memory_length=2, out_path="clips.png", num_clips=4)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from matplotlib import colormaps
from matplotlib.figure import Figure  # the Figure API: importing this module never switches the backend
from torchvision.utils import flow_to_image

from bench.config import DataConfig, load_config
from bench.data.build import build_dataset
from bench.data.transforms import denormalize


def colour_label(
    label: torch.Tensor, num_classes: int, palette: list[tuple[int, int, int]] | None = None
) -> torch.Tensor:
    """int64 ``(H, W)`` -> uint8 ``(H, W, 3)``; the ignore value 255 (and anything out of range) is black."""
    if palette is None or len(palette) < num_classes:
        cmap = colormaps["tab20"]
        palette = [tuple(int(255 * c) for c in cmap(i % 20)[:3]) for i in range(num_classes)]
    table = torch.zeros(256, 3, dtype=torch.uint8)
    table[:num_classes] = torch.tensor(palette[:num_classes], dtype=torch.uint8)
    return table[label.clamp(0, 255)]


def save_clip_grid(dataset, indices: list[int], path: str | Path) -> Path:
    """Write the clips ``dataset[i]`` for ``i`` in ``indices`` as one PNG grid to ``path``."""
    samples = [dataset[i] for i in indices]
    if not samples:
        raise ValueError("save_clip_grid needs at least one index")
    num_frames = samples[0]["frames"].shape[0]
    has_flow = "flow" in samples[0] and samples[0]["flow"].shape[0] > 0
    titles = [f"t-{num_frames - 1 - i}" for i in range(num_frames - 1)] + ["current t", "label"]
    titles += ["flow t->t-1"] if has_flow else []
    rows, cols = len(samples), len(titles)
    figure = Figure(figsize=(2.2 * cols, 2.2 * rows))
    axes = figure.subplots(rows, cols, squeeze=False)
    palette = getattr(dataset, "palette", None)
    for row, sample in enumerate(samples):
        images = [denormalize(frame).permute(1, 2, 0).byte() for frame in sample["frames"]]
        images.append(colour_label(sample["label"], dataset.num_classes, palette))
        if has_flow:
            images.append(flow_to_image(sample["flow"][-1]).permute(1, 2, 0))
        for col, image in enumerate(images):
            axis = axes[row][col]
            axis.imshow(image.numpy(), interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(titles[col], fontsize=9)
        axes[row][0].set_ylabel(sample["name"], fontsize=7)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def preview_main(
    data_cfg: DataConfig,
    memory_length: int,
    out_path: str | Path,
    num_clips: int = 4,
    split: str = "",
    train: bool = False,
) -> Path:
    """Build the dataset of ``data_cfg`` (``split`` defaults to its ``val_split``) and save ``num_clips`` clips."""
    split = split or data_cfg.val_split
    dataset = build_dataset(data_cfg, split, memory_length, train)
    return save_clip_grid(dataset, list(range(min(num_clips, len(dataset)))), out_path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Save a PNG grid of dataset clips.")
    parser.add_argument("config", nargs="?", default="", help="YAML config (default: the synthetic defaults)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides such as data.synthetic.noise=0.1")
    parser.add_argument("--out", default="preview.png")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--memory-length", type=int, default=2)
    parser.add_argument("--split", default="")
    parser.add_argument("--train", action="store_true", help="show training augmentation")
    args = parser.parse_args(argv)
    config, overrides = args.config, list(args.overrides)
    if "=" in config:  # only overrides were given
        config, overrides = "", [config] + overrides
    cfg = load_config(config or None, overrides)
    path = preview_main(cfg.data, args.memory_length, args.out, args.clips, args.split, args.train)
    print(path)


if __name__ == "__main__":
    main()

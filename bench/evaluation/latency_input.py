"""The frames a latency measurement streams: the validation clips, or random frames of the same size when the
dataset is not here (the time a model takes does not depend on what the pixels show).

    from bench.evaluation.latency_input import latency_frames, stream_frames, random_frames
    frames, source = latency_frames(cfg.data, count=40, memory_length=2, needs_flow=False, missing_data="random")
    source   # {"frames": "dataset", "split": "val"} or {"frames": "random", "size": [1024, 2048], "why": "..."}

``stream_frames`` walks a dataset's clips in time order (``bench.evaluation.latency`` documents the protocol);
``random_frames`` draws ImageNet-normalised noise frames (seed 0, so two measurements see the same input) of
``bench.data.catalog.eval_frame_size``, the size the model sees at evaluation; a model that takes flow as input
gets zero flow. A classical flow source (DIS, Farneback) is timed on noise then, which may differ from its time on
video; the result says which frames were used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from bench.config import DataConfig
from bench.data.build import build_dataset
from bench.data.catalog import eval_frame_size
from bench.data.errors import DatasetError

Frames = list[tuple[Tensor, Tensor | None]]
MISSING_DATA = ("error", "random")  # what to do when the dataset cannot be read


def stream_frames(dataset: Any, count: int, needs_flow: bool = False) -> Iterator[tuple[Tensor, Tensor | None]]:
    """``count`` frames (1, 3, H, W) of ``dataset``, clip after clip, each clip in time order (cycling).

    With ``needs_flow`` every frame of a clip comes with that clip's ground-truth flow (1, T, 2, H, W), which is
    exact for the clip's current (last) frame only; timing does not depend on the flow's values.
    """
    if len(dataset) == 0:
        raise ValueError("the dataset has no clips to stream")
    produced, index = 0, 0
    while produced < count:
        sample = dataset[index % len(dataset)]
        index += 1
        flow = sample["flow"].unsqueeze(0) if needs_flow and "flow" in sample else None
        for frame in sample["frames"]:
            if produced == count:
                return
            yield frame.unsqueeze(0), flow
            produced += 1


def random_frames(count: int, size: tuple[int, int], memory_length: int, needs_flow: bool = False) -> Frames:
    """``count`` standard-normal frames (1, 3, H, W) (seed 0) and, with ``needs_flow``, zero flow (1, T, 2, H, W)."""
    height, width = size
    if height < 1 or width < 1:
        raise DatasetError(f"no frame size to draw random frames at ({height}x{width}); set data.base_size=[H, W]")
    generator = torch.Generator().manual_seed(0)
    flow = torch.zeros(1, max(memory_length, 1), 2, height, width) if needs_flow else None
    return [(torch.randn(1, 3, height, width, generator=generator), flow) for _ in range(count)]


def latency_frames(
    data: DataConfig, count: int, memory_length: int, needs_flow: bool, missing_data: str = "error"
) -> tuple[Frames, dict[str, Any]]:
    """The frames to stream and where they came from: the validation split of ``data``; when it cannot be read,
    a ``DatasetError`` (``missing_data="error"``) or random frames of the evaluation size (``"random"``)."""
    if missing_data not in MISSING_DATA:
        raise ValueError(f"missing_data must be one of {MISSING_DATA}, got {missing_data!r}")
    try:
        dataset = build_dataset(data, data.val_split, memory_length, train=False)
    except DatasetError as err:
        if missing_data == "error":
            raise
        size = eval_frame_size(data)
        why = str(err).splitlines()[0]
        frames = random_frames(count, size, memory_length, needs_flow)
        return frames, {"frames": "random", "size": list(size), "why": f"the {data.dataset} data was not read: {why}"}
    return list(stream_frames(dataset, count, needs_flow)), {"frames": "dataset", "split": data.val_split}

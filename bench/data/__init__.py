"""Video clip datasets: synthetic (default, procedural), Cityscapes sequences, CamVid video.

``build_dataset(data_cfg, split, memory_length, train)`` and ``collate_clips`` are the entry points;
see docs/architecture.md ("Clips") for the sample format and ``python -m bench.data.preview`` to look at clips.
"""

from bench.data.build import build_dataset, collate_clips
from bench.data.io import DatasetError

__all__ = ["build_dataset", "collate_clips", "DatasetError"]

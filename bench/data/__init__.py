"""Video clip datasets: synthetic (default, procedural), Cityscapes sequences, CamVid video.

``bench.data.build.build_dataset(data_cfg, split, memory_length, train)`` and ``collate_clips`` are the entry
points; see docs/architecture.md ("Clips") for the sample format and ``python -m bench.data.preview`` to look at
clips. ``bench.data.catalog`` describes each dataset without opening it (and without torch). The names below load
their module on first use, so importing a torch-free module of this package stays torch-free.
"""

from __future__ import annotations

import importlib
from typing import Any

_API: dict[str, str] = {
    "build_dataset": "bench.data.build",
    "build_videos": "bench.data.build",
    "collate_clips": "bench.data.build",
    "DatasetError": "bench.data.errors",
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'bench.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)

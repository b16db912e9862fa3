"""What a ``make gpu-check`` part writes and its limits (``bench.perf.gpu_parts``, ``bench.perf.gpu_train``).

ctx = PartContext("latency", Path("gpu-check/parts/latency.json"), budget_s=140, smoke=False,
                  device=torch.device("cuda"))
if not ctx.out_of_budget("tmanet T=4 at 1024x2048"):   # False + a note once the budget is spent
    ctx.add({"model": "tmanet", "median_ms": 12.3})    # saved at once (a killed part keeps its rows), printed
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "cityscapes_tmanet.yaml"
# smoke mode: a resnet18 with 8/16-channel heads and one RAFT iteration, on 32x32 inputs
SMOKE_MODEL = [
    "model.backbone=resnet18",
    "model.key_channels=8",
    "model.value_channels=16",
    "model.channels=16",
    "model.aux_channels=16",
    "model.flow.iters=1",
    "model.window_size=3",
]  # 3: a 4x4 smoke feature map
# models that read a feature pyramid (s4..s32) run on MiT: MiT-B1 (the field's VSPW and Cityscapes rows, CFFM's
# three references), in smoke mode the tiny MiT with a 16-channel decoder and one CFFM block
PYRAMID_MODELS: dict[str, list[str]] = {
    "segformer": ["model.backbone=mit_b1"],
    "cffm": ["model.backbone=mit_b1", "model.memory_length=3"],
}
SMOKE_PYRAMID = ["model.backbone=mit_tiny", "model.decoder_channels=16", "model.cffm_depth=1"]


def model_overrides(name: str, smoke: bool) -> list[str]:
    """The overrides that make model ``name`` buildable here: its pyramid backbone where it needs one."""
    if name not in PYRAMID_MODELS:
        return []
    return PYRAMID_MODELS[name] + (SMOKE_PYRAMID if smoke else [])


@dataclass
class PartContext:
    """What a part writes (``rows``, ``notes``) and its limits; ``flush`` saves them to ``path`` (JSON)."""

    name: str
    path: Path
    budget_s: float
    smoke: bool
    device: torch.device
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    status: str = "running"

    def budget_left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.started)

    def out_of_budget(self, what: str) -> bool:
        """True (with a note) when the budget is spent: ``what`` and everything after it is skipped."""
        if self.budget_left() > 0:
            return False
        self.notes.append(f"skipped from {what} on: the part's budget of {self.budget_s:.0f} s ran out")
        self.status = "partial"
        return True

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.flush()
        print(json.dumps(row), flush=True)  # rows as they finish

    def flush(self) -> None:
        payload = {
            "name": self.name,
            "status": self.status,
            "rows": self.rows,
            "notes": self.notes,
            "seconds": round(time.perf_counter() - self.started, 2),
            "smoke": self.smoke,
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1, default=str))
        tmp.replace(self.path)

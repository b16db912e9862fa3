"""The tiny settings shared by the end-to-end tests: a resnet18 backbone from random init with 8/16-channel
heads on 32x32 synthetic clips, on the CPU, so a training iteration takes milliseconds.

    from tiny import TINY, as_overrides
    cfg = load_config(None, as_overrides({**TINY, "train.iters": 3}))
"""

from __future__ import annotations

import json
from typing import Any

TINY: dict[str, Any] = {
    "model.backbone": "resnet18", "model.pretrained": False, "model.key_channels": 8, "model.value_channels": 16,
    "model.channels": 16, "model.aux_channels": 16, "model.window_size": 3, "data.crop_size": [32, 32],
    "data.synthetic.size": [32, 32],
    "data.synthetic.train_clips": 8, "data.synthetic.val_clips": 4, "device": "cpu",
}  # fmt: skip


def as_overrides(settings: dict[str, Any]) -> list[str]:
    """``{"a.b": 1}`` -> ``["a.b=1"]`` (values written as JSON, which the config reads as YAML)."""
    return [f"{key}={json.dumps(value)}" for key, value in settings.items()]

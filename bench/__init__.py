"""bench: a reproducibility benchmark and ablation suite for video semantic segmentation.

Run ``bench --help`` (or ``python -m bench --help``) for the commands. The main Python API is importable from
here; each name loads its module on first use (PEP 562), so ``import bench`` stays fast and sets no matplotlib
backend::

    import bench
    cfg = bench.load_config("configs/synthetic_tmanet.yaml", ["train.iters=20"])
    result = bench.execute(cfg, hooks=[my_hook])         # train + evaluate in cfg's run dir -> result.record
    model, run_cfg, meta = bench.load_run_model("results/runs/<id>")
    dataset, plan, skipped = bench.build_eval_dataset(run_cfg.data, run_cfg.eval, model)
    metrics = bench.evaluate_model(model, dataset, run_cfg.eval, with_tc=plan)
    videos = bench.build_videos(run_cfg.data, "val")                      # whole videos (VSPW, synthetic)
    metrics = bench.evaluate_videos(model, videos, run_cfg.eval, run_cfg.data)   # mIoU and mVC, memory streamed
    scores = bench.score_predictions("preds/", videos, convention="nonzero_union")   # any codebase's PNGs
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that owns it
_API: dict[str, str] = {
    "load_config": "bench.config",
    "build_model": "bench.run.model",
    "load_run_model": "bench.run.model",
    "execute": "bench.run.execute",
    "build_report": "bench.report.build",
    "register_model": "bench.models.registry",
    "evaluate_model": "bench.evaluation.evaluate",
    "build_eval_dataset": "bench.evaluation.evaluate",
    "build_videos": "bench.data.build",
    "evaluate_videos": "bench.evaluation.videos",
    "score_predictions": "bench.evaluation.scoring",
    "TrainHook": "bench.engine.hooks",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

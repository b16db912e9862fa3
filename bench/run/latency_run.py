"""``bench latency`` on a run: measure the config's model (the run's trained weights when it has a checkpoint) and
store the result with the run.

    bench latency configs/synthetic_tmanet.yaml                         # both modes, result -> record.json
    bench latency configs/synthetic_tmanet.yaml --frames 50 --threads 4 --modes streaming --no-record
    bench latency configs/synthetic_tmanet.yaml --repeats 9 --overwrite # replace the record's latency
    bench latency CONFIG --size 480 853 --no-record                      # the field's FPS protocol (docs/fps.md)

    from bench.run.latency_run import latency_command, measure_missing_latency
    result = latency_command(cfg, frames=30)          # <run dir>/latency.json, merged into record.json
    measure_missing_latency(cfg)                      # a finished run without a latency (sweeps, make demo)

The measurement itself (protocol, statistics) is ``bench.evaluation.latency``; the weights come from
``bench.run.model.load_run_model``; the files are written through ``bench.run.rundir.RunDir``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import torch

from bench.config import Config
from bench.distributed import resolve_device
from bench.evaluation.fps import measure_fps
from bench.evaluation.latency import measure_model_latency
from bench.models.streaming import STREAM_MODES
from bench.run.model import build_model, load_run_model
from bench.run.rundir import RunDir, RunDirError


def latency_command(
    cfg: Config,
    frames: int = 30,
    warmup: int = 5,
    threads: int = 2,
    modes: Sequence[str] = STREAM_MODES,
    write_record: bool = True,
    repeats: int | None = None,
    overwrite: bool = False,
    size: Sequence[int] | None = None,
) -> dict[str, Any]:
    """``bench latency``: measure the config's model on its validation clips, or with ``size`` (H, W) under the
    field's FPS protocol (``bench.evaluation.fps``: random frames of that size, fp32).

    Writes ``<run dir>/latency.json`` and, with ``write_record`` and an existing ``record.json``, merges the
    result into it under ``"latency"`` (atomic writes). A latency already in the record is replaced only with
    ``overwrite`` (then a line on stderr says so); otherwise ``RunDirError`` after latency.json is written.
    Returns the result dict. The weights are the run's trained ones (``bench.run.model.load_run_model``) when it
    has a checkpoint, else a random init of ``cfg``'s model (latency does not depend on the weights).
    """
    folder = RunDir.of(cfg)
    if folder.has_checkpoint():
        model, _, meta = load_run_model(folder.path, cfg)
        weights = str(meta["checkpoint"])
    else:
        model, weights = build_model(cfg), "random init (no checkpoint)"
    device = resolve_device(cfg.device)
    if size:
        repeats = cfg.launch.latency_repeats if repeats is None else repeats
        result = measure_fps(model, cfg.model.name, tuple(size), frames, warmup, repeats, device, threads, modes)
        result["weights"] = weights
    else:
        result = measure_model_latency(
            model, cfg.model.name, cfg.data, cfg.launch, frames, warmup, threads, modes, device, weights, repeats
        )
    saved = folder.write_latency(result)
    record = folder.read_record().record
    if write_record and record is not None:
        replacing = "latency" in record
        if replacing and not overwrite:
            raise RunDirError(
                f"{folder.record_file} already has a latency section; not replaced "
                f"(the new measurement is in {saved}); pass --overwrite to replace it"
            )
        folder.merge_into_record("latency", result, overwrite=overwrite)
        if replacing:
            print(
                f"bench: replaced the latency section of {folder.record_file} (--overwrite)",
                file=sys.stderr,
                flush=True,
            )
    return result


def measure_missing_latency(cfg: Config, frames: int = 30, threads: int | None = None) -> dict[str, Any] | None:
    """Measure a finished run that has no latency yet (a sweep step after training, and ``make demo``).

    Returns the new result, or None when the run has no record yet or already has its latency.
    """
    read = RunDir.of(cfg).read_record()
    if not read.done or "latency" in (read.record or {}):
        return None
    return latency_command(cfg, frames=frames, threads=threads or torch.get_num_threads())

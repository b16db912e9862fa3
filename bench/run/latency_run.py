"""``bench latency`` on a run: measure the config's model (the run's trained weights when it has a checkpoint) and
store the result with the run.

    bench latency configs/synthetic_tmanet.yaml                         # both modes, result -> record.json
    bench latency configs/synthetic_tmanet.yaml --frames 50 --threads 4 --modes streaming --no-record
    bench latency configs/synthetic_tmanet.yaml --repeats 9 --overwrite # replace the record's latency
    bench latency CONFIG --size 480 853 --no-record                      # the field's FPS protocol (docs/fps.md)

    from bench.run.latency_run import latency_command, measure_missing_latency
    result = latency_command(cfg, frames=30)          # <run dir>/latency.json, merged into record.json
    measure_missing_latency(cfg)                      # a finished run without a latency (sweeps, make demo)

**Check first, print always.** Whether the result can go into the record is decided before measuring: a record
that has a latency already keeps it unless ``--overwrite`` (said on stderr at the start, and again at the end),
and the measurement is still made, written to ``latency.json`` and printed. Nothing a latency does not depend on
is required: without a checkpoint the model is a random init built without pretrained weights (no ImageNet or RAFT
file needed), and without the dataset the frames are random frames of the evaluation size (``input`` in the
result says which; ``bench.evaluation.latency_input``). With ``size`` (H, W) the field's FPS protocol
(``bench.evaluation.fps``: random frames of that size, fp32) needs no dataset either.

The measurement itself (protocol, statistics) is ``bench.evaluation.latency``; the weights come from
``bench.run.model.load_run_model``; the files are written through ``bench.run.rundir.RunDir``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import torch

from bench.config import Config
from bench.distributed import resolve_device
from bench.evaluation.fps import measure_fps
from bench.evaluation.latency import measure_model_latency
from bench.models.streaming import STREAM_MODES
from bench.run.model import build_model, load_run_model, without_initial_weights
from bench.run.rundir import RunDir

log = logging.getLogger("bench.latency")


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _record_plan(folder: RunDir, write_record: bool, overwrite: bool) -> tuple[bool, str]:
    """(merge the result into record.json?, why not / what happens), decided before anything is measured."""
    record = folder.read_record().record
    if not write_record:
        return False, "not added to record.json (--no-record)"
    if record is None:
        return False, f"not added to a record: {folder.record_file} does not exist (the run has not finished)"
    if "latency" in record and not overwrite:
        return False, (
            f"{folder.record_file} already has a latency section and keeps it (pass --overwrite to replace it); "
            f"this measurement goes to {folder.latency_file} and is printed"
        )
    return True, ""


def latency_command(
    cfg: Config,
    frames: int = 30,
    warmup: int = 5,
    threads: int = 2,
    modes: Sequence[str] = STREAM_MODES,
    write_record: bool = True,
    repeats: int | None = None,
    overwrite: bool = False,
    missing_data: str = "random",
    size: Sequence[int] | None = None,
) -> dict[str, Any]:
    """``bench latency``: measure the config's model (module docstring: check first, print always).

    Writes ``<run dir>/latency.json`` and, with ``write_record`` and an existing ``record.json``, merges the
    result into it under ``"latency"`` (atomic writes); a latency already in the record is replaced only with
    ``overwrite``. Returns the result dict. The weights are the run's trained ones
    (``bench.run.model.load_run_model``) when it has a checkpoint, else a random init of ``cfg``'s model.
    ``missing_data``: "random" frames when the dataset cannot be read, or "error"; ``size`` (H, W): the field's
    FPS protocol instead (``bench.evaluation.fps``).
    """
    folder = RunDir.of(cfg)
    merge, why_not = _record_plan(folder, write_record, overwrite)
    if why_not and write_record:
        _say(why_not)
    if folder.has_checkpoint():
        model, _, meta = load_run_model(folder.path, cfg)
        weights = str(meta["checkpoint"])
    else:
        model, weights = build_model(without_initial_weights(cfg)), "random init (no checkpoint)"
    log.info(
        "measuring %s (%s): modes %s, %d timed frames x %s passes each, %d thread(s)",
        cfg.model.name, weights, ", ".join(modes), frames, repeats or cfg.launch.latency_repeats, threads,
    )  # fmt: skip
    device = resolve_device(cfg.device)
    if size:
        repeats = cfg.launch.latency_repeats if repeats is None else repeats
        result = measure_fps(model, cfg.model.name, tuple(size), frames, warmup, repeats, device, threads, modes)
        result["weights"] = weights
    else:
        result = measure_model_latency(
            model, cfg.model.name, cfg.data, cfg.launch, frames=frames, warmup=warmup, threads=threads,
            modes=modes, device=device, weights=weights, repeats=repeats, missing_data=missing_data,
        )  # fmt: skip
    saved = folder.write_latency(result)
    if merge:
        replacing = "latency" in (folder.read_record().record or {})
        folder.merge_into_record("latency", result, overwrite=overwrite)
        if replacing:
            _say(f"replaced the latency section of {folder.record_file} (--overwrite)")
    elif write_record:
        _say(f"measured; written to {saved} only ({why_not.split(';')[0]})")
    return result


def measure_missing_latency(cfg: Config, frames: int = 30, threads: int | None = None) -> dict[str, Any] | None:
    """Measure a finished run that has no latency yet (a sweep step after training, and ``make demo``).

    Returns the new result, or None when the run has no record yet or already has its latency.
    """
    read = RunDir.of(cfg).read_record()
    if not read.done or "latency" in (read.record or {}):
        return None
    return latency_command(cfg, frames=frames, threads=threads or torch.get_num_threads(), missing_data="error")

"""``bench latency`` on a run: measure the config's model (the run's trained weights when it has a checkpoint) and
store the result with the run.

    bench latency configs/synthetic_tmanet.yaml                         # both modes, result -> record.json
    bench latency configs/synthetic_tmanet.yaml --frames 50 --threads 4 --modes streaming --no-record
    bench latency configs/synthetic_tmanet.yaml --repeats 9 --overwrite # replace the record's latency
    bench latency CONFIG --size 480 853 --no-record                      # the field's FPS protocol (docs/fps.md)

    from bench.run.latency_run import latency_command, measure_missing_latency, share_latency
    result = latency_command(cfg, frames=30)          # <run dir>/latency.json, merged into record.json
    measure_missing_latency(cfg)                      # a finished run without a latency
    share_latency([run.config for run in grid.runs])  # once per architecture, into every finished record

    python -m bench.run.latency_run RUN_DIR [RUN_DIR ...]  # share_latency on those runs (the local launcher)

**Once per architecture** (``share_latency``, a local sweep with ``launch.latency`` and ``make demo``): latency
depends on the network and the frames it sees, not on the seed or the training, so the finished runs are
grouped by ``latency_key`` (model, its factory's arguments, plugins, frame geometry, device, threads) and each
group is measured once, after every training run of the sweep has ended, in the launcher's otherwise idle
process (a measurement beside a training run is slowed at random: unstable medians). The first finished run of
the group is measured with its trained weights (its ``latency.json``); every record of the group gets that
result under ``"latency"`` with ``"architecture"`` (the key) and ``"measured_run"`` (the run whose
``latency.json`` holds it). A group in which a record already has a latency passes that one on.

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

import hashlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch

from bench.config import Config
from bench.distributed import resolve_device
from bench.evaluation.fps import measure_fps
from bench.evaluation.latency import measure_model_latency
from bench.models.streaming import STREAM_MODES
from bench.progress import configure_logging
from bench.run.identity import RunIdentity
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
    threads: int | None = None,
    modes: Sequence[str] = STREAM_MODES,
    write_record: bool = True,
    repeats: int | None = None,
    overwrite: bool = False,
    size: Sequence[int] | None = None,
    missing_data: str = "random",
) -> dict[str, Any]:
    """``bench latency``: measure the config's model on its validation clips, or with ``size`` (H, W) under the
    field's FPS protocol (``bench.evaluation.fps``: random frames of that size, fp32); module docstring: check
    first, print always.

    Writes ``<run dir>/latency.json`` and, with ``write_record`` and an existing ``record.json``, merges the
    result into it under ``"latency"`` (atomic writes); a latency already in the record is replaced only with
    ``overwrite``. Returns the result dict. The weights are the run's trained ones
    (``bench.run.model.load_run_model``) when it has a checkpoint, else a random init of ``cfg``'s model.
    ``threads``: CPU threads, default the config's ``threads``; ``missing_data``: "random" frames when the
    dataset cannot be read, or "error".
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
    device = resolve_device(cfg.device)
    threads = cfg.threads if threads is None else threads
    log.info(
        "measuring %s (%s): modes %s, %d timed frames x %s passes each, %d thread(s)",
        cfg.model.name, weights, ", ".join(modes), frames, repeats or cfg.launch.latency_repeats, threads,
    )  # fmt: skip
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


def latency_key(ident: RunIdentity) -> str:
    """What a latency depends on, hashed: the model and its factory's arguments, the plugins, the geometry of
    the validation frames, the device and the threads (not the seed, the training or the data's content)."""
    cfg = ident.config
    frames = {
        "dataset": cfg.data.dataset,
        "base_size": list(cfg.data.base_size),
        "synthetic_size": list(cfg.data.synthetic.size) if cfg.data.dataset == "synthetic" else None,
        "camvid_protocol": cfg.data.camvid_protocol if cfg.data.dataset == "camvid" else None,
    }
    described = {
        "model": cfg.model.name,
        "arguments": ident.model_args,
        "plugins": list(ident.plugins),  # a built-in model depends on none (bench.run.arguments.model_plugins)
        "frames": frames,
        "device": cfg.device,
        "threads": cfg.threads,
    }
    text = json.dumps(described, sort_keys=True, default=str)
    return f"{cfg.model.name}-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def _architectures(configs: Sequence[Config]) -> dict[str, list[tuple[Config, RunDir, dict[str, Any]]]]:
    """The finished runs of ``configs`` (each run once, in order) grouped by ``latency_key``."""
    groups: dict[str, list[tuple[Config, RunDir, dict[str, Any]]]] = {}
    seen: set[str] = set()
    for cfg in configs:
        ident = RunIdentity.of(cfg)
        folder = RunDir.of(cfg, ident.run_id)
        read = folder.read_record()
        if ident.run_id in seen or not read.done or read.record is None:
            continue
        seen.add(ident.run_id)
        groups.setdefault(latency_key(ident), []).append((cfg, folder, read.record))
    return groups


def share_latency(
    configs: Sequence[Config], frames: int | None = None, say: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
    """Measure each architecture among the finished runs of ``configs`` once and give every finished record of
    it that result (module docstring); returns {architecture key: result} for the groups that got one. Call it
    when no training runs beside it. ``frames``: timed frames per mode (default ``launch.latency_frames``)."""
    shared = {}
    for key, members in _architectures(configs).items():
        missing = [member for member in members if "latency" not in member[2]]
        if not missing:
            continue
        known = next((member for member in members if "latency" in member[2]), None)
        if known is not None:
            source, result = known[1].path.name, known[2]["latency"]
        else:
            cfg, folder, _ = missing[0]
            frames_here = cfg.launch.latency_frames if frames is None else frames
            result = latency_command(cfg, frames=frames_here, write_record=False)
            source = folder.path.name
            medians = ", ".join(f"{mode} {m['median_ms']:.1f} ms" for mode, m in result.get("modes", {}).items())
            say(f"latency of {key} (on {source}, shared by {len(members)} runs): {medians}")
        entry = {**result, "architecture": key, "measured_run": result.get("measured_run", source)}
        for _, folder, _ in missing:
            folder.merge_into_record("latency", entry)
        shared[key] = entry
    return shared


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.run.latency_run RUN_DIR ...``: ``share_latency`` on the runs stored in those folders
    (their ``config.yaml``); a folder without one is skipped (the run never started)."""
    configure_logging()
    folders = [RunDir(path) for path in (sys.argv[1:] if argv is None else argv)]
    if not folders:
        print("usage: python -m bench.run.latency_run RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    share_latency([folder.read_config() for folder in folders if folder.has_config()])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

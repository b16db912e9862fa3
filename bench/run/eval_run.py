"""``bench eval``: evaluate a stored run's checkpoint with the run's own config, under the run's claim.

    bench eval results/runs/<id>                                             # the config comes from the run
    bench eval checkpoint=results/runs/<id>/checkpoint.pt eval.mode=slide    # overrides: eval.*, data.val_split/root
    bench eval results/runs/<id> --save-preds preds/                         # + prediction PNGs
    bench eval results/runs/<id> eval.whole_videos=true --record            # mVC etc. into record.json ("videos")

    from bench.run.eval_run import evaluate_command, evaluate_checkpoint
    metrics = evaluate_checkpoint(["checkpoint=results/runs/<id>", "eval.mode=slide"])   # + eval.json there

The model and its config come from the run (``bench.run.model.load_run_model``); inference and metrics are
``bench.evaluation.evaluate.evaluate_model``, or ``bench.evaluation.videos.evaluate_videos`` with
``eval.whole_videos=true`` (then ``--save-preds`` writes the submission layout ``<dir>/result_submission/<video>/
<frame>.png``, and ``--record`` adds the metrics to a clip-evaluated run's record as its ``videos`` section, as
``make demo`` does for mVC: ``add_missing_video_metrics``); ``eval.json`` is written through
``bench.run.rundir.RunDir``. A run another process is training is never evaluated (its claim is taken first).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.atomic import read_only
from bench.config import Config, ConfigError, apply_overrides, from_dict, load_config, read_yaml_with_base, to_dict
from bench.data.build import build_videos
from bench.data.catalog import dataset_info
from bench.distributed import LoaderSettings, init_distributed, set_threads, shutdown_distributed
from bench.engine.checkpoint import CheckpointError
from bench.evaluation.evaluate import build_eval_dataset, evaluate_model
from bench.evaluation.predictions import PredictionWriter
from bench.evaluation.videos import evaluate_videos
from bench.run.execute import RunBusyError
from bench.run.identity import differences
from bench.run.liveness import current_job_id
from bench.run.model import load_run_model
from bench.run.rundir import VIDEOS_SECTION, RunDir, RunDirError

log = logging.getLogger("bench.run.eval_run")

# what `bench eval` may change in a run's config: where and how it is evaluated, never what was trained
EVAL_OVERRIDABLE: tuple[str, ...] = (
    "eval.",
    "data.val_split:",
    "data.root:",
    "data.missing_files:",
    "data.synthetic.val_video_length:",  # the validation videos' length: only whole-video evaluation reads it
)


def eval_config(run_cfg: Config, overrides: Sequence[str], config_file: str | Path | None = None) -> Config:
    """The config ``bench eval`` evaluates with: the run's config (or ``config_file``) plus ``overrides``.

    Only ``eval.*``, ``data.val_split`` and ``data.root`` may differ from the run's config (and settings that do
    not change results: device, workers, paths); anything else is a ``ConfigError`` listing the differences.
    """
    base = read_yaml_with_base(config_file) if config_file else to_dict(run_cfg)
    cfg = from_dict(Config, apply_overrides(base, overrides))
    changed = [line for line in differences(to_dict(run_cfg), cfg) if not line.startswith(EVAL_OVERRIDABLE)]
    if changed:
        raise ConfigError(
            f"bench eval takes the config from the run and may change only eval.*, data.val_split and "
            f"data.root; drop these overrides: {'; '.join(changed)}"
        )
    return cfg


def evaluate_checkpoint(
    overrides: Sequence[str] = (),
    config_file: str | Path | None = None,
    save_preds: str | Path | None = None,
    record: bool = False,
) -> dict[str, Any]:
    """``bench eval [CONFIG] checkpoint=PATH [overrides]``: evaluate a run's checkpoint (a file, or a run folder)
    on ``data.val_split``; write ``eval.json`` next to it; return the metrics. ``save_preds``: a folder for
    prediction PNGs (``bench.evaluation.predictions``; whole videos: the submission layout). ``record``: add
    whole-video metrics to the run's record as its ``videos`` section (replacing an older one).

    The model and its config come from the run (``bench.run.model.load_run_model``); see ``eval_config``.
    """
    requested = load_config(config_file, overrides)  # checks the override keys and names the checkpoint
    if not requested.checkpoint:
        raise ConfigError(
            "bench eval needs the checkpoint to evaluate: add checkpoint=PATH "
            "(e.g. checkpoint=results/runs/<run id>/checkpoint.pt)"
        )
    path = RunDir.checkpoint_of(requested.checkpoint)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train first (bench train CONFIG) or fix the path")
    model, run_cfg, meta = load_run_model(path)
    cfg = eval_config(run_cfg, overrides, config_file)
    if record and not cfg.eval.whole_videos:
        raise ConfigError("--record adds whole-video metrics to a run's record: add eval.whole_videos=true")
    env = init_distributed(cfg.device)
    set_threads(cfg.threads)
    try:
        metrics = _evaluate(model.to(env.device), cfg, env, save_preds)
        if env.is_main:
            folder = RunDir(path.parent)
            _write_eval(
                folder,
                {
                    "checkpoint": str(path),
                    "iteration": meta.get("iteration"),
                    "split": cfg.data.val_split,
                    "dataset": cfg.data.dataset,
                    "eval": to_dict(cfg.eval),
                    "metrics": metrics,
                },
            )
            if record:
                folder.merge_into_record(VIDEOS_SECTION, metrics, overwrite=True)
        return metrics
    finally:
        shutdown_distributed(env)


def _evaluate(model: Any, cfg: Config, env: Any, save_preds: str | Path | None) -> dict[str, Any]:
    """The metrics of ``model`` on ``cfg``'s validation split: its clips, or its whole videos."""
    if cfg.eval.whole_videos:
        return evaluate_videos(
            model,
            build_videos(cfg.data, cfg.data.val_split),
            cfg.eval,
            cfg.data,
            env,
            out_dir=save_preds,
            palette=dataset_info(cfg.data).palette,
        )
    dataset, plan, reason = build_eval_dataset(cfg.data, cfg.eval, model)
    if reason:
        log.warning("temporal consistency skipped: %s", reason)
    writer = _prediction_writer(cfg, save_preds)
    metrics = evaluate_model(
        model,
        dataset,
        cfg.eval,
        env,
        with_tc=plan,
        tc_skipped=reason,
        num_workers=LoaderSettings.of(cfg.data),
        on_batch=None if writer is None else writer.write,
    )
    if writer is not None:
        log.info("wrote %d prediction images to %s", writer.written, writer.out_dir)
    return metrics


def _write_eval(folder: RunDir, payload: dict[str, Any]) -> None:
    """``eval.json`` into the run folder; on read-only storage a warning instead (the metrics are printed)."""
    try:
        folder.write_eval(payload)
    except OSError as err:
        if not read_only(err):
            raise
        log.warning("eval.json not written: %s is read-only (%s); the metrics are printed", folder, err.strerror)


def _prediction_writer(cfg: Config, save_preds: str | Path | None) -> PredictionWriter | None:
    """A ``PredictionWriter`` into ``save_preds`` with the dataset's palette, or None."""
    if save_preds is None:
        return None
    return PredictionWriter(save_preds, dataset_info(cfg.data))


def evaluate_command(
    overrides: Sequence[str] = (),
    config_file: str | Path | None = None,
    *,
    run_dir: str | Path | None = None,
    save_preds: str | Path | None = None,
    record: bool = False,
) -> dict[str, Any]:
    """``bench eval``: evaluate the checkpoint of ``run_dir`` (or the one named by ``checkpoint=``) under its run's
    claim (never a run another process trains); see ``bench.evaluation.evaluate.evaluate_checkpoint``. ``save_preds``:
    a folder for prediction PNGs.

    The claim is taken only when the checkpoint lies in a run directory (one holding ``config.yaml``).
    """
    overrides = list(overrides)
    if run_dir is not None:
        if not Path(run_dir).is_dir():
            raise RunDirError(
                f"{run_dir} is not a run folder; give bench eval a folder under results/runs "
                f"(one holding checkpoint.pt) or a config file with checkpoint=PATH"
            )
        if any(o.startswith("checkpoint=") for o in overrides):
            raise ConfigError(f"give either the run folder {run_dir} or checkpoint=PATH, not both")
        overrides.insert(0, f"checkpoint={run_dir}")
    requested = load_config(config_file, overrides)
    folder = RunDir(RunDir.checkpoint_of(requested.checkpoint).parent) if requested.checkpoint else None
    if folder is None or not folder.has_config():
        return evaluate_checkpoint(overrides, config_file, save_preds, record)
    job_id = current_job_id()
    try:
        got = folder.acquire_claim(job_id)
    except OSError as err:
        if not read_only(err):
            raise
        # a read-only run folder: nobody can be training there (a trainer writes its checkpoint into it)
        log.warning("%s is read-only: evaluating without its claim; eval.json is not written", folder)
        return evaluate_checkpoint(overrides, config_file, save_preds, record)
    if not got.ok:
        raise RunBusyError(f"{got.busy_message(folder)}; evaluate when its training has finished")
    try:
        return evaluate_checkpoint(overrides, config_file, save_preds, record)
    finally:
        folder.release_claim(job_id)


def add_missing_video_metrics(cfg: Config, overrides: Sequence[str] = ()) -> dict[str, Any] | None:
    """Whole-video metrics for a finished run of ``cfg`` that has none yet (``make demo``'s mVC): ``bench eval
    RUN eval.whole_videos=true [overrides] --record``; None when the run is not finished or already has them."""
    folder = RunDir.of(cfg)
    read = folder.read_record()
    if read.record is None or not folder.has_checkpoint():
        return None
    if VIDEOS_SECTION in read.record or (read.record.get("metrics") or {}).get("whole_videos"):
        return None
    return evaluate_command(["eval.whole_videos=true", *overrides], run_dir=folder.path, record=True)

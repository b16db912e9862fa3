"""Experiment trackers, offline: MLflow (a local file store) and Weights & Biases (offline mode), as training hooks.

    bench train configs/synthetic_tmanet.yaml train.mlflow=true     # run_dir/mlflow/ (pip install -e ".[mlflow]")
    mlflow ui --backend-store-uri results/runs/<id>/mlflow          # look at it (MLFLOW_ALLOW_FILE_STORE=true)
    bench train configs/synthetic_tmanet.yaml train.wandb=true      # run_dir/wandb/ (pip install -e ".[wandb]")
    wandb sync results/runs/<id>/wandb/offline-run-*                # upload it later, when online

Both go through the same hook as TensorBoard (``bench.engine.hooks.ScalarLogHook``): every ``log.jsonl`` line
becomes ``train/<key>`` / ``val/<key>`` scalars at its iteration; the resolved config (dotted keys) is stored as
the run's parameters (MLflow) or config (W&B), the run id as its name. Nothing is sent over the network:
``train.mlflow_uri`` empty = ``file://run_dir/mlflow`` (a URI of your own server is used as given), W&B runs
with ``mode="offline"``. A resumed run continues its MLflow run (found by the tag ``bench.run_id``) and its W&B
run (``id`` = the run id, ``resume="allow"``). Only rank 0 writes; a missing package is a one-line
``ConfigError`` on every rank before training starts.
"""

from __future__ import annotations

import importlib
import os
import re
import time
from typing import Any

from bench.config import Config, ConfigError, dotted_items, to_dict
from bench.engine.hooks import ScalarLogHook, TrainHook
from bench.engine.job import TrainPaths


def flat_config(cfg: Config) -> dict[str, Any]:
    """``{"train.lr": 0.01, "model.flow.source": "raft", ...}``: the resolved config with dotted keys."""
    return dotted_items(to_dict(cfg), keep=("options", "sbatch_extra"))


def _package(module: str, key: str, extra: str) -> Any:
    """``importlib.import_module(module)``; a missing package names the key and the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(
            f"{key}=true needs the {extra} package ({err}); install it with "
            f'pip install -e ".[{extra}]" or set {key}=false'
        ) from None


class MlflowWriter:
    """``add_scalar`` / ``flush`` / ``close`` on one MLflow run: the scalars of a log line go in one batch."""

    def __init__(self, client: Any, run_id: str, metric_class: Any) -> None:
        self.client, self.run_id, self.metric_class = client, run_id, metric_class
        self.pending: list[Any] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        key = re.sub(r"[^\w\-. /]", "_", tag)  # the characters MLflow accepts in a metric name
        self.pending.append(self.metric_class(key=key, value=value, timestamp=int(time.time() * 1000), step=step))

    def flush(self) -> None:
        if self.pending:
            self.client.log_batch(self.run_id, metrics=self.pending)
            self.pending = []

    def close(self) -> None:
        self.flush()
        self.client.set_terminated(self.run_id)


def _mlflow_run(mlflow: Any, cfg: Config, paths: TrainPaths) -> MlflowWriter:
    """The MLflow run of the run (created with the config as parameters, or the one a resume left)."""
    uri = cfg.train.mlflow_uri or paths.mlflow.resolve().as_uri()
    if uri.startswith("file:"):
        # MLflow 3 refuses its file store unless asked for it; it is the offline store we want
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(cfg.train.tracker_project)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(cfg.train.tracker_project)
    name = paths.folder.name
    found = client.search_runs([experiment_id], filter_string=f"tags.`bench.run_id` = '{name}'", max_results=1)
    if found:
        return MlflowWriter(client, found[0].info.run_id, mlflow.entities.Metric)
    run = client.create_run(experiment_id, run_name=cfg.name or name, tags={"bench.run_id": name})
    params = [mlflow.entities.Param(key, str(value)) for key, value in flat_config(cfg).items()]
    for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
        client.log_batch(run.info.run_id, params=params[start : start + 100])
    return MlflowWriter(client, run.info.run_id, mlflow.entities.Metric)


class WandbWriter:
    """``add_scalar`` / ``flush`` / ``close`` on a W&B run: the scalars of one step go in one ``log`` call."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.pending: dict[int, dict[str, float]] = {}

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.pending.setdefault(step, {})[tag] = value

    def flush(self) -> None:
        for step in sorted(self.pending):
            self.run.log(self.pending[step], step=step)
        self.pending = {}

    def close(self) -> None:
        self.flush()
        self.run.finish()


def _wandb_run(wandb: Any, cfg: Config, paths: TrainPaths) -> WandbWriter:
    folder = paths.wandb
    folder.mkdir(parents=True, exist_ok=True)
    name = paths.folder.name
    settings = wandb.Settings(console="off", silent=True, x_disable_stats=True)  # leave the run's log alone
    run = wandb.init(
        mode="offline",
        dir=str(folder),
        project=cfg.train.tracker_project,
        name=cfg.name or name,
        id=re.sub(r"[^\w-]", "_", name),
        resume="allow",
        config=flat_config(cfg),
        settings=settings,
    )
    return WandbWriter(run)


def tracker_hooks(cfg: Config, paths: TrainPaths, is_main: bool) -> list[TrainHook]:
    """The MLflow / W&B hooks ``cfg.train`` asks for (rank 0 only); every rank checks the packages first."""
    mlflow = _package("mlflow", "train.mlflow", "mlflow") if cfg.train.mlflow else None
    wandb = _package("wandb", "train.wandb", "wandb") if cfg.train.wandb else None
    if not is_main:
        return []
    hooks: list[TrainHook] = []
    if mlflow is not None:
        hooks.append(ScalarLogHook(_mlflow_run(mlflow, cfg, paths)))
    if wandb is not None:
        hooks.append(ScalarLogHook(_wandb_run(wandb, cfg, paths)))
    return hooks

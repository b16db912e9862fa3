"""One way from a config to a model, and from a run folder to its trained model.

    from bench.models.build import build_model, load_run_model
    model = build_model(cfg)                                  # plugins imported, classes from the data catalog
    model, cfg, meta = load_run_model("results/runs/<id>")    # the run's config, its checkpoint's weights
    meta["iteration"], meta["classes"], meta["checkpoint"]

``build_model`` never opens a dataset: the class count comes from ``bench.data.catalog.dataset_info``.
``load_run_model`` reads the run's config from its checkpoint (``"config"``), else from ``config.yaml``, else
from ``record.json``, and checks that the class names stored in the checkpoint match the catalog's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

# checkpoint entries that are training state, not a description of the weights
TRAINING_STATE_KEYS = frozenset({"model", "optimizer", "scaler", "rng", "data"})


def build_model(cfg: Any) -> nn.Module:
    """The model of ``cfg`` (a ``Config``): its plugins imported, ``num_classes`` from the dataset catalog."""
    from bench.data.catalog import dataset_info
    from bench.models import registry

    registry.load_plugins(cfg.plugins)
    return registry.build_model(cfg.model, dataset_info(cfg.data).num_classes)


def checkpoint_path(run: str | Path) -> Path:
    """``run`` itself when it is a file (or names one: ``*.pt``), else ``run/checkpoint.pt``."""
    from bench.run.rundir import CHECKPOINT

    run = Path(run)
    return run if run.is_file() or run.suffix == ".pt" else run / CHECKPOINT


def stored_config(checkpoint: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The run's resolved config dict: the checkpoint's, else ``config.yaml``, else ``record.json``'s."""
    import yaml

    from bench.run import rundir
    from bench.run.checkpoint import CheckpointError

    if isinstance(checkpoint.get("config"), dict):
        return checkpoint["config"]
    if (run_dir / rundir.CONFIG).is_file():
        return yaml.safe_load((run_dir / rundir.CONFIG).read_text())
    record = rundir.read_record(run_dir).record
    if record is not None and isinstance(record.get("config"), dict):
        return record["config"]
    raise CheckpointError(f"no config for the checkpoint in {run_dir}: it holds none and there is no config.yaml or "
                          f"record.json next to it; evaluate it with the config it was trained with")


def load_run_model(run: str | Path) -> tuple[nn.Module, Any, dict[str, Any]]:
    """(model with the trained weights, the run's ``Config``, checkpoint metadata).

    ``run`` is a run folder (its ``checkpoint.pt``) or a checkpoint file. The metadata is the checkpoint less its
    training state (``iteration``, ``elapsed_s``, ``config``, ``config_hash``, ``classes``, ...) plus
    ``"checkpoint"``: the path read.
    """
    from bench.config import Config, from_dict
    from bench.data.catalog import dataset_info
    from bench.run.checkpoint import CheckpointError, load_checkpoint, load_state_into, model_state_from

    path = checkpoint_path(run)
    state = load_checkpoint(path)
    weights = model_state_from(state, path)  # a foreign file (a bare tensor, no "model") fails here, in one line
    cfg = from_dict(Config, stored_config(state, path.parent))
    classes = list(dataset_info(cfg.data).class_names)
    stored_classes = state.get("classes")
    if stored_classes is not None and list(stored_classes) != classes:
        raise CheckpointError(f"{path} was trained on classes {list(stored_classes)} but the catalog now describes "
                              f"{cfg.data.dataset} as {classes}; evaluate it with the protocol it was trained on")
    model = build_model(cfg)
    load_state_into(model, weights, path)
    meta = {key: value for key, value in state.items() if key not in TRAINING_STATE_KEYS}
    meta["checkpoint"] = path
    return model, cfg, meta

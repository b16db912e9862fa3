"""The one way from a config to a model, and from a run folder to its trained model.

    from bench.run.model import build_model, load_run_model, model_builder, model_arguments
    model = build_model(cfg)                                  # plugins imported, classes from the data catalog
    make = model_builder(cfg, ident.model_args)               # the same, built when called (by the engine)
    model_arguments(cfg)                                      # the keyword arguments the factory receives
    model, cfg, meta = load_run_model("results/runs/<id>")    # the run's config, its checkpoint's weights
    build_model(without_initial_weights(cfg))                 # random init: no pretrained weights file needed
    meta["iteration"], meta["classes"], meta["checkpoint"]

``build_model`` never opens a dataset: the class count comes from ``bench.data.catalog.dataset_info``.
The factory's keyword arguments come from ``bench.run.arguments.model_arguments``.
``load_run_model`` reads the run's config from its checkpoint, else ``config.yaml``, else ``record.json``
(``bench.run.rundir.RunDir.stored_config``) and checks that the class names stored in the checkpoint match the
catalog's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from bench.config import Config, from_dict, to_dict
from bench.data.catalog import dataset_info
from bench.engine.checkpoint import CheckpointError, load_checkpoint, load_state_into, model_state_from
from bench.models import registry
from bench.run.arguments import model_arguments
from bench.run.rundir import RunDir

# checkpoint entries that are training state, not a description of the weights
TRAINING_STATE_KEYS = frozenset({"model", "optimizer", "scaler", "rng", "data", "loss_watch"})


def model_builder(cfg: Config, arguments: dict[str, Any] | None = None) -> Callable[[], nn.Module]:
    """A call that builds the model of ``cfg``: a ``functools.partial`` of ``registry.create`` with the class count
    from the dataset catalog and the factory's arguments (``arguments``: the ones already computed for the run,
    ``RunIdentity.model_args``). Plugins are imported here; the model is built (and pretrained weights looked
    for) only when it is called."""
    if not registry.is_builtin(cfg.model.name):  # a built-in model never depends on a plugin
        registry.load_plugins(cfg.plugins)  # always strict here: recorded argument names never build a model
    args = model_arguments(cfg) if arguments is None else arguments
    return functools.partial(registry.create, cfg.model.name, dataset_info(cfg.data).num_classes, args)


def build_model(cfg: Config, arguments: dict[str, Any] | None = None) -> nn.Module:
    """The model of ``cfg``: its plugins imported, ``num_classes`` from the dataset catalog."""
    return model_builder(cfg, arguments)()


def without_initial_weights(cfg: Config) -> Config:
    """A copy of ``cfg`` whose model starts from a random init: no ImageNet backbone, no RAFT weights file (nor
    accel's ``model.options.update_pretrained_path``). For a model whose weights come from a checkpoint next, or
    whose weights do not matter (latency): nothing then asks for a weights file."""
    values = to_dict(cfg)
    values["model"].update(pretrained=False, pretrained_path="")
    values["model"]["flow"]["weights"] = ""
    values["model"]["options"] = {k: v for k, v in values["model"]["options"].items() if k != "update_pretrained_path"}
    return from_dict(Config, values)


def load_run_model(run: str | Path, cfg: Config | None = None) -> tuple[nn.Module, Config, dict[str, Any]]:
    """(model with the trained weights, the run's ``Config``, checkpoint metadata).

    ``run`` is a run folder (its checkpoint) or a checkpoint file. ``cfg``: the config to build the model with
    (``bench latency`` passes the one it measures), default the run's stored config. The metadata is the checkpoint
    less its training state (``iteration``, ``elapsed_s``, ``config``, ``config_hash``, ``classes``, ...) plus
    ``"checkpoint"``: the path read.
    """
    path = RunDir.checkpoint_of(run)
    state = load_checkpoint(path)
    weights = model_state_from(state, path)  # a foreign file (a bare tensor, no "model") fails here, in one line
    cfg = cfg if cfg is not None else from_dict(Config, RunDir(path.parent).stored_config(state))
    classes = list(dataset_info(cfg.data).class_names)
    stored_classes = state.get("classes")
    if stored_classes is not None and list(stored_classes) != classes:
        raise CheckpointError(
            f"{path} was trained on classes {list(stored_classes)} but the catalog now describes "
            f"{cfg.data.dataset} as {classes}; evaluate it with the protocol it was trained on"
        )
    model = build_model(without_initial_weights(cfg))  # every weight comes from the checkpoint (strict)
    load_state_into(model, weights, path)
    meta = {key: value for key, value in state.items() if key not in TRAINING_STATE_KEYS}
    meta["checkpoint"] = path
    return model, cfg, meta

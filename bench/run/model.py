"""The one way from a config to a model, and from a run folder to its trained model.

    from bench.run.model import build_model, load_run_model, model_builder, model_arguments
    model = build_model(cfg)                                  # plugins imported, classes from the data catalog
    make = model_builder(cfg, ident.model_args)               # the same, built when called (by the engine)
    model_arguments(cfg)                                      # the keyword arguments the factory receives
    model, cfg, meta = load_run_model("results/runs/<id>")    # the run's config, its checkpoint's weights
    build_model(without_initial_weights(cfg))                 # random init: no pretrained weights file needed
    meta["iteration"], meta["classes"], meta["checkpoint"]

Weights go into a model here only, through ``bench.weights`` (strict, one-line errors with the likely cause):
``model.checkpoint`` (released weights: official TMANet, mmseg PSPNet / FCN, a ResNet backbone, a bench
checkpoint) is loaded into every model ``model_builder`` builds, for training (initialisation) and for
evaluation (``train.iters=0``: the run evaluates the weights as they are); ``load_run_model`` loads a run's own
``checkpoint.pt`` instead (the released file is then not needed).

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
from bench.engine.checkpoint import CheckpointError
from bench.models import registry
from bench.run.arguments import model_arguments
from bench.run.rundir import RunDir, RunDirError
from bench.weights import Checkpoint, LayoutError, built_with_weights, load_weights, read_checkpoint


def model_builder(
    cfg: Config, arguments: dict[str, Any] | None = None, initial_weights: bool = True
) -> Callable[[], nn.Module]:
    """A call that builds the model of ``cfg``: a ``functools.partial`` of ``registry.create`` with the class count
    from the dataset catalog and the factory's arguments (``arguments``: the ones already computed for the run,
    ``RunIdentity.model_args``), wrapped in ``bench.weights.built_with_weights`` when ``model.checkpoint`` is set
    (and ``initial_weights``). Plugins are imported here; the model is built (and weights read) only when it is
    called."""
    if not registry.is_builtin(cfg.model.name):  # a built-in model never depends on a plugin
        registry.load_plugins(cfg.plugins)  # always strict here: recorded argument names never build a model
    args = model_arguments(cfg) if arguments is None else arguments
    build = functools.partial(registry.create, cfg.model.name, dataset_info(cfg.data).num_classes, args)
    if initial_weights and cfg.model.checkpoint:
        return functools.partial(built_with_weights, build, cfg.model.checkpoint, cfg.model.checkpoint_format)
    return build


def build_model(cfg: Config, arguments: dict[str, Any] | None = None, initial_weights: bool = True) -> nn.Module:
    """The model of ``cfg``: its plugins imported, ``num_classes`` from the dataset catalog, ``model.checkpoint``
    loaded (unless ``initial_weights`` is false)."""
    return model_builder(cfg, arguments, initial_weights)()


def _stored_config(ckpt: Checkpoint) -> dict[str, Any]:
    """The run's config for a checkpoint: its own, else its run folder's; released weights are sent to
    ``bench eval CONFIG --checkpoint``."""
    try:
        return RunDir(ckpt.path.parent).stored_config(ckpt.meta)
    except RunDirError:
        if ckpt.container in ("bench", "wrapped", "bare"):
            raise
        raise LayoutError(
            f"{ckpt.path} is not a checkpoint written by bench train (a {ckpt.container} file without a run "
            f"config); evaluate released weights with their config: bench eval CONFIG --checkpoint {ckpt.path}"
        ) from None


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
    ckpt = read_checkpoint(path, hint="train first (bench train CONFIG) or fix the path")
    cfg = cfg if cfg is not None else from_dict(Config, _stored_config(ckpt))
    classes = list(dataset_info(cfg.data).class_names)
    stored_classes = ckpt.meta.get("classes")
    if stored_classes is not None and list(stored_classes) != classes:
        raise CheckpointError(
            f"{path} was trained on classes {list(stored_classes)} but the catalog now describes "
            f"{cfg.data.dataset} as {classes}; evaluate it with the protocol it was trained on"
        )
    # every weight comes from the run's checkpoint (strict): no pretrained file, no released file is read
    model = build_model(without_initial_weights(cfg), initial_weights=False)
    load_weights(model, ckpt, "bench")
    meta = dict(ckpt.meta)
    meta["checkpoint"] = path
    return model, cfg, meta

"""What a run computes, its id, and how two configs of a run differ.

    from bench.run.identity import RunIdentity, run_id, identity, differences
    ident = RunIdentity.of(cfg)    # computed once per run: model arguments, identity, hash, run id
    ident.run_id                   # "tmanet-3f9c0a1b2d": the run folder's name under output_root
    ident.model_args               # what the factory receives (bench.run.arguments.model_arguments)
    run_id(cfg), identity(cfg)     # the same from a config (the canonical dict the id hashes: non-default values)
    differences(stored, ident)     # ["model.args.memory_length: stored 2, now 4", ...]; [] = the same run

**What is hashed.** Only what changes the numbers a run produces:

* ``model``: its registered ``name``, the plugins it depends on (``arguments.model_plugins``: the listed
  plugin that registers a plugin's model; none for a built-in model, so ``plugins:`` in a grid's overrides
  changes the ids of that plugin's runs only), and the keyword arguments its factory actually receives
  (``bench.run.arguments.model_arguments``: the ``ModelConfig`` fields the factory's
  signature names, plus ``model.options``). A field the model does not take is not part of the run: the
  per-frame baseline has one id whatever ``model.memory_length`` or ``model.key_channels`` say.
* ``model.weights``: ``model.checkpoint`` and ``model.checkpoint_format`` when a checkpoint is loaded into the
  built model (its path, not its contents: the record stores the file's SHA-256, ``bench.weights.describe_file``);
* the ``data``, ``train`` and ``eval`` sections, less the knobs that cannot change a result
  (``PERFORMANCE_ONLY``: worker count and loader settings, the evaluation batch, log and checkpoint intervals;
  the trainer's data stream and RNG do not depend on them, tests/test_trainer_resume.py, and evaluation gives the
  same metrics in batches, tests/test_evaluate_batched.py) and the data keys the dataset never reads
  (``DATASET_ONLY``: ``data.root`` on synthetic, ``data.camvid_protocol`` off CamVid, ``data.synthetic.*`` off
  synthetic).

Not hashed: ``name``, ``launch``, ``device``, ``output_root``, ``run_dir``, ``checkpoint``.

**Only non-default values are hashed** (the key ``id_scheme`` names this rule). So adding a config field with a
default never changes an existing id. The price: if a *default* changes, an old run keeps its id although the
same config now means something else. That case is never silent: every reuse of a record or checkpoint
compares the stored config with the current one field by field (``differences``, defaults filled in) and
stops with the differing keys.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bench.config import Config, ConfigError, dotted_items, from_dict, to_dict
from bench.models.registry import RegistryError
from bench.run.arguments import flatten_model_config, model_arguments, model_plugins

ID_SCHEME = 2  # 1: sha1 of every result field, defaults included (before 2026-11); 2: this module
SECTIONS: tuple[str, ...] = ("data", "train", "eval")
PERFORMANCE_ONLY: frozenset[str] = frozenset(
    {
        "data.num_workers",
        "data.pin_memory",
        "data.persistent_workers",
        "data.prefetch_factor",
        "eval.batch_size",  # batched evaluation gives the same metrics (tests/test_evaluate_batched.py)
        "train.log_every",
        "train.checkpoint_every",
        "train.tensorboard",
        "train.mlflow",
        "train.mlflow_uri",
        "train.wandb",
        "train.tracker_project",
    }
)
# data keys only some datasets read: for the others they are not part of the run (data.root set on a synthetic run,
# or a CamVid protocol on Cityscapes, must not give one run two ids)
DATASET_ONLY: dict[str, frozenset[str]] = {
    "data.root": frozenset({"cityscapes", "camvid", "vspw"}),
    "data.camvid_protocol": frozenset({"camvid"}),
    "data.synthetic": frozenset({"synthetic"}),
}
_ABSENT = object()


def ignored_keys(cfg: Config) -> frozenset[str]:
    """The dotted data keys the dataset of ``cfg`` never reads (``DATASET_ONLY``), left out of its identity."""
    return frozenset(key for key, readers in DATASET_ONLY.items() if cfg.data.dataset not in readers)


def _defaults(cfg: Config) -> dict[str, Any]:
    """The defaults of each section of ``cfg``, from the section's own dataclass."""
    return {section: _section_defaults(type(getattr(cfg, section))) for section in ("model",) + SECTIONS}


@functools.cache
def _section_defaults(section: type) -> dict[str, Any]:
    """A section dataclass's defaults as a dict, built once per class (read only)."""
    return to_dict(section())


@functools.cache
def _model_defaults(section: type) -> dict[str, Any]:
    """``ModelConfig`` defaults as factory keyword names, built once per class (read only)."""
    return flatten_model_config(section())


def _sparse(
    values: dict[str, Any], defaults: dict[str, Any], prefix: str, ignored: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``values`` without the entries equal to ``defaults`` (recursively), listed in ``PERFORMANCE_ONLY`` or in
    ``ignored``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if dotted in PERFORMANCE_ONLY or dotted in ignored:
            continue
        default = defaults.get(key, _ABSENT)
        if isinstance(value, dict) and isinstance(default, dict) and value:
            nested = _sparse(value, default, dotted + ".", ignored)
            if nested:
                out[key] = nested
        elif value != default:
            out[key] = value
    return out


@dataclass(frozen=True)
class RunIdentity:
    """What identifies a run, computed once per run (``RunIdentity.of(cfg)``) and passed down: the config, the
    keyword arguments its model factory receives, the full and the sparse identity, and the hash."""

    config: Config
    model_args: dict[str, Any]
    plugins: tuple[str, ...]  # the plugins the model depends on (``model_plugins``): hashed, fingerprinted
    full: dict[str, Any]  # everything the run computes from, defaults included (what ``differences`` compares)
    sparse: dict[str, Any]  # non-default values only: what the id hashes
    config_hash: str

    @property
    def run_id(self) -> str:
        """``{model name}-{config_hash[:10]}``: the name of the run's folder under ``output_root``."""
        return run_id_of(self.config.model.name, self.config_hash)

    @classmethod
    def of(cls, cfg: Config) -> RunIdentity:
        args = model_arguments(cfg)
        plugins = model_plugins(cfg)
        full = _full_identity(cfg, args, plugins)
        sparse = _sparse_identity(cfg, full)
        digest = hashlib.sha1(json.dumps(sparse, sort_keys=True).encode()).hexdigest()
        return cls(cfg, args, plugins, full, sparse, digest)


def _full_identity(cfg: Config, model_args: dict[str, Any], plugins: tuple[str, ...]) -> dict[str, Any]:
    values = to_dict(cfg)
    skip = PERFORMANCE_ONLY | ignored_keys(cfg)
    ident = {"model": {"name": cfg.model.name, "plugins": list(plugins), "args": model_args}}
    if cfg.model.checkpoint:  # absent without one, so the identities of earlier runs are unchanged
        ident["model"]["weights"] = {"checkpoint": cfg.model.checkpoint, "format": cfg.model.checkpoint_format}
    for section in SECTIONS:
        ident[section] = {k: v for k, v in values[section].items() if f"{section}.{k}" not in skip}
    return json.loads(json.dumps(ident))  # tuples -> lists, as stored in JSON/YAML


def _sparse_identity(cfg: Config, full: dict[str, Any]) -> dict[str, Any]:
    """The canonical, sparse dict the run id hashes: non-default values only (module docstring)."""
    defaults = _defaults(cfg)
    model_defaults = _model_defaults(type(cfg.model))
    ident: dict[str, Any] = {"id_scheme": ID_SCHEME, "model": {"name": full["model"]["name"]}}
    if full["model"]["plugins"]:
        ident["model"]["plugins"] = full["model"]["plugins"]
    args = {k: v for k, v in full["model"]["args"].items() if model_defaults.get(k, _ABSENT) != v}
    if args:
        ident["model"]["args"] = args
    if "weights" in full["model"]:
        ident["model"]["weights"] = full["model"]["weights"]
    values = to_dict(cfg)
    for section in SECTIONS:
        sparse = _sparse(values[section], defaults[section], f"{section}.", ignored_keys(cfg))
        if sparse:
            ident[section] = sparse
    return json.loads(json.dumps(ident))


def full_identity(cfg: Config) -> dict[str, Any]:
    """Everything the run computes from, defaults included (what ``differences`` compares)."""
    return RunIdentity.of(cfg).full


def identity(cfg: Config) -> dict[str, Any]:
    """The canonical, sparse dict the run id hashes: non-default values only (module docstring)."""
    return RunIdentity.of(cfg).sparse


def config_hash(cfg: Config) -> str:
    """SHA-1 of the canonical JSON of ``identity(cfg)``."""
    return RunIdentity.of(cfg).config_hash


def run_id(cfg: Config) -> str:
    """``{model name}-{config_hash[:10]}``: the name of the run's folder under ``output_root``."""
    return RunIdentity.of(cfg).run_id


def run_id_of(model_name: str, digest: str) -> str:
    """The run id of a model name and a ``config_hash`` (for callers that have the hash already)."""
    return f"{model_name}-{digest[:10]}"


def differences(stored_config: dict[str, Any], run: Config | RunIdentity) -> list[str]:
    """Keys whose values differ between a stored resolved config (``record.json``/``checkpoint.pt``/
    ``config.yaml``) and the run (its config, or its ``RunIdentity`` computed once), as ``"key: stored X, now Y"``
    lines; [] when both compute the same run.

    Fields missing from the stored config (added to the schema since) count as their defaults. A stored config
    that no longer parses is one difference that says so. A stored config equal to the run's resolved config is
    the same run, found without computing either identity.
    """
    cfg = run.config if isinstance(run, RunIdentity) else run
    if _same_values(stored_config, cfg):
        return []
    try:
        stored = from_dict(Config, stored_config)
    except (ConfigError, TypeError) as err:
        return [f"the stored config cannot be read by this version ({err})"]
    current = run if isinstance(run, RunIdentity) else RunIdentity.of(run)
    try:
        stored_full = full_identity(stored)
    except RegistryError as err:  # its model's plugin is not importable here (and no sweep recorded it)
        return [f"the stored config's model cannot be described here ({err})"]
    before, now = dotted_items(stored_full), dotted_items(current.full)
    keys = sorted(set(before) | set(now))
    return [
        f"{key}: stored {_show(before, key)}, now {_show(now, key)}"
        for key in keys
        if before.get(key, _ABSENT) != now.get(key, _ABSENT)
    ]


def _same_values(stored_config: Any, cfg: Config) -> bool:
    """Whether the stored dict is the resolved ``cfg`` itself (as YAML and JSON store it)."""
    try:
        return json.dumps(stored_config, sort_keys=True) == json.dumps(to_dict(cfg), sort_keys=True)
    except (TypeError, ValueError):  # a stored value JSON cannot write (a YAML date...): compare the long way
        return False


def _show(values: dict[str, Any], key: str) -> str:
    return repr(values[key]) if key in values else "(absent)"

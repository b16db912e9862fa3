"""What a run computes, its id, and how two configs of a run differ.

    from bench.run.identity import run_id, identity, differences
    run_id(cfg)                    # "tmanet-3f9c0a1b2d": the run folder's name under output_root
    identity(cfg)                  # the canonical dict the id hashes (only non-default values)
    differences(stored, cfg)       # ["model.args.memory_length: stored 2, now 4", ...]; [] = the same run

**What is hashed.** Only what changes the numbers a run produces:

* ``model``: its registered ``name``, the ``plugins`` that are imported, and the keyword arguments its factory
  actually receives (``bench.run.arguments.model_arguments``: the ``ModelConfig`` fields the factory's
  signature names, plus ``model.options``). A field the model does not take is not part of the run: the
  per-frame baseline has one id whatever ``model.memory_length`` or ``model.key_channels`` say.
* the ``data``, ``train`` and ``eval`` sections, less the knobs that cannot change a result
  (``PERFORMANCE_ONLY``: worker count, log and checkpoint intervals; the trainer's data stream and RNG do not
  depend on them, tests/test_trainer_resume.py).

Not hashed: ``name``, ``launch``, ``device``, ``output_root``, ``run_dir``, ``checkpoint``.

**Only non-default values are hashed** (the key ``id_scheme`` names this rule). So adding a config field with a
default never changes an existing id. The price: if a *default* changes, an old run keeps its id although the
same config now means something else. That case is never silent: every reuse of a record or checkpoint
compares the stored config with the current one field by field (``differences``, defaults filled in) and
stops with the differing keys.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bench.config import Config, ConfigError, from_dict, to_dict
from bench.run.arguments import model_arguments

ID_SCHEME = 2  # 1: sha1 of every result field, defaults included (before 2026-11); 2: this module
SECTIONS: tuple[str, ...] = ("data", "train", "eval")
PERFORMANCE_ONLY: frozenset[str] = frozenset(
    {
        "data.num_workers",
        "train.log_every",
        "train.checkpoint_every",
        "train.tensorboard",
        "train.mlflow",
        "train.mlflow_uri",
        "train.wandb",
        "train.tracker_project",
    }
)
_ABSENT = object()


def _defaults(cfg: Config) -> dict[str, Any]:
    """The defaults of each section of ``cfg``, from the section's own dataclass."""
    return {section: to_dict(type(getattr(cfg, section))()) for section in ("model",) + SECTIONS}


def _sparse(values: dict[str, Any], defaults: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``values`` without the entries equal to ``defaults`` (recursively) or listed in ``PERFORMANCE_ONLY``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if dotted in PERFORMANCE_ONLY:
            continue
        default = defaults.get(key, _ABSENT)
        if isinstance(value, dict) and isinstance(default, dict) and value:
            nested = _sparse(value, default, dotted + ".")
            if nested:
                out[key] = nested
        elif value != default:
            out[key] = value
    return out


def full_identity(cfg: Config) -> dict[str, Any]:
    """Everything the run computes from, defaults included (what ``differences`` compares)."""
    values = to_dict(cfg)
    ident = {"model": {"name": cfg.model.name, "plugins": list(cfg.plugins), "args": model_arguments(cfg)}}
    for section in SECTIONS:
        ident[section] = {k: v for k, v in values[section].items() if f"{section}.{k}" not in PERFORMANCE_ONLY}
    return json.loads(json.dumps(ident))  # tuples -> lists, as stored in JSON/YAML


def identity(cfg: Config) -> dict[str, Any]:
    """The canonical, sparse dict the run id hashes: non-default values only (module docstring)."""
    defaults = _defaults(cfg)
    full = full_identity(cfg)
    model_defaults = _flat_model_defaults(defaults["model"])
    ident: dict[str, Any] = {"id_scheme": ID_SCHEME, "model": {"name": full["model"]["name"]}}
    if full["model"]["plugins"]:
        ident["model"]["plugins"] = full["model"]["plugins"]
    args = {k: v for k, v in full["model"]["args"].items() if model_defaults.get(k, _ABSENT) != v}
    if args:
        ident["model"]["args"] = args
    values = to_dict(cfg)
    for section in SECTIONS:
        sparse = _sparse(values[section], defaults[section], f"{section}.")
        if sparse:
            ident[section] = sparse
    return json.loads(json.dumps(ident))


def _flat_model_defaults(model: dict[str, Any]) -> dict[str, Any]:
    """``ModelConfig`` defaults as factory keyword names (``flow.source`` -> ``flow_source``)."""
    flat: dict[str, Any] = {}
    for key, value in model.items():
        if key in ("name", "options"):
            continue
        if isinstance(value, dict):
            flat.update({f"{key}_{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    return flat


def config_hash(cfg: Config) -> str:
    """SHA-1 of the canonical JSON of ``identity(cfg)``."""
    return hashlib.sha1(json.dumps(identity(cfg), sort_keys=True).encode()).hexdigest()


def run_id(cfg: Config) -> str:
    """``{model name}-{config_hash[:10]}``: the name of the run's folder under ``output_root``."""
    return run_id_of(cfg.model.name, config_hash(cfg))


def run_id_of(model_name: str, digest: str) -> str:
    """The run id of a model name and a ``config_hash`` (for callers that have the hash already)."""
    return f"{model_name}-{digest[:10]}"


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, dict) and values:
        out: dict[str, Any] = {}
        for key, value in values.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): values}


def differences(stored_config: dict[str, Any], cfg: Config) -> list[str]:
    """Keys whose values differ between a stored resolved config (``record.json``/``checkpoint.pt``/
    ``config.yaml``) and ``cfg``, as ``"key: stored X, now Y"`` lines; [] when both compute the same run.

    Fields missing from the stored config (added to the schema since) count as their defaults. A stored config
    that no longer parses is one difference that says so.
    """
    try:
        stored = from_dict(Config, stored_config)
    except (ConfigError, TypeError) as err:
        return [f"the stored config cannot be read by this version ({err})"]
    before, now = _flatten(full_identity(stored)), _flatten(full_identity(cfg))
    keys = sorted(set(before) | set(now))
    return [
        f"{key}: stored {_show(before, key)}, now {_show(now, key)}"
        for key in keys
        if before.get(key, _ABSENT) != now.get(key, _ABSENT)
    ]


def _show(values: dict[str, Any], key: str) -> str:
    return repr(values[key]) if key in values else "(absent)"

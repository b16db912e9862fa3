"""The keyword arguments a model factory receives for a config (torch-free: run ids are computed from them).

    from bench.run.arguments import model_arguments
    model_arguments(cfg)      # {"memory_length": 2, "key_channels": 64, "backbone": "resnet50c", ...}

A factory receives the ``ModelConfig`` fields its signature names (nested ``model.flow.source`` as
``flow_source``), the shared head parameters (``bench.models.head.HeadParams``) when it takes ``**head``, and
``model.options``. A factory argument named like a config field always receives the config's value, so a
different default there is an error (it would never be used); so is an option that is a config field.

A built-in model never imports a plugin, whatever ``plugins:`` lists; ``model_plugins`` names the plugins a
plugin's model depends on. Where a plugin module cannot be imported but a sweep recorded the model's argument names
(``registry.record_arguments``, read from the grid's manifest by ``bench status``), those names stand in for
the factory's signature: the run ids come out the same, and nothing is built.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from bench.config import Config, ModelConfig
from bench.models import registry
from bench.models.registry import RegistryError
from bench.run.plugin_files import imported_modules

# ModelConfig fields no factory receives: the model's name, the plugin options (passed as they are), and the
# weights loaded into the built model (bench.run.model)
NOT_ARGUMENTS: tuple[str, ...] = ("name", "options", "checkpoint", "checkpoint_format")


def _model_fields(model_cfg: ModelConfig) -> list[tuple[str, str, Any]]:
    """(factory argument name, dotted config key, value) of every ``ModelConfig`` field a factory may receive:
    nested dataclass fields become ``parent_field`` (``model.flow.source`` -> ``flow_source``); ``name``,
    ``options`` and the weights to load (``checkpoint``, ``checkpoint_format``: ``bench.run.model``) are left out."""
    found = []
    for field in dataclasses.fields(model_cfg):
        value = getattr(model_cfg, field.name)
        if field.name in NOT_ARGUMENTS:
            continue
        if dataclasses.is_dataclass(value):
            found += [
                (f"{field.name}_{sub.name}", f"model.{field.name}.{sub.name}", getattr(value, sub.name))
                for sub in dataclasses.fields(value)
            ]
        else:
            found.append((field.name, f"model.{field.name}", value))
    return found


def flatten_model_config(model_cfg: ModelConfig) -> dict[str, Any]:
    """``ModelConfig`` -> keyword arguments (``flow_source``: ``model.flow.source``); ``name`` and ``options``
    are left out."""
    return {arg: value for arg, _, value in _model_fields(model_cfg)}


@functools.cache
def dotted_model_keys() -> dict[str, str]:
    """The inverse naming: factory argument name -> dotted config key (``flow_source`` -> ``model.flow.source``)."""
    return {arg: key for arg, key, _ in _model_fields(ModelConfig())}


def _check_shadowing(factory: registry.ModelFactory, model_name: str, config_defaults: dict[str, Any]) -> None:
    """A factory parameter named like a config field gets the config's value, so its own default would never be
    used: a different default is an error naming both (drop the default, or rename the parameter)."""
    for name, param in registry.named_parameters(factory).items():
        if name in config_defaults and param.default is not param.empty and param.default != config_defaults[name]:
            raise RegistryError(
                f"model {model_name!r}: argument {name}={param.default!r} of {factory.__module__}."
                f"{factory.__qualname__} shadows config field {dotted_model_keys()[name]} "
                f"(default {config_defaults[name]!r}), whose value it always receives; give it the same default "
                f"or no default, or rename the argument"
            )


def _check_registered(name: str, factory: registry.ModelFactory) -> None:
    """The shadowing check at registration (``registry.add_registration_check``): a plugin with a clashing
    default fails when it is imported (``bench models plugins=[...]`` too), not first at ``bench train``."""
    _check_shadowing(factory, name, flatten_model_config(ModelConfig()))


registry.add_registration_check(_check_registered)


def factory_arguments(factory: registry.ModelFactory, model_cfg: ModelConfig) -> dict[str, Any]:
    """The keyword arguments ``factory`` receives for ``model_cfg`` (module docstring)."""
    _check_shadowing(factory, model_cfg.name, flatten_model_config(ModelConfig()))
    return _arguments(registry.accepted_arguments(factory), model_cfg)


def _arguments(accepted: list[str], model_cfg: ModelConfig) -> dict[str, Any]:
    """The config fields named in ``accepted``, plus ``model.options`` (checked against ``accepted``)."""
    fields = flatten_model_config(model_cfg)
    kwargs = {k: v for k, v in fields.items() if k in accepted}
    options = dict(model_cfg.options or {})
    clashing = sorted(k for k in options if k in fields)
    if clashing:
        raise RegistryError(
            f"model.options {clashing} are config fields; set model.{clashing[0]} instead of "
            f"model.options.{clashing[0]}"
        )
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise RegistryError(
            f"model.options {unknown} are not arguments of model {model_cfg.name!r}; "
            f"it accepts: {', '.join(sorted(accepted))}"
        )
    return {**kwargs, **options}


def model_arguments(cfg: Config) -> dict[str, Any]:
    """The keyword arguments the model factory of ``cfg`` receives (its plugins imported first; a plugin that
    cannot be imported is an error, unless the model's argument names were recorded: module docstring). A
    built-in model imports no plugin: it never depends on one."""
    if registry.is_builtin(cfg.model.name):
        return factory_arguments(registry.get_factory(cfg.model.name), cfg.model)
    try:
        registry.load_plugins(cfg.plugins)
    except RegistryError:
        recorded = registry.recorded_arguments(cfg.model.name)
        if recorded is None:
            raise
        return _arguments(recorded, cfg.model)
    return factory_arguments(registry.get_factory(cfg.model.name), cfg.model)


def model_plugins(cfg: Config) -> tuple[str, ...]:
    """The plugins of ``cfg.plugins`` that the run's model depends on (part of its identity and fingerprint).

    None for a built-in model. For a plugin's model: the listed plugin that registers it (the factory's module,
    a package above it, or a plugin whose project-local imports reach it, ``bench.run.plugin_files``); when none
    of them can be told (or the plugin is not importable here and a sweep recorded no owner), all of them.
    Call after ``model_arguments`` (which imports the plugins)."""
    if not cfg.plugins or registry.is_builtin(cfg.model.name):
        return ()
    listed = tuple(cfg.plugins)
    module = registry.factory_module(cfg.model.name)
    if module is None:
        recorded = registry.recorded_plugins(cfg.model.name)
        return tuple(p for p in listed if p in recorded) or listed if recorded is not None else listed
    owners = tuple(p for p in listed if module == p or module.startswith(p + ".") or module in imported_modules(p))
    return owners or listed

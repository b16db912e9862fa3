"""Model registry: models are registered by name and built from plain keyword arguments.

A factory never sees a config object. ``build_model`` flattens a ``ModelConfig`` into keyword
arguments and passes only those the factory accepts, so one config schema serves every model.

Register a new method (see README, "Adding a method")::

    from bench.models.registry import register_model

    @register_model("my_method")
    def my_method(num_classes: int, backbone: str = "resnet18", memory_length: int = 1) -> nn.Module:
        ...

and list its module in the config: ``plugins: [mypkg.my_method]``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any, Callable

from torch import nn

from bench.models.head import HeadParams

ModelFactory = Callable[..., nn.Module]

_MODELS: dict[str, ModelFactory] = {}

# Modules whose import registers the built-in models.
BUILTIN_MODEL_MODULES: tuple[str, ...] = ("bench.models.tmanet", "baselines.per_frame", "baselines.flow_warp")


class RegistryError(ValueError):
    """Unknown model name, a failing plugin import, or arguments a factory does not accept."""


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``factory`` under ``name``; a second, different factory for a name is an error."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        existing = _MODELS.get(name)
        if existing is not None and existing.__qualname__ != factory.__qualname__:
            raise RegistryError(f"model name {name!r} is already registered by {existing.__module__}.{existing.__qualname__}")
        _MODELS[name] = factory
        return factory

    return decorator


def load_builtin_models() -> None:
    """Import the modules that register the built-in models (TMANet and the baselines)."""
    for module in BUILTIN_MODEL_MODULES:
        importlib.import_module(module)


def load_plugins(modules: list[str] | tuple[str, ...]) -> None:
    """Import user modules that call ``register_model``; a module that cannot be imported is a clear error."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise RegistryError(
                f"plugin module {module!r} could not be imported ({err}); it must be importable "
                f"(installed, or on PYTHONPATH) and call bench.models.registry.register_model"
            ) from err


def list_models() -> list[str]:
    """Names of all registered models (built-ins are loaded first)."""
    load_builtin_models()
    return sorted(_MODELS)


def get_factory(name: str) -> ModelFactory:
    """The factory registered under ``name``, or an error listing the registered names."""
    load_builtin_models()
    if name not in _MODELS:
        raise RegistryError(f"unknown model {name!r}; registered models: {', '.join(sorted(_MODELS))} "
                            f"(a plugin module listed in `plugins:` can register more)")
    return _MODELS[name]


def flatten_model_config(model_cfg: Any) -> dict[str, Any]:
    """``ModelConfig`` -> keyword arguments: nested dataclass fields become ``parent_field``.

    ``name`` and ``options`` are not passed as such; ``options`` entries are merged in as they are.
    """
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(model_cfg):
        value = getattr(model_cfg, field.name)
        if field.name in ("name", "options"):
            continue
        if dataclasses.is_dataclass(value):
            for sub in dataclasses.fields(value):
                kwargs[f"{field.name}_{sub.name}"] = getattr(value, sub.name)
        else:
            kwargs[field.name] = value
    return kwargs


def named_parameters(factory: ModelFactory) -> dict[str, inspect.Parameter]:
    """The factory's keyword parameters by name, ``num_classes`` left out."""
    params = inspect.signature(factory).parameters
    return {n: p for n, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "num_classes"}


def takes_head(factory: ModelFactory) -> bool:
    """Whether the factory has a ``**head`` (any ``**kwargs``): it then receives every ``HeadParams`` field."""
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())


def accepted_arguments(factory: ModelFactory) -> list[str]:
    """Every keyword the factory takes from a config: its named parameters, plus the head's for ``**head``."""
    names = list(named_parameters(factory))
    return names + [n for n in HeadParams.names() if n not in names] if takes_head(factory) else names


def check_shadowing(factory: ModelFactory, model_name: str, config_defaults: dict[str, Any]) -> None:
    """A factory parameter named like a config field gets the config's value, so its own default would never be
    used: a different default is an error naming both (drop the default, or rename the parameter)."""
    for name, param in named_parameters(factory).items():
        if name in config_defaults and param.default is not param.empty and param.default != config_defaults[name]:
            raise RegistryError(
                f"model {model_name!r}: argument {name}={param.default!r} of {factory.__module__}."
                f"{factory.__qualname__} shadows config field model.{name.replace('flow_', 'flow.', 1)} "
                f"(default {config_defaults[name]!r}), whose value it always receives; give it the same default "
                f"or no default, or rename the argument")


def factory_kwargs(factory: ModelFactory, model_cfg: Any) -> dict[str, Any]:
    """The keyword arguments ``build_model`` would pass to ``factory`` for ``model_cfg``."""
    fields = flatten_model_config(model_cfg)
    defaults = flatten_model_config(type(model_cfg)())
    check_shadowing(factory, model_cfg.name, defaults)
    accepted = accepted_arguments(factory)
    kwargs = {k: v for k, v in fields.items() if k in accepted}
    options = dict(getattr(model_cfg, "options", {}) or {})
    clashing = sorted(k for k in options if k in fields)
    if clashing:
        raise RegistryError(f"model.options {clashing} are config fields; set model.{clashing[0]} instead of "
                            f"model.options.{clashing[0]}")
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise RegistryError(f"model.options {unknown} are not arguments of model {model_cfg.name!r}; "
                            f"it accepts: {', '.join(sorted(accepted))}")
    kwargs.update(options)
    return kwargs


def build_model(model_cfg: Any, num_classes: int) -> nn.Module:
    """Build the model named ``model_cfg.name`` with the config fields its factory accepts."""
    factory = get_factory(model_cfg.name)
    return factory(num_classes=num_classes, **factory_kwargs(factory, model_cfg))

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


def factory_kwargs(factory: ModelFactory, model_cfg: Any) -> dict[str, Any]:
    """The keyword arguments ``build_model`` would pass to ``factory`` for ``model_cfg``."""
    params = inspect.signature(factory).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"num_classes"}
    kwargs = {k: v for k, v in flatten_model_config(model_cfg).items() if accepts_any or k in accepted}
    options = dict(getattr(model_cfg, "options", {}) or {})
    unknown = sorted(k for k in options if not accepts_any and k not in accepted)
    if unknown:
        raise RegistryError(f"model.options {unknown} are not arguments of model {model_cfg.name!r}; "
                            f"it accepts: {', '.join(sorted(accepted))}")
    kwargs.update(options)
    return kwargs


def build_model(model_cfg: Any, num_classes: int) -> nn.Module:
    """Build the model named ``model_cfg.name`` with the config fields its factory accepts."""
    factory = get_factory(model_cfg.name)
    return factory(num_classes=num_classes, **factory_kwargs(factory, model_cfg))

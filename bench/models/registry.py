"""Model registry: models are registered by name and built from plain keyword arguments.

A factory never sees a config object: ``bench.run.model`` maps a config's fields to the keyword arguments a
factory names (``accepted_arguments``) and calls ``create``; this module knows nothing about configs.

Register a new method (see README, "Adding a method")::

    from bench.models.registry import register_model

    @register_model("my_method")
    def my_method(num_classes: int, memory_length: int = 2, **head) -> nn.Module:   # head: HeadParams fields
        ...

and list its module in the config: ``plugins: [mypkg.my_method]``.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any, Callable

from bench.models.head import HeadParams

if TYPE_CHECKING:  # the registry itself imports no torch (run ids are computed without it)
    from torch import nn

ModelFactory = Callable[..., "nn.Module"]

_MODELS: dict[str, ModelFactory] = {}

# Modules whose import registers the built-in models.
BUILTIN_MODEL_MODULES: tuple[str, ...] = ("bench.models.tmanet", "baselines.per_frame", "baselines.flow_warp",
                                            "baselines.dff", "baselines.accel", "baselines.image_heads",
                                            "bench.models.local_tmanet")


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


def describe(name: str) -> str:
    """The first line of ``name``'s factory docstring ("" without one)."""
    doc = (get_factory(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def get_factory(name: str) -> ModelFactory:
    """The factory registered under ``name``, or an error listing the registered names."""
    load_builtin_models()
    if name not in _MODELS:
        raise RegistryError(f"unknown model {name!r}; registered models: {', '.join(sorted(_MODELS))} "
                            f"(a plugin module listed in `plugins:` can register more)")
    return _MODELS[name]


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


def create(name: str, num_classes: int, kwargs: dict[str, Any]) -> "nn.Module":
    """The model registered as ``name``, built with ``num_classes`` and ``kwargs`` (plain values)."""
    return get_factory(name)(num_classes=num_classes, **kwargs)

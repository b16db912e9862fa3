"""Model registry: models are registered by name and built from plain keyword arguments.

A factory never sees a config object: ``bench.run.model`` maps a config's fields to the keyword arguments a
factory names (``accepted_arguments``) and calls ``create``; this module knows nothing about configs.

Torch-free: the built-in factories' signatures are read from their source files (``bench.models.declared``), so
``get_factory`` / ``list_models`` answer without importing the model modules (``bench config``, ``bench status``
and run ids never import torch); a built-in's module is imported when its factory is first called.

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
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError
from bench.models.declared import DeclaredFactory, declared_factories
from bench.models.head import HeadParams

if TYPE_CHECKING:  # the registry itself imports no torch (run ids are computed without it)
    from torch import nn

ModelFactory = Callable[..., "nn.Module"]

_MODELS: dict[str, ModelFactory] = {}
# model name -> the argument names its factory accepts, as a sweep recorded them (``recorded_arguments``)
_RECORDED: dict[str, list[str]] = {}
_RECORDED_PLUGINS: dict[str, list[str]] = {}  # model name -> the plugins it depends on, as a sweep recorded them
_CHECKS: list[Callable[[str, ModelFactory], None]] = []  # add_registration_check

# Modules whose import registers the built-in models.
BUILTIN_MODEL_MODULES: tuple[str, ...] = (
    "bench.models.tmanet",
    "baselines.per_frame",
    "baselines.flow_warp",
    "baselines.dff",
    "baselines.accel",
    "baselines.image_heads",
    "bench.models.local_tmanet",
    "bench.models.segformer",
    "bench.models.cffm",
)


class RegistryError(BenchError, ValueError):
    """Unknown model name, a failing plugin import, or arguments a factory does not accept."""


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``factory`` under ``name``; a second, different factory for a name is an error."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        builtin = _builtin_module(name)
        if builtin is not None and factory.__module__ != builtin:
            raise RegistryError(
                f"{factory.__module__}.{factory.__qualname__} cannot register {name!r}: that is a built-in model "
                f"({builtin}); give the plugin's model another name"
            )
        existing = _MODELS.get(name)
        if existing is not None and existing.__qualname__ != factory.__qualname__:
            raise RegistryError(
                f"model name {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
            )
        for check in _CHECKS:
            check(name, factory)
        _MODELS[name] = factory
        return factory

    return decorator


def add_registration_check(check: Callable[[str, ModelFactory], None]) -> None:
    """Run ``check(name, factory)`` on every factory registered from now on; it raises ``RegistryError`` for a
    factory that cannot be used (``bench.run.arguments`` adds the check that a factory default does not shadow a
    config field, which the registry cannot see: it knows no config)."""
    if check not in _CHECKS:
        _CHECKS.append(check)


def load_builtin_models() -> None:
    """Import the modules that register the built-in models (TMANet and the baselines)."""
    for module in BUILTIN_MODEL_MODULES:
        importlib.import_module(module)


def load_plugins(modules: list[str] | tuple[str, ...]) -> None:
    """Import user modules that call ``register_model``; a module that cannot be imported is a clear error."""
    for module in modules:
        try:
            importlib.import_module(module)
        except RegistryError:  # its registration was refused: the message says why and what to change
            sys.modules.pop(module, None)  # a fixed plugin is imported afresh
            raise
        except ImportError as err:
            raise RegistryError(
                f"plugin module {module!r} could not be imported ({err}); it must be importable "
                f"(installed, or on PYTHONPATH) and call bench.models.registry.register_model"
            ) from err
        except SystemExit as err:  # a plugin that ends the process at import would end bench without a word
            raise RegistryError(
                f"plugin module {module!r} called sys.exit({err.code!r}) while being imported; a plugin must "
                f"only define and register models at import (`python -c 'import {module}'` shows where)"
            ) from None
        except Exception as err:  # noqa: BLE001 - a plugin's own bug (SyntaxError, RuntimeError...) at import
            raise RegistryError(
                f"plugin module {module!r} failed while being imported: {_where(err)}"
                f"{type(err).__name__}: {err}; fix the plugin (`python -c 'import {module}'` "
                f"shows the whole traceback)"
            ) from err


def _where(err: Exception) -> str:
    """``"file:line: "`` of the failing line: the SyntaxError's own, else the traceback's last frame."""
    if isinstance(err, SyntaxError) and err.filename:
        return f"{err.filename}:{err.lineno}: "
    frames = traceback.extract_tb(err.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""


def _declared_builtins() -> dict[str, DeclaredFactory] | None:
    """The built-in factories read from their sources (cached); None when one cannot be read that way."""
    key = tuple(BUILTIN_MODEL_MODULES)
    if key not in _DECLARED:
        _DECLARED[key] = declared_factories(key)
    return _DECLARED[key]


_DECLARED: dict[tuple[str, ...], dict[str, DeclaredFactory] | None] = {}


def _lazy_factory(declared: DeclaredFactory) -> ModelFactory:
    """A stand-in with the declared signature and names; calling it imports the module and calls the real one."""

    def factory(*args: Any, **kwargs: Any) -> nn.Module:
        real = getattr(importlib.import_module(declared.module), declared.qualname)
        return real(*args, **kwargs)

    factory.__signature__ = declared.signature  # type: ignore[attr-defined]  # read by inspect.signature
    factory.__module__, factory.__qualname__, factory.__name__ = declared.module, declared.qualname, declared.qualname
    return factory


def _builtin_names() -> set[str]:
    declared = _declared_builtins()
    if declared is None:
        load_builtin_models()
        return set()
    return set(declared)


def _builtin_module(name: str) -> str | None:
    """The module of built-in model ``name`` (read from the sources, ``declared``), None for any other name."""
    declared = _declared_builtins()
    if declared is not None:
        return declared[name].module if name in declared else None
    factory = _MODELS.get(name)  # the sources could not be read: the built-ins are imported (``_builtin_names``)
    return factory.__module__ if factory is not None and factory.__module__ in BUILTIN_MODEL_MODULES else None


def is_builtin(name: str) -> bool:
    """Whether ``name`` is one of the suite's own models: it never depends on a plugin (``plugins:`` does not
    change its runs, and its runs never import one)."""
    if _declared_builtins() is None and name not in _MODELS:
        load_builtin_models()
    return _builtin_module(name) is not None


def factory_module(name: str) -> str | None:
    """The module that registered model ``name`` in this process, None when it is not registered here (a plugin
    not imported; a built-in not imported yet)."""
    factory = _MODELS.get(name)
    return factory.__module__ if factory is not None else None


def list_models() -> list[str]:
    """Names of all registered models: the built-ins (read from their sources) and the plugins loaded."""
    return sorted(_builtin_names() | set(_MODELS))


def describe(name: str) -> str:
    """The first line of ``name``'s factory docstring ("" without one)."""
    doc = (get_factory(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def get_factory(name: str) -> ModelFactory:
    """The factory registered under ``name``, or an error listing the registered names. A built-in whose module
    is not imported yet comes as a stand-in with the same signature (``_lazy_factory``)."""
    if name in _MODELS:
        return _MODELS[name]
    declared = _declared_builtins()
    if declared is not None and name in declared:
        return _lazy_factory(declared[name])
    if declared is None:
        load_builtin_models()
    if name not in _MODELS:
        raise RegistryError(
            f"unknown model {name!r}; registered models: {', '.join(list_models())} "
            f"(a plugin module listed in `plugins:` can register more)"
        )
    return _MODELS[name]


def named_parameters(factory: ModelFactory) -> dict[str, inspect.Parameter]:
    """The factory's keyword parameters by name, ``num_classes`` left out."""
    params = inspect.signature(factory).parameters
    return {
        n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "num_classes"
    }


def takes_head(factory: ModelFactory) -> bool:
    """Whether the factory has a ``**head`` (any ``**kwargs``): it then receives every ``HeadParams`` field."""
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(factory).parameters.values())


def accepted_arguments(factory: ModelFactory) -> list[str]:
    """Every keyword the factory takes from a config: its named parameters, plus the head's for ``**head``."""
    names = list(named_parameters(factory))
    return names + [n for n in HeadParams.names() if n not in names] if takes_head(factory) else names


def record_arguments(signatures: dict[str, list[str]], plugins: dict[str, list[str]] | None = None) -> None:
    """Remember the accepted argument names of models (from a sweep's manifest), for ``recorded_arguments``, and
    the plugins each depends on, for ``recorded_plugins``."""
    _RECORDED.update({name: list(names) for name, names in signatures.items()})
    _RECORDED_PLUGINS.update({name: list(names) for name, names in (plugins or {}).items()})


def recorded_plugins(name: str) -> list[str] | None:
    """The plugins a sweep recorded for model ``name`` (``record_arguments``), else None."""
    return list(_RECORDED_PLUGINS[name]) if name in _RECORDED_PLUGINS else None


def recorded_arguments(name: str) -> list[str] | None:
    """The argument names recorded for ``name`` (``record_arguments``), else None. Used where a model's plugin
    cannot be imported but its run ids are still needed (``bench status`` on another machine); never to build."""
    return list(_RECORDED[name]) if name in _RECORDED else None


def create(name: str, num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    """The model registered as ``name``, built with ``num_classes`` and ``kwargs`` (plain values)."""
    return get_factory(name)(num_classes=num_classes, **kwargs)

"""Factory signatures read from source files (torch-free): the registry answers "which arguments does model X
take?" without importing the module that defines X (and with it torch and timm).

    from bench.models.declared import declared_factories
    declared = declared_factories(["bench.models.tmanet", "baselines.per_frame"])
    declared["tmanet"].module, declared["tmanet"].signature       # inspect.Signature, without annotations

A module-level function decorated with ``@register_model("name")`` (or ``@registry.register_model("name")``) is
a declared factory. Its signature is taken from the syntax tree; a default that is not a literal
(``ast.literal_eval``) makes the file unreadable this way (``None``), and the caller imports the module instead.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DeclaredFactory:
    """A factory found in a source file: registered ``name``, its ``module`` and ``qualname``, its signature."""

    name: str
    module: str
    qualname: str
    signature: inspect.Signature


class _NotLiteral(ValueError):
    """A default value that only running the module can compute."""


def _registered_name(decorator: ast.expr) -> str | None:
    """``"x"`` for ``@register_model("x")`` / ``@anything.register_model("x")``, else None."""
    if not isinstance(decorator, ast.Call) or not decorator.args:
        return None
    func = decorator.func
    called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    first = decorator.args[0]
    if called == "register_model" and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def _default(node: ast.expr | None) -> object:
    if node is None:
        return inspect.Parameter.empty
    try:
        return ast.literal_eval(node)
    except ValueError as err:
        raise _NotLiteral(ast.unparse(node)) from err


def signature_of(function: ast.FunctionDef) -> inspect.Signature:
    """The ``inspect.Signature`` of a function definition (names, kinds, literal defaults; no annotations)."""
    P = inspect.Parameter
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = [
        P(a.arg, P.POSITIONAL_ONLY if i < len(args.posonlyargs) else P.POSITIONAL_OR_KEYWORD, default=_default(d))
        for i, (a, d) in enumerate(zip(positional, defaults))
    ]
    if args.vararg:
        params.append(P(args.vararg.arg, P.VAR_POSITIONAL))
    params += [P(a.arg, P.KEYWORD_ONLY, default=_default(d)) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.kwarg:
        params.append(P(args.kwarg.arg, P.VAR_KEYWORD))
    return inspect.Signature(params)


def read_module(module: str) -> dict[str, DeclaredFactory] | None:
    """The factories ``module`` declares, from its source; None when the source cannot be read this way."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), filename=spec.origin)
    found: dict[str, DeclaredFactory] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for name in filter(None, map(_registered_name, node.decorator_list)):
            try:
                found[name] = DeclaredFactory(name, module, node.name, signature_of(node))
            except _NotLiteral:
                return None
    return found


def declared_factories(modules: list[str] | tuple[str, ...]) -> dict[str, DeclaredFactory] | None:
    """Every factory the ``modules`` declare, by name; None when one of them cannot be read from its source."""
    found: dict[str, DeclaredFactory] = {}
    for module in modules:
        declared = read_module(module)
        if declared is None:
            return None
        found.update(declared)
    return found

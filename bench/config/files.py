"""Config files: strict YAML (no repeated keys, no alias bombs, no tags), ``base:`` chains, one-line errors.

read_yaml_with_base("configs/synthetic_tmanet.yaml")   # the file merged over its base: chain
parse_yaml("{a: 1}", "override 'x'")                  # errors: ConfigError starting with the place
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.config.fields import ConfigError


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key appears twice in one YAML mapping."""


# a config uses aliases rarely; an "alias bomb" (each level repeating the previous one) expands exponentially
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000


class AliasLimitError(yaml.composer.ComposerError):
    """A YAML document uses more aliases, or expands to more values, than a config ever needs."""


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int]) -> int:
    """The number of values ``node`` stands for once every alias is expanded (refused past the limit)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise AliasLimitError(None, None, "an alias refers to a value that contains it", node.start_mark)
    active.add(key)
    children = (
        node.value
        if isinstance(node, yaml.SequenceNode)
        else [n for pair in node.value for n in pair]
        if isinstance(node, yaml.MappingNode)
        else []
    )
    size = 1 + sum(_expanded_size(child, memo, active) for child in children)
    active.discard(key)
    if size > MAX_EXPANDED_NODES:
        raise AliasLimitError(
            None, None, f"aliases expand this document past {MAX_EXPANDED_NODES} values", node.start_mark
        )
    memo[key] = size
    return size


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (PyYAML keeps the last one silently), and
    more than ``MAX_ALIASES`` aliases or ``MAX_EXPANDED_NODES`` values once aliases are expanded."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            self.alias_count = getattr(self, "alias_count", 0) + 1
            if self.alias_count > MAX_ALIASES:
                raise AliasLimitError(
                    None, None, f"more than {MAX_ALIASES} aliases (*name)", self.peek_event().start_mark
                )
        return super().compose_node(parent, index)

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, {}, set())
        return node

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden by later keys
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not key_node.start_mark:
                raise DuplicateKeyError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"key {key!r} appears twice (first at line {first.line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line: what is wrong and what to do, for a YAML error."""
    problem = " ".join(str(getattr(err, "problem", None) or err).split())
    if isinstance(err, DuplicateKeyError):
        return f"{problem}; keep one of them"
    if isinstance(err, AliasLimitError):
        return f"{problem}; write the values out instead of repeating aliases"
    if isinstance(err, yaml.constructor.ConstructorError) and "for the tag" in problem:
        return f"{problem}; only plain values are allowed (numbers, strings, lists, mappings): remove the tag"
    if isinstance(err, yaml.constructor.ConstructorError):
        return f"{problem}; write plain keys and values (numbers, strings, lists, mappings) there"
    return f"not valid YAML: {problem}; fix the syntax there (indentation, ':' after keys, closing brackets, quotes)"


def parse_yaml(text: str, where: str) -> Any:
    """``text`` read with ``StrictLoader``; errors are one-line ``ConfigError``s starting with ``where``."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{at}: {_yaml_problem(err)}") from None


def read_yaml(path: str | Path) -> Any:
    """The YAML document in ``path`` (UTF-8, ``StrictLoader``); every failure is a one-line ``ConfigError``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the file ({err.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}, line {line}: byte 0x{raw[err.start]:02x} is not UTF-8 text; save the file as UTF-8"
        ) from None
    return parse_yaml(text, str(path))


def read_yaml_with_base(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML config file, merging it over its ``base:`` file (recursively)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in _seen:
        raise ConfigError(f"config files include each other in a cycle: {' -> '.join(map(str, _seen + (path,)))}")
    data = read_yaml(path)
    if data is None:  # an empty file (or only comments): most likely not what was meant, never all defaults
        raise ConfigError(
            f"{path} is empty: a config file holds a mapping of config keys (e.g. model: {{name: tmanet}}); "
            f"for every default give no config file (bench train key=value ...)"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(
            f"{path}: base must be one file name relative to this file (e.g. base: parent.yaml), "
            f"got {base!r}; to combine several files, give each one its own base"
        )
    if not (path.parent / base).is_file():
        raise ConfigError(f"{path}: base file not found: {path.parent / base}")
    parent = read_yaml_with_base(path.parent / base, _seen + (path.resolve(),))
    return deep_merge(parent, data)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``: mappings merge key by key, other values replace."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in ("options", "sbatch_extra"):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged

"""Typed experiment configuration: dataclass defaults, YAML files that override them, dotted overrides.

    from bench.config import load_config, to_yaml, Config
    cfg = load_config("configs/synthetic_tmanet.yaml", ["model.memory_length=4", "train.iters=200"])
    print(to_yaml(cfg))                                  # what `bench config ...` prints

The package's rooms: ``schema`` (the sections and their fields: where a new field goes), ``fields`` (field
helpers, the check of one value, ``ConfigError``), ``files`` (strict YAML, ``base:`` chains), ``loading``
(overrides, ``from_dict``, ``load_config``, ``to_yaml``, ``help_table``) and ``validation`` (checks across
fields, the device, safe names). Every public name is importable from here.
"""

from bench.config.fields import Checked, ConfigError, bounded, choice, coerce, described, listed
from bench.config.files import (
    MAX_ALIASES,
    MAX_EXPANDED_NODES,
    AliasLimitError,
    DuplicateKeyError,
    StrictLoader,
    deep_merge,
    parse_yaml,
    read_yaml,
    read_yaml_with_base,
)
from bench.config.loading import (
    apply_overrides,
    dotted_items,
    from_dict,
    help_table,
    load_config,
    parse_override,
    set_dotted,
    to_dict,
    to_yaml,
)
from bench.config.schema import (
    Config,
    DataConfig,
    EvalConfig,
    FlowConfig,
    LaunchConfig,
    ModelConfig,
    SyntheticConfig,
    TrainConfig,
)
from bench.config.validation import SAFE_NAME, check_device, check_inside, check_safe_name, validate

__all__ = [
    "MAX_ALIASES", "MAX_EXPANDED_NODES", "SAFE_NAME", "AliasLimitError", "Checked", "Config", "ConfigError",
    "DataConfig", "DuplicateKeyError", "EvalConfig", "FlowConfig", "LaunchConfig", "ModelConfig", "StrictLoader",
    "SyntheticConfig", "TrainConfig", "apply_overrides", "bounded", "check_device", "check_inside",
    "check_safe_name", "choice", "coerce", "deep_merge", "described",
    "dotted_items", "from_dict", "help_table", "listed",
    "load_config", "parse_override", "parse_yaml", "read_yaml", "read_yaml_with_base", "set_dotted", "to_dict",
    "to_yaml", "validate",
]  # fmt: skip

"""Registry: built-ins are registered by name; a user's plugin module registers a new method."""

import sys
import textwrap

import pytest
import torch

from bench.config import load_config
from bench.models.registry import RegistryError, get_factory, list_models, load_plugins
from bench.run.arguments import factory_arguments as factory_kwargs
from bench.run.model import build_model

PLUGIN = """
from torch import nn
from bench.models.registry import register_model

class Constant(nn.Module):
    def __init__(self, num_classes, memory_length, depth):
        super().__init__()
        self.memory_length = memory_length
        self.depth = depth
        self.conv = nn.Conv2d(3, num_classes, 1)

    def forward(self, frames, flow=None):
        return {"out": self.conv(frames[:, -1])}

@register_model("test_constant_plugin")
def constant(num_classes: int, memory_length: int = 2, depth: int = 1) -> nn.Module:
    return Constant(num_classes, memory_length, depth)
"""


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    (tmp_path / "my_test_plugin.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_test_plugin"
    sys.modules.pop("my_test_plugin", None)


def test_builtin_models_are_registered():
    assert {"tmanet", "per_frame", "flow_warp"} <= set(list_models())


def test_plugin_module_registers_a_model_built_from_config(plugin_module):
    cfg = load_config(
        None,
        [
            "model.name=test_constant_plugin",
            f"plugins=[{plugin_module}]",
            "model.memory_length=3",
            "model.options={depth: 5}",
            "data.synthetic.num_classes=4",
        ],
    )
    load_plugins(cfg.plugins)
    model = build_model(cfg)
    assert (model.memory_length, model.depth, model.conv.out_channels) == (3, 5, 4)
    # only the arguments the factory declares are passed on
    assert set(factory_kwargs(get_factory("test_constant_plugin"), cfg.model)) == {"memory_length", "depth"}


def test_unknown_option_lists_the_accepted_arguments(plugin_module):
    load_plugins([plugin_module])
    cfg = load_config(None, ["model.name=test_constant_plugin", "model.options={depht: 2}"])
    with pytest.raises(RegistryError, match=r"\['depht'\] are not arguments .* accepts: depth, memory_length"):
        build_model(cfg)


def test_unknown_model_and_missing_plugin_are_clear_errors():
    with pytest.raises(RegistryError, match="unknown model 'nope'; registered models: .*tmanet"):
        get_factory("nope")
    with pytest.raises(RegistryError, match="plugin module 'not_a_module_xyz' could not be imported"):
        load_plugins(["not_a_module_xyz"])


def test_nested_flow_config_is_flattened_for_the_flow_baseline():
    cfg = load_config(None, ["model.name=flow_warp", "model.flow.source=ground_truth", "model.flow.fusion=concat"])
    kwargs = factory_kwargs(get_factory("flow_warp"), cfg.model)
    assert kwargs["flow_source"] == "ground_truth" and kwargs["flow_fusion"] == "concat"


SHADOWING_PLUGIN = """
from torch import nn
from bench.models.registry import register_model

@register_model("test_shadowing_plugin")
def shadowing(num_classes: int, value_channels: int = 128) -> nn.Module:
    return nn.Conv2d(3, num_classes, 1)
"""


def test_head_parameters_are_defined_once_and_exposed_by_the_model_config():
    import dataclasses

    from bench.config import ModelConfig
    from bench.models.head import HeadParams

    config_defaults = {f.name: getattr(ModelConfig(), f.name) for f in dataclasses.fields(ModelConfig)}
    assert {name: config_defaults.get(name, "absent") for name in HeadParams.names()} == HeadParams().as_kwargs()
    kwargs = factory_kwargs(get_factory("per_frame"), load_config(None, ["model.name=per_frame"]).model)
    assert sorted(kwargs) == sorted(HeadParams.names())  # `**head` receives the head, nothing else


def test_a_factory_default_that_the_config_would_silently_override_is_an_error(tmp_path, monkeypatch, capsys):
    """Refused when the plugin registers it (so `bench models` fails too), not first at `bench train`."""
    from bench.cli import main

    (tmp_path / "shadowing_plugin.py").write_text(textwrap.dedent(SHADOWING_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    shadows = r"value_channels=128 .* shadows config field model.value_channels \(default 256\)"
    with pytest.raises(RegistryError, match=shadows):
        load_plugins(["shadowing_plugin"])
    assert "test_shadowing_plugin" not in list_models() and "shadowing_plugin" not in sys.modules
    assert main(["models", "plugins=[shadowing_plugin]"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: RegistryError: model 'test_shadowing_plugin': argument value_channels=128")
    assert err.count("\n") == 1


def test_an_option_that_is_a_config_field_is_an_error(plugin_module):
    load_plugins([plugin_module])
    cfg = load_config(None, ["model.name=test_constant_plugin", "model.options={memory_length: 3}"])
    with pytest.raises(RegistryError, match=r"set model.memory_length instead"):
        factory_kwargs(get_factory("test_constant_plugin"), cfg.model)


def test_an_unknown_head_parameter_names_the_valid_ones():
    from baselines.per_frame import per_frame

    with pytest.raises(ValueError, match=r"unknown head parameter\(s\) value_chanels; valid: backbone"):
        per_frame(3, value_chanels=8)


def test_build_models_from_config_overrides():
    small = [
        "data.synthetic.num_classes=4",
        "model.backbone=resnet18",
        "model.value_channels=16",
        "model.channels=16",
        "model.aux_channels=16",
    ]
    tma = build_model(
        load_config(
            None,
            ["model.name=tmanet", "model.memory_length=3", "model.key_channels=8", "model.aggregation=sum", *small],
        )
    )
    assert (type(tma).__name__, tma.memory_length, tma.aggregation, len(tma.memory_keys)) == ("TMANet", 3, "sum", 3)
    pf = build_model(load_config(None, ["model.name=per_frame", *small]))
    assert pf.memory_length == 0
    fw = build_model(
        load_config(
            None,
            [
                "model.name=flow_warp",
                "model.memory_length=1",
                "model.flow.source=ground_truth",
                "model.flow.fusion=concat",
                *small,
            ],
        )
    )
    assert (fw.memory_length, fw.flow_source, type(fw.fusion).__name__) == (1, "ground_truth", "ConcatFusion")
    fw.eval()
    with torch.no_grad():
        assert fw(torch.randn(1, 2, 3, 64, 64), torch.zeros(1, 1, 2, 64, 64))["out"].shape == (1, 4, 64, 64)

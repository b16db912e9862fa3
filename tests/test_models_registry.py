"""The built-in models are registered and built from a config through bench.models.registry."""

import torch

from bench.config import load_config
from bench.models.registry import list_models
from bench.run.model import build_model


def test_model_names_are_registered():
    assert {"tmanet", "per_frame", "flow_warp"} <= set(list_models())


def test_build_models_from_config_overrides():
    small = ["data.synthetic.num_classes=4", "model.backbone=resnet18", "model.value_channels=16", "model.channels=16", "model.aux_channels=16"]
    tma = build_model(load_config(None, ["model.name=tmanet", "model.memory_length=3", "model.key_channels=8",
                                         "model.aggregation=sum", *small]))
    assert (type(tma).__name__, tma.memory_length, tma.aggregation, len(tma.memory_keys)) == ("TMANet", 3, "sum", 3)
    pf = build_model(load_config(None, ["model.name=per_frame", *small]))
    assert pf.memory_length == 0
    fw = build_model(load_config(None, ["model.name=flow_warp", "model.memory_length=1",
                                        "model.flow.source=ground_truth", "model.flow.fusion=concat",
                                        *small]))
    assert (fw.memory_length, fw.flow_source, type(fw.fusion).__name__) == (1, "ground_truth", "ConcatFusion")
    fw.eval()
    with torch.no_grad():
        assert fw(torch.randn(1, 2, 3, 64, 64), torch.zeros(1, 1, 2, 64, 64))["out"].shape == (1, 4, 64, 64)

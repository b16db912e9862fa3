"""OS-8 timm backbone: shapes, channels, dilation pattern, local weight loading, offline error."""

import pytest
import timm
import torch

from bench.models.backbone import Backbone, read_state_dict


def test_resnet18_output_stride_8_and_channels():
    bb = Backbone("resnet18")
    layer3, layer4 = bb(torch.randn(2, 3, 64, 48))
    assert (bb.aux_channels, bb.out_channels) == (256, 512)
    assert layer3.shape == (2, 256, 8, 6) and layer4.shape == (2, 512, 8, 6)
    assert bb.load_report is None


def test_resnet50c_has_deep_stem_and_contracted_dilation():
    bb = Backbone("resnet50c")
    assert (bb.aux_channels, bb.out_channels) == (1024, 2048)
    modules = dict(bb.body.named_modules())
    assert modules["conv1.0"].out_channels == 32  # V1c deep stem 3 -> 32 -> 32 -> 64
    # contract_dilation (tmanet.md §1.2): first block of a dilated stage uses half the dilation
    dilations = {n: modules[f"{n}.conv2"].dilation[0] for n in ("layer3.0", "layer3.1", "layer4.0", "layer4.1")}
    assert dilations == {"layer3.0": 1, "layer3.1": 2, "layer4.0": 2, "layer4.1": 4}


def test_local_pretrained_file_loads_every_tensor(tmp_path):
    torch.manual_seed(0)
    source = timm.create_model("resnet18", pretrained=False)  # full classifier model, with fc
    path = tmp_path / "resnet18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    bb = Backbone("resnet18", pretrained=True, pretrained_path=str(path))
    assert bb.load_report == {"missing": [], "unexpected": [], "mismatched": []}
    key = "layer4.1.conv2.weight"
    torch.testing.assert_close(bb.body.state_dict()[key], source.state_dict()[key])


def test_partial_file_warns_and_foreign_file_raises(tmp_path):
    source = timm.create_model("resnet18", pretrained=False).state_dict()
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in source.items() if not k.startswith("layer4")}, partial)
    with pytest.warns(UserWarning, match="missing"):
        bb = Backbone("resnet18", pretrained_path=str(partial))
    assert any(k.startswith("layer4") for k in bb.load_report["missing"])
    foreign = tmp_path / "foreign.pth"
    torch.save({"decoder.weight": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="matches backbone"):
        Backbone("resnet18", pretrained_path=str(foreign))
    with pytest.raises(FileNotFoundError, match="pretrained_path"):
        Backbone("resnet18", pretrained_path=str(tmp_path / "absent.pth"))


def test_mmcv_resnet_v1c_keys_are_remapped(tmp_path):
    path = tmp_path / "resnet50_v1c.pth"
    torch.save({"state_dict": {"stem.0.weight": torch.zeros(1), "stem.7.running_mean": torch.ones(1),
                               "backbone.layer1.0.conv1.weight": torch.ones(2)}}, path)
    assert set(read_state_dict(path)) == {"conv1.0.weight", "bn1.running_mean", "layer1.0.conv1.weight"}


def test_pretrained_without_path_offline_gives_instructions(monkeypatch):
    original = timm.create_model

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("network is unreachable")
        return original(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(RuntimeError, match="model.pretrained_path") as info:
        Backbone("resnet18", pretrained=True)
    assert "resnet18" in str(info.value) and "model.pretrained=false" in str(info.value)

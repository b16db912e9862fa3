"""OS-8 timm backbone: shapes, channels, dilation pattern, local weight loading, offline error."""

import pytest
import timm
import torch

from bench.models.backbone import Backbone, PretrainedWeightsError
from bench.weights import backbone_weights


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
    # contract_dilation (docs/tmanet.md §1.2): first block of a dilated stage uses half the dilation
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
    with pytest.raises(PretrainedWeightsError, match="matches backbone"):
        Backbone("resnet18", pretrained_path=str(foreign))
    other = tmp_path / "resnet50.pth"
    torch.save(timm.create_model("resnet50", pretrained=False).state_dict(), other)
    with pytest.warns(UserWarning, match="missing"):  # same names, other shapes / blocks: lenient, reported
        assert Backbone("resnet18", pretrained_path=str(other)).load_report["unexpected"]
    with pytest.raises(FileNotFoundError, match="pretrained_path"):
        Backbone("resnet18", pretrained_path=str(tmp_path / "absent.pth"))


def test_mmcv_resnet_v1c_keys_are_remapped(tmp_path):
    path = tmp_path / "resnet50_v1c.pth"
    torch.save(
        {
            "state_dict": {
                "stem.0.weight": torch.zeros(1),
                "stem.7.running_mean": torch.ones(1),
                "layer1.0.conv1.weight": torch.ones(2),
            }
        },
        path,
    )
    assert set(backbone_weights(path)) == {"conv1.0.weight", "bn1.running_mean", "layer1.0.conv1.weight"}


def test_pretrained_without_path_offline_gives_instructions(monkeypatch):
    original = timm.create_model

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("network is unreachable")
        return original(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    monkeypatch.setattr("bench.models.backbone.hub_reachable", lambda *a: True)  # the hub "answers", the fetch fails
    monkeypatch.setattr("bench.models.backbone.cached_weights", lambda name: None)
    with pytest.raises(RuntimeError, match="model.pretrained_path") as info:
        Backbone("resnet18", pretrained=True)
    assert "resnet18" in str(info.value) and "model.pretrained=false" in str(info.value)


# --------------------------------------------------------------------------------------------------
# pretrained weights offline: the local caches first, then one line naming the file (never a download here)


def _caches(tmp_path, monkeypatch):
    import bench.models.backbone as backbone

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(backbone, "hub_reachable", lambda *a: pytest.fail("the hub must not be asked"))
    return backbone


def test_pretrained_weights_come_from_the_torch_hub_cache_without_network(tmp_path, monkeypatch):
    _caches(tmp_path, monkeypatch)
    source = timm.create_model("resnet18", pretrained=False)
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(source.state_dict(), folder / "resnet18_a1_0-d63eafa0.pth")
    bb = Backbone("resnet18", pretrained=True)
    assert torch.equal(bb.body.conv1.weight, source.conv1.weight)


def test_pretrained_weights_come_from_the_hugging_face_cache_without_network(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    _caches(tmp_path, monkeypatch)
    source = timm.create_model("resnet18", pretrained=False)
    repo = tmp_path / "hf" / "models--timm--resnet18.a1_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    save_file(
        {k: v.contiguous() for k, v in source.state_dict().items()}, repo / "snapshots" / "abc123" / "model.safetensors"
    )
    bb = Backbone("resnet18", pretrained=True)
    assert torch.equal(bb.body.layer1[0].conv1.weight, source.layer1[0].conv1.weight)


def test_offline_without_a_cached_copy_fails_at_once_naming_the_file(tmp_path, monkeypatch):
    import time

    backbone = _caches(tmp_path, monkeypatch)
    monkeypatch.setattr(backbone, "hub_reachable", lambda *a: False)
    monkeypatch.setattr(
        timm,
        "create_model",
        lambda *a, pretrained=False, **k: (
            pytest.fail("no download offline") if pretrained else pytest.fail("nothing to build")
        ),
    )
    start = time.perf_counter()
    with pytest.raises(backbone.PretrainedWeightsError) as info:
        Backbone("resnet18", pretrained=True)
    assert time.perf_counter() - start < 2
    text = str(info.value)
    assert "cannot be reached" in text and "https://huggingface.co/timm/resnet18.a1_in1k" in text
    assert "model.pretrained_path=" in text and str(tmp_path / "torch" / "hub" / "checkpoints") in text
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert backbone.hub_reachable() is False  # answered without touching the network

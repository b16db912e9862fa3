"""bench.weights: checkpoint containers and their one-line errors, layout detection, the mmseg <-> suite key maps,
strict loading of the suite's own checkpoints, and export to the mmseg layout (round trips on small models).

mmseg itself checks the maps numerically in test_oracle_mmseg.py; the official TMANet layout in
test_weights_official.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from baselines.image_heads import fcn, pspnet
from baselines.per_frame import per_frame
from bench.models.backbone import Backbone, PretrainedWeightsError
from bench.models.cffm import cffm
from bench.models.segformer import segformer
from bench.models.tmanet import tmanet
from bench.weights import (
    CheckpointFileError,
    LayoutError,
    MissingCheckpointFile,
    WeightsMismatchError,
    backbone_weights,
    detect_layout,
    load_weights,
    mmseg_checkpoint,
    mmseg_state,
    read_checkpoint,
)
from bench.weights.keymap import to_mmseg_key, to_suite_key

SMALL = dict(backbone="resnet18", value_channels=16, channels=16, aux_channels=8)
MODELS = {
    "tmanet": lambda **kw: tmanet(memory_length=2, key_channels=8, **SMALL, **kw),
    "pspnet": lambda **kw: pspnet(**SMALL, **kw),
    "fcn": lambda **kw: fcn(**SMALL, **kw),
}


def _filled(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``model`` with every tensor (BN statistics included) drawn at random, so a wrong mapping cannot hide."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=g) + 0.1)
    return model


def _one_line(err: pytest.ExceptionInfo, *parts: str) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, (part, text)
    return text


# ---------------------------------------------------------------------------------------------------------------
# containers


def test_containers_unwrap_to_the_same_tensors(tmp_path):
    state = {"conv1.weight": torch.randn(2, 3), "bn1.running_mean": torch.zeros(2)}
    torch.save({"meta": {"CLASSES": ("a", "b"), "iter": 5}, "state_dict": state, "optimizer": {}}, tmp_path / "m.pth")
    torch.save({"model": state, "config": {"model": {"name": "x"}}, "iteration": 3, "rng": {}}, tmp_path / "b.pt")
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "ddp.pth")
    torch.save({"model": state}, tmp_path / "wrapped.pth")
    save_file(state, tmp_path / "s.safetensors")
    found = {name: read_checkpoint(tmp_path / name) for name in ("m.pth", "b.pt", "ddp.pth", "wrapped.pth")}
    found["s"] = read_checkpoint(tmp_path / "s.safetensors")
    for ckpt in found.values():
        assert set(ckpt.state) == set(state) and torch.equal(ckpt.state["conv1.weight"], state["conv1.weight"])
    assert [found[n].container for n in ("m.pth", "b.pt", "ddp.pth", "wrapped.pth", "s")] == [
        "mmseg",
        "bench",
        "bare",
        "wrapped",
        "safetensors",
    ]
    assert found["m.pth"].meta == {"CLASSES": ("a", "b"), "iter": 5}
    assert found["b.pt"].meta == {"config": {"model": {"name": "x"}}, "iteration": 3}


def test_a_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(MissingCheckpointFile) as info:
        read_checkpoint(tmp_path / "absent.pth", hint="download it from https://example.org/w.pth and put it there")
    _one_line(info, str(tmp_path / "absent.pth"), "does not exist", "download it from https://example.org/w.pth")
    with pytest.raises(FileNotFoundError):  # also an OSError-family error for callers that catch those
        read_checkpoint(tmp_path / "absent.pth")


def test_truncated_empty_and_foreign_files_are_one_line_errors(tmp_path):
    torch.save({"state_dict": {"w": torch.randn(64, 64)}}, tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    torch.save({"w": torch.randn(64, 64)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    legacy = (tmp_path / "legacy.pth").read_bytes()
    (tmp_path / "legacy_cut.pth").write_bytes(legacy[: len(legacy) // 2])
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    save_file({"w": torch.randn(64, 64)}, tmp_path / "s.safetensors")
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "s.safetensors").read_bytes()[:100])
    expected = {
        "cut.pth": "truncated or corrupt",
        "legacy_cut.pth": "truncated or corrupt",
        "cut.safetensors": "truncated or corrupt",
        "empty.pth": "is empty",
        "text.pth": "is not a PyTorch checkpoint",
    }
    for name, phrase in expected.items():
        with pytest.raises(CheckpointFileError) as info:
            read_checkpoint(tmp_path / name)
        _one_line(info, str(tmp_path / name), phrase)


def test_a_pickle_that_weights_only_refuses_says_how_to_keep_the_weights(tmp_path):
    path = tmp_path / "old.pth"
    torch.save({"meta": {"seed": np.int64(3)}, "state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointFileError) as info:
        read_checkpoint(path)
    _one_line(info, str(path), "weights_only=True) refuses", "numpy", "old.weights.pth", "if you trust its source")


def test_a_file_without_weights_is_an_error(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    torch.save({"epoch": 3, "note": "x"}, tmp_path / "none.pth")
    with pytest.raises(CheckpointFileError) as info:
        read_checkpoint(tmp_path / "list.pth")
    _one_line(info, "holds a list")
    with pytest.raises(CheckpointFileError) as info:
        read_checkpoint(tmp_path / "none.pth")
    _one_line(info, "holds no weights", "epoch, note")


# ---------------------------------------------------------------------------------------------------------------
# layouts and key maps


def test_layouts_are_told_apart_by_their_keys():
    def keys(*names):
        return {n: torch.zeros(1) for n in names}

    stem = ("stem.0.weight", "layer1.0.conv1.weight")
    assert detect_layout(keys(*stem)).format == "mmcv_resnet"
    assert detect_layout(keys(*(f"backbone.{k}" for k in stem))).format == "mmcv_resnet"
    assert detect_layout(keys("conv1.weight", "layer1.0.conv1.weight", "fc.weight")).format == "timm_resnet"
    assert detect_layout(keys("backbone.body.conv1.weight", "classifier.1.weight")).format == "bench"
    psp = keys("backbone.stem.0.weight", "backbone.layer1.0.conv1.weight", "decode_head.psp_modules.0.1.conv.weight")
    assert (detect_layout(psp).format, detect_layout(psp).model) == ("mmseg", "pspnet")
    assert detect_layout(psp, "mmcv_resnet").format == "mmcv_resnet"  # a whole model read as its backbone
    with pytest.raises(LayoutError) as info:
        detect_layout(keys("decode_head.aspp_modules.0.conv.weight", "backbone.stem.0.weight"), path="deeplab.pth")
    _one_line(info, "deeplab.pth is an mmseg checkpoint of another model", "aspp_modules", "PSPHead")
    with pytest.raises(LayoutError) as info:
        detect_layout(keys("encoder.weight"), path="x.pth")
    _one_line(info, "none of the known layouts", "encoder.weight", "model.checkpoint_format")
    with pytest.raises(LayoutError) as info:
        detect_layout(keys(*stem), "mmseg", path="r50.pth")
    _one_line(info, "r50.pth is not a whole mmseg model", "mmcv_resnet")
    with pytest.raises(LayoutError, match="unknown checkpoint_format 'onnx'"):
        detect_layout(keys(*stem), "onnx")


@pytest.mark.parametrize(
    "mmseg, suite",
    [
        ("backbone.stem.0.weight", "backbone.body.conv1.0.weight"),
        ("backbone.stem.7.running_var", "backbone.body.bn1.running_var"),
        ("backbone.layer4.2.downsample.1.bias", "backbone.body.layer4.2.downsample.1.bias"),
        ("decode_head.memory_value_conv.1.3.bn.running_mean", "memory_values.3.1.1.running_mean"),
        ("decode_head.query_key_conv.0.conv.weight", "query_key.0.0.weight"),
        ("decode_head.bottleneck.bn.num_batches_tracked", "bottleneck.1.num_batches_tracked"),
        ("decode_head.conv_seg.bias", "classifier.1.bias"),
        ("auxiliary_head.convs.0.bn.weight", "aux_head.0.1.weight"),
        ("auxiliary_head.conv_seg.weight", "aux_head.1.1.weight"),
    ],
)
def test_the_tmanet_key_map_goes_both_ways(mmseg, suite):
    assert to_suite_key(mmseg, "tmanet") == suite and to_mmseg_key(suite, "tmanet") == mmseg


def test_keys_without_a_place_map_to_none():
    assert to_suite_key("decode_head.conv_cat.conv.weight", "tmanet") is None  # an FCN key in a TMANet
    assert to_suite_key("decode_head.bottleneck.conv.bias", "pspnet") is None  # ConvModule has no conv bias
    assert to_suite_key("decode_head.conv_cat.conv.weight", "fcn") == "bottleneck.0.weight"
    assert to_mmseg_key("bottleneck.0.weight", "fcn") == "decode_head.conv_cat.conv.weight"
    assert to_mmseg_key("psp.stages.3.1.1.bias", "pspnet") == "decode_head.psp_modules.3.1.bn.bias"


# ---------------------------------------------------------------------------------------------------------------
# round trips, the suite's own checkpoints, export


@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_to_mmseg_and_back_is_the_identity(tmp_path, name):
    source = _filled(MODELS[name](num_classes=5), seed=1)
    container = mmseg_checkpoint(source.state_dict(), list("abcde"), align_corners=True)
    assert all(k.startswith(("backbone.", "decode_head.", "auxiliary_head.")) for k in container["state_dict"])
    assert container["meta"]["CLASSES"] == tuple("abcde") and container["meta"]["model"]["backbone"]["depth"] == 18
    torch.save(container, tmp_path / "exported.pth")
    target = _filled(MODELS[name](num_classes=5), seed=2)
    report = load_weights(target, tmp_path / "exported.pth")
    assert report.layout.format == "mmseg" and report.layout.model == name
    assert report.meta["CLASSES"] == tuple("abcde")
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_models_without_an_mmseg_counterpart_do_not_export():
    with pytest.raises(LayoutError, match="PerFrame has no mmseg counterpart"):
        mmseg_state(per_frame(num_classes=3, **SMALL).state_dict(), "PerFrame")
    variant = tmanet(num_classes=3, memory_length=2, aggregation="sum", **SMALL)
    with pytest.raises(LayoutError, match="encoding 1x1\\+3x3, aggregation sum"):
        mmseg_state(variant.state_dict(), "TMANet")


def test_a_suite_checkpoint_round_trips_and_another_models_is_named(tmp_path):
    source = _filled(MODELS["tmanet"](num_classes=4), seed=3)
    state = {"model": source.state_dict(), "config": {"model": {"name": "tmanet"}}, "iteration": 7, "optimizer": {}}
    torch.save(state, tmp_path / "checkpoint.pt")
    target = MODELS["tmanet"](num_classes=4)
    report = load_weights(target, tmp_path / "checkpoint.pt")
    assert report.layout.format == "bench" and report.meta["iteration"] == 7
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())
    with pytest.raises(LayoutError) as info:
        load_weights(per_frame(num_classes=4, **SMALL), tmp_path / "checkpoint.pt")
    _one_line(info, "holds another model than PerFrameSegmenter (written for model.name=tmanet)", "memory_keys")
    with pytest.raises(WeightsMismatchError) as info:
        load_weights(tmanet(num_classes=4, memory_length=2, key_channels=4, **SMALL), tmp_path / "checkpoint.pt")
    _one_line(info, "query_key.0.0.weight", "[8, 512, 1, 1] in the file but [4, 512, 1, 1]", "key_channels=8")


@pytest.mark.parametrize("name", ["segformer", "cffm"])
def test_a_pyramid_models_own_checkpoint_is_read_as_the_suites(tmp_path, name):
    """SegFormer and CFFM name their decoder decode_head.* as the official code does; their file is still ours."""
    build = {
        "segformer": lambda: segformer(num_classes=3, backbone="mit_tiny", decoder_channels=8),
        "cffm": lambda: cffm(num_classes=3, memory_length=3, backbone="mit_tiny", decoder_channels=8, cffm_depth=1),
    }[name]
    source = _filled(build(), seed=4)
    torch.save({"model": source.state_dict(), "config": {"model": {"name": name}}}, tmp_path / "checkpoint.pt")
    for checkpoint_format in ("auto", "bench"):
        target = build()
        report = load_weights(target, tmp_path / "checkpoint.pt", checkpoint_format)
        assert report.layout.format == "bench"
        assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())


def test_a_backbone_file_initialises_the_backbone_only_and_strictly(tmp_path):
    source = Backbone("resnet18").body.state_dict()
    torch.save({k: v for k, v in source.items()} | {"fc.weight": torch.zeros(3, 512)}, tmp_path / "r18.pth")
    model = MODELS["pspnet"](num_classes=3)
    head_before = model.bottleneck[0].weight.clone()
    report = load_weights(model, tmp_path / "r18.pth")
    assert report.backbone_only and report.ignored == ("fc.weight",) and report.layout.format == "timm_resnet"
    assert torch.equal(model.backbone.body.layer4[1].conv2.weight, source["layer4.1.conv2.weight"])
    assert torch.equal(model.bottleneck[0].weight, head_before)
    torch.save({k: v for k, v in source.items() if not k.startswith("layer4.1.")}, tmp_path / "partial.pth")
    with pytest.raises(WeightsMismatchError) as info:
        load_weights(model, tmp_path / "partial.pth")
    _one_line(info, "layer4.1.", "is missing from the file")


# ---------------------------------------------------------------------------------------------------------------
# model.pretrained_path reads through bench.weights


def test_pretrained_path_takes_the_backbone_of_a_whole_mmseg_model(tmp_path):
    source = _filled(MODELS["fcn"](num_classes=3), seed=4)
    torch.save(mmseg_checkpoint(source.state_dict(), "abc", align_corners=False), tmp_path / "fcn.pth")
    assert set(backbone_weights(tmp_path / "fcn.pth")) == set(source.backbone.body.state_dict())
    backbone = Backbone("resnet18", pretrained_path=str(tmp_path / "fcn.pth"))
    assert backbone.load_report == {"missing": [], "unexpected": [], "mismatched": []}
    assert torch.equal(backbone.body.conv1.weight, source.backbone.body.conv1.weight)
    (tmp_path / "bad.pth").write_bytes(b"")
    with pytest.raises(PretrainedWeightsError, match="model.pretrained_path: checkpoint file .* is empty"):
        Backbone("resnet18", pretrained_path=str(tmp_path / "bad.pth"))

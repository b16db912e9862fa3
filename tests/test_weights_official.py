"""Official TMANet checkpoints (wanghao9610/TMANet@1fc4784, mmseg 0.7): a state dict with the exact key names and
shapes of the released Cityscapes (T = 2, 19 classes) and CamVid (T = 4, 12 classes) files loads into the suite's
TMANet with no missing or unexpected key, and the loaded head computes what the official TMAHead computes.

The fixture is written here from the official code, not from ``bench.weights``: mmseg ``ResNetV1c`` (deep stem
``stem.{0,3,6}`` convs with BN at 1, 4, 7; bottlenecks with ``downsample.{0,1}``), ``TMAHead``
(``mmseg/models/decode_heads/tma_head.py``: ``SequenceConv`` = one mmcv ``ConvModule`` per memory slot, conv
without bias + ``bn``; key 64, value 256, bottleneck 512) and the auxiliary ``FCNHead`` (1024 -> 256, one conv).
The reference head below transcribes ``TMAHead.forward`` and ``MemoryModule.forward`` (no 1/sqrt(Ck), one
softmax over all T*H*W memory positions, ``cat([query_value, memory])``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from baselines.image_heads import pspnet
from bench.models.tmanet import tmanet
from bench.weights import LayoutError, WeightsMismatchError, load_weights, read_checkpoint
from bench.weights.keymap import to_mmseg_key, to_suite_key

KEY, VALUE, CHANNELS, AUX = 64, 256, 512, 256


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    names = ("weight", "bias", "running_mean", "running_var")
    return {f"{prefix}.{n}": (channels,) for n in names} | {f"{prefix}.num_batches_tracked": ()}


def _conv_module(prefix: str, c_out: int, c_in: int, k: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.conv.weight": (c_out, c_in, k, k)} | _bn(f"{prefix}.bn", c_out)


def resnet_v1c_shapes(blocks: tuple[int, ...] = (3, 4, 6, 3)) -> dict[str, tuple[int, ...]]:
    """mmseg ``ResNetV1c`` (depth 50: blocks 3, 4, 6, 3) keys and shapes under ``backbone.``."""
    shapes = {"backbone.stem.0.weight": (32, 3, 3, 3), "backbone.stem.3.weight": (32, 32, 3, 3)}
    shapes |= {"backbone.stem.6.weight": (64, 32, 3, 3)} | _bn("backbone.stem.1", 32) | _bn("backbone.stem.4", 32)
    shapes |= _bn("backbone.stem.7", 64)
    inplanes = 64
    for layer, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for b in range(count):
            p = f"backbone.layer{layer}.{b}"
            shapes |= {f"{p}.conv1.weight": (planes, inplanes, 1, 1), f"{p}.conv2.weight": (planes, planes, 3, 3)}
            shapes |= {f"{p}.conv3.weight": (planes * 4, planes, 1, 1)} | _bn(f"{p}.bn1", planes)
            shapes |= _bn(f"{p}.bn2", planes) | _bn(f"{p}.bn3", planes * 4)
            if b == 0:
                shapes |= {f"{p}.downsample.0.weight": (planes * 4, inplanes, 1, 1)} | _bn(
                    f"{p}.downsample.1", planes * 4
                )
            inplanes = planes * 4
    return shapes


def official_tmanet_shapes(memory_length: int, classes: int) -> dict[str, tuple[int, ...]]:
    """Every key of a released official TMANet R50-D8 checkpoint's ``state_dict``, with its shape."""
    shapes = resnet_v1c_shapes()
    for role, channels in (("key", KEY), ("value", VALUE)):
        for t in range(memory_length):
            shapes |= _conv_module(f"decode_head.memory_{role}_conv.0.{t}", channels, 2048, 1)
            shapes |= _conv_module(f"decode_head.memory_{role}_conv.1.{t}", channels, channels, 3)
        shapes |= _conv_module(f"decode_head.query_{role}_conv.0", channels, 2048, 1)
        shapes |= _conv_module(f"decode_head.query_{role}_conv.1", channels, channels, 3)
    shapes |= _conv_module("decode_head.bottleneck", CHANNELS, 2 * VALUE, 3)
    shapes |= {"decode_head.conv_seg.weight": (classes, CHANNELS, 1, 1), "decode_head.conv_seg.bias": (classes,)}
    shapes |= _conv_module("auxiliary_head.convs.0", AUX, 1024, 3)
    shapes |= {"auxiliary_head.conv_seg.weight": (classes, AUX, 1, 1), "auxiliary_head.conv_seg.bias": (classes,)}
    return shapes


def random_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Tensors of those shapes at a trained network's scale: He-normal convs, BN stats around 0 / 1."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(80000)
        elif key.endswith(("running_var", "bn.weight")) or (len(shape) == 1 and key.endswith("weight")):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif len(shape) == 1:
            state[key] = torch.randn(shape, generator=g) * 0.1
        else:
            state[key] = torch.randn(shape, generator=g) * (2.0 / (shape[1] * shape[2] * shape[3])) ** 0.5
    return state


CITYSCAPES = dict(memory_length=2, classes=19)  # configs/video/cityscapes/tmanet_r50-d8_769x769_80k_cityscapes_video.py
CAMVID = dict(memory_length=4, classes=12)  # configs/video/camvid/tmanet_r50-d8_640x640_80k_camvid_video.py


def save_official(folder, memory_length: int, classes: int, seed: int = 0):
    """An mmcv 1.x container (meta + state_dict) holding an official TMANet state dict; -> (path, state)."""
    state = random_state(official_tmanet_shapes(memory_length, classes), seed)
    meta = {"mmcv_version": "1.2.0", "CLASSES": tuple(f"c{i}" for i in range(classes)), "iter": 80000}
    path = folder / f"tmanet_t{memory_length}_k{classes}.pth"
    torch.save({"meta": meta, "state_dict": state}, path)
    return path, state


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """ "cityscapes" / "camvid" -> (path, state) of an official-layout checkpoint (written once per module)."""
    folder = tmp_path_factory.mktemp("official")
    return {
        name: save_official(folder, **release) for name, release in (("cityscapes", CITYSCAPES), ("camvid", CAMVID))
    }


RELEASES = pytest.mark.parametrize(
    "name, release", [("cityscapes", CITYSCAPES), ("camvid", CAMVID)], ids=["cityscapes-T2", "camvid-T4-12-classes"]
)


@RELEASES
def test_an_official_tmanet_checkpoint_fills_the_suite_model_exactly(released, name, release):
    path, state = released[name]
    model = tmanet(num_classes=release["classes"], memory_length=release["memory_length"])
    report = load_weights(model, path)
    assert report.layout.model == "tmanet" and report.layout.memory_length == release["memory_length"]
    assert report.loaded == len(state) == len(model.state_dict()) and not report.ignored
    assert report.meta["CLASSES"][0] == "c0" and read_checkpoint(path).container == "mmseg"
    own = model.state_dict()
    for key, value in state.items():  # every tensor landed where the key map says, unchanged
        assert torch.equal(own[to_suite_key(key, "tmanet")], value), key
        assert to_mmseg_key(to_suite_key(key, "tmanet"), "tmanet") == key


def conv_module(state: dict, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """mmcv ``ConvModule`` in eval mode: conv (no bias, padding k // 2) -> BN (eps 1e-5) -> ReLU."""
    weight = state[f"{prefix}.conv.weight"]
    x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    bn = {n: state[f"{prefix}.bn.{n}"] for n in ("weight", "bias", "running_mean", "running_var")}
    x = F.batch_norm(x, bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"], False, 0.0, 1e-5)
    return F.relu(x)


def official_tma_head(state: dict, x: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
    """``TMAHead.forward`` (eval): x (B, 2048, H, W), sequence (T, B, 2048, H, W) oldest first -> (B, K, H, W)."""
    p = "decode_head"
    t_num, batch, _, height, width = sequence.shape

    def sequence_conv(role: str) -> torch.Tensor:  # nn.Sequential(SequenceConv 1x1, SequenceConv 3x3)
        out = [conv_module(state, f"{p}.memory_{role}_conv.0.{t}", sequence[t]) for t in range(t_num)]
        return torch.stack([conv_module(state, f"{p}.memory_{role}_conv.1.{t}", out[t]) for t in range(t_num)])

    memory_keys, memory_values = sequence_conv("key"), sequence_conv("value")
    query_key = conv_module(state, f"{p}.query_key_conv.1", conv_module(state, f"{p}.query_key_conv.0", x))
    query_value = conv_module(state, f"{p}.query_value_conv.1", conv_module(state, f"{p}.query_value_conv.0", x))
    # MemoryModule.forward, matmul_norm=False
    keys = memory_keys.permute(1, 2, 0, 3, 4).contiguous().view(batch, KEY, t_num * height * width)
    query = query_key.view(batch, KEY, height * width).permute(0, 2, 1).contiguous()
    attention = F.softmax(torch.bmm(query, keys), dim=-1)
    values = memory_values.permute(1, 2, 0, 3, 4).contiguous().view(batch, VALUE, t_num * height * width)
    memory = torch.bmm(attention, values.permute(0, 2, 1).contiguous()).permute(0, 2, 1).contiguous()
    output = torch.cat([query_value, memory.view(batch, VALUE, height, width)], dim=1)
    output = conv_module(state, f"{p}.bottleneck", output)
    return F.conv2d(output, state[f"{p}.conv_seg.weight"], state[f"{p}.conv_seg.bias"])  # dropout: eval


@RELEASES
def test_the_loaded_head_computes_the_official_tmahead(released, name, release):
    path, state = released[name]
    model = tmanet(num_classes=release["classes"], memory_length=release["memory_length"], attention="reference")
    load_weights(model, path)
    g = torch.Generator().manual_seed(2)
    features = torch.relu(torch.randn(1 + release["memory_length"], 1, 2048, 5, 6, generator=g))  # post-ReLU layer4
    expected = official_tma_head(state, features[0], features[1:])
    assert expected.abs().max() > 1.0 and expected.std() > 0.1  # not a degenerate, constant output
    current = {"layer4": features[0], "layer3": torch.zeros(1, 1024, 5, 6)}
    memory = [{"layer4": f, "layer3": torch.zeros(1, 1024, 5, 6)} for f in features[1:]]
    with torch.no_grad():
        got = model.eval().decode(current, memory, None, (5, 6))["out"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_a_t2_checkpoint_in_a_t4_model_names_the_key_both_shapes_and_the_cause(released):
    path, _ = released["cityscapes"]
    with torch.device("meta"):  # the error comes from the shapes alone, before any tensor is copied
        model = tmanet(num_classes=19, memory_length=4)
    with pytest.raises(WeightsMismatchError) as info:
        load_weights(model, path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text
    assert "decode_head.memory_key_conv.0.2.conv.weight" in text and "[64, 2048, 1, 1]" in text
    assert "a T = 2 checkpoint in a T = 4 model; set model.memory_length=2" in text


def test_a_12_class_checkpoint_in_an_11_class_model_names_the_protocol(released):
    path, _ = released["camvid"]
    model = tmanet(num_classes=11, memory_length=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsMismatchError) as info:
        load_weights(model, path)
    text = str(info.value)
    assert "decode_head.conv_seg.weight (the model's classifier.1.weight)" in text
    assert "[12, 512, 1, 1] in the file but [11, 512, 1, 1] in the model" in text
    assert "a 12-class checkpoint in an 11-class model" in text and "data.camvid_protocol=tmanet12" in text
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded


def test_another_backbone_depth_or_model_is_named(released):
    path, _ = released["cityscapes"]
    with torch.device("meta"):  # shapes only: the error comes before any tensor is copied
        r101 = tmanet(num_classes=19, backbone="resnet101c")
    with pytest.raises(WeightsMismatchError, match="ResNet-50 .deep stem. checkpoint in a ResNet-101") as info:
        load_weights(r101, path)
    assert "set model.backbone=resnet50c" in str(info.value) and "backbone.layer3.6." in str(info.value)
    with torch.device("meta"):
        other = pspnet(num_classes=19)
    with pytest.raises(LayoutError, match="holds another model than PSPNetSegmenter: official TMANet") as info:
        load_weights(other, path)
    assert "set model.name=tmanet" in str(info.value)
    report = load_weights(pspnet(num_classes=3), path, checkpoint_format="mmcv_resnet")  # its backbone only
    assert report.backbone_only and report.loaded == 330 and "decode_head.bottleneck.conv.weight" in report.ignored

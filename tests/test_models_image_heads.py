"""PSPNet and FCN per-frame heads: shapes, gradients, shared parts, and mmseg's parameter counts."""

import pytest
import torch

from baselines.image_heads import PyramidPooling, fcn, head_modules, pspnet
from baselines.per_frame import per_frame
from bench.config import load_config
from bench.models.layers import Classifier, ConvBNReLU, FCNAuxHead, count_parameters
from bench.models.registry import list_models
from bench.run.model import build_model

SMALL = dict(backbone="resnet18", value_channels=16, channels=16, aux_channels=16)


def conv_bn(c_in: int, c_out: int, k: int) -> int:
    """mmcv ConvModule(conv bias=False when followed by BN) + BN: k*k*c_in*c_out + 2*c_out."""
    return k * k * c_in * c_out + 2 * c_out


def cls_seg(c_in: int, classes: int) -> int:
    """mmseg BaseDecodeHead.conv_seg: 1x1 conv with bias."""
    return c_in * classes + classes


# mmsegmentation configs/_base_/models/pspnet_r50-d8.py: PSPHead(in_channels=2048, channels=512,
# pool_scales=(1, 2, 3, 6)); auxiliary FCNHead(in_channels=1024, channels=256, num_convs=1, concat_input=False);
# configs/_base_/models/fcn_r50-d8.py: FCNHead(in_channels=2048, channels=512, num_convs=2, concat_input=True).
# Layers as in mmseg/models/decode_heads/psp_head.py (PPM: pool -> 1x1 ConvModule per bin; bottleneck 3x3
# ConvModule(in + 4*channels -> channels)) and fcn_head.py (convs 3x3, then conv_cat 3x3(in + channels -> channels)).
CLASSES = 19
PSP_HEAD = 4 * conv_bn(2048, 512, 1) + conv_bn(2048 + 4 * 512, 512, 3) + cls_seg(512, CLASSES)
FCN_HEAD = conv_bn(2048, 512, 3) + conv_bn(512, 512, 3) + conv_bn(2048 + 512, 512, 3) + cls_seg(512, CLASSES)
AUX_HEAD = conv_bn(1024, 256, 3) + cls_seg(256, CLASSES)


def test_formula_numbers():
    # the formulas written out: 4 x 1,049,600 + 18,875,392 + 9,747; 9,438,208 + 2,360,320 + 11,797,504 + 9,747
    assert (PSP_HEAD, FCN_HEAD, AUX_HEAD) == (23_083_539, 23_605_779, 2_364_691)


def test_parameter_counts_equal_mmseg_at_full_size():
    """The R50-D8 sizes without building a ResNet-50: the head modules on 2048 / 1024 input channels."""
    psp = [PyramidPooling(2048, 512, (1, 2, 3, 6)), ConvBNReLU(2048 + 4 * 512, 512, 3), Classifier(512, CLASSES)]
    assert sum(count_parameters(m) for m in psp) == PSP_HEAD
    fcn_head = [
        ConvBNReLU(2048, 512, 3),
        ConvBNReLU(512, 512, 3),
        ConvBNReLU(2048 + 512, 512, 3),
        Classifier(512, CLASSES),
    ]
    assert sum(count_parameters(m) for m in fcn_head) == FCN_HEAD
    assert count_parameters(FCNAuxHead(1024, 256, CLASSES)) == AUX_HEAD


def test_models_use_the_same_head_layout_as_the_formula():
    """The built models (resnet18: C4 = 512, C3 = 256) have exactly the formula's parameters for their sizes."""
    psp = pspnet(num_classes=5, backbone="resnet18", channels=32, aux_channels=8)
    assert sum(count_parameters(m) for m in head_modules(psp)) == 4 * conv_bn(512, 32, 1) + conv_bn(
        512 + 4 * 32, 32, 3
    ) + cls_seg(32, 5)
    net = fcn(num_classes=5, backbone="resnet18", channels=32, aux_channels=8)
    assert sum(count_parameters(m) for m in head_modules(net)) == conv_bn(512, 32, 3) + conv_bn(32, 32, 3) + conv_bn(
        512 + 32, 32, 3
    ) + cls_seg(32, 5)
    for model in (psp, net):
        assert count_parameters(model.aux_head) == conv_bn(256, 8, 3) + cls_seg(8, 5)
        assert count_parameters(model.query_value) == 0  # no TMANet value encoder


@pytest.mark.parametrize("factory", [pspnet, fcn])
def test_shapes_gradients_and_last_frame_only(factory):
    torch.manual_seed(0)
    model = factory(num_classes=4, **SMALL)
    assert model.memory_length == 0
    clip = torch.randn(2, 2, 3, 32, 40)
    out = model(clip)
    assert out["out"].shape == out["aux"].shape == (2, 4, 32, 40)
    (out["out"].square().mean() + out["aux"].square().mean()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(clip)["out"], model(clip[:, -1:])["out"])
    # backbone and aux head are the per-frame baseline's
    base = {n for n, _ in per_frame(num_classes=4, **SMALL).named_parameters() if n.startswith(("backbone", "aux"))}
    assert base <= {n for n, _ in model.named_parameters()}


def test_registered_and_built_from_config():
    assert {"pspnet", "fcn"} <= set(list_models())
    small = ["model.backbone=resnet18", "model.channels=8", "model.aux_channels=8", "model.pool_scales=[1,2]"]
    model = build_model(load_config(None, ["model.name=pspnet", "data.dataset=synthetic", *small]))
    assert model.pool_scales == (1, 2)


@pytest.mark.parametrize("scales", [[], [0, 1], [2, 2]])
def test_bad_pool_scales_one_line_error(scales):
    with pytest.raises(ValueError, match="pool_scales must be distinct positive"):
        pspnet(num_classes=3, pool_scales=scales, **SMALL)

"""Dilated convolutions on maps no larger than their dilation compute only the centre tap: same values, same grads."""

from __future__ import annotations

import copy

import timm
import torch
from torch import nn

from bench.models.backbone import LAYER3_INDEX, LAYER4_INDEX, Backbone
from bench.models.dilated import SkipPaddingTapsConv2d, skip_padding_taps


def twin_convs(dilation: int, kernel: int = 3) -> tuple[nn.Conv2d, nn.Conv2d]:
    torch.manual_seed(0)
    plain = nn.Conv2d(6, 5, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=True)
    fast = copy.deepcopy(plain)
    assert skip_padding_taps(fast) == 1 and isinstance(fast, SkipPaddingTapsConv2d)
    return plain, fast


def test_small_maps_give_the_same_values_and_gradients():
    for dilation, kernel, size in ((4, 3, (4, 4)), (4, 3, (3, 4)), (2, 5, (2, 1)), (6, 3, (5, 6))):
        plain, fast = twin_convs(dilation, kernel)
        x = torch.randn(2, 6, *size, requires_grad=True)
        x_fast = x.detach().clone().requires_grad_(True)
        out, out_fast = plain(x), fast(x_fast)
        assert torch.allclose(out, out_fast, atol=1e-5, rtol=1e-5)
        grad = torch.randn_like(out)
        out.backward(grad)
        out_fast.backward(grad)
        assert torch.allclose(x.grad, x_fast.grad, atol=1e-5, rtol=1e-5)
        assert torch.allclose(plain.weight.grad, fast.weight.grad, atol=1e-5, rtol=1e-5)
        centre = torch.zeros_like(fast.weight.grad, dtype=torch.bool)
        centre[:, :, kernel // 2, kernel // 2] = True
        assert torch.all(fast.weight.grad[~centre] == 0) and torch.all(plain.weight.grad[~centre] == 0)
        assert torch.allclose(plain.bias.grad, fast.bias.grad, atol=1e-5, rtol=1e-5)


def test_larger_maps_run_the_plain_convolution():
    plain, fast = twin_convs(4)
    x = torch.randn(1, 6, 5, 9)  # taps at +-4 reach real pixels
    assert torch.equal(plain(x), fast(x))


def test_only_same_padding_dilated_stride_one_convolutions_are_turned():
    kept = nn.Sequential(
        nn.Conv2d(3, 3, 3, padding=1),  # no dilation
        nn.Conv2d(3, 3, 3, padding=4, dilation=4, stride=2),
        nn.Conv2d(3, 3, 3, padding=2, dilation=4),  # not "same" padding
        nn.Conv2d(3, 3, 1, dilation=2),
        nn.Conv2d(3, 3, 3, padding=4, dilation=4, padding_mode="reflect"),
    )
    assert skip_padding_taps(kept) == 0
    assert all(type(m) is nn.Conv2d for m in kept)


def test_backbone_at_demo_scale_matches_timm_and_keeps_its_state_dict():
    torch.manual_seed(0)
    backbone = Backbone("resnet10t").eval()
    reference = timm.create_model(
        "resnet10t", features_only=True, output_stride=8, out_indices=(LAYER3_INDEX, LAYER4_INDEX)
    ).eval()
    assert backbone.body.state_dict().keys() == reference.state_dict().keys()
    reference.load_state_dict(backbone.body.state_dict())
    assert isinstance(backbone.body.layer4[0].conv2, SkipPaddingTapsConv2d)  # dilation 4 on 4x4 maps
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for ours, theirs in zip(backbone(image), reference(image)):
            assert ours.shape[-2:] == (4, 4)
            assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-4)

"""Backbones behind one feature-level interface: the dilated ResNets unchanged, MiT and timm pyramids (Swin),
heads that read a chosen level (TMANet on MiT), and the one-line errors for bad names and levels."""

import pytest
import torch

from baselines.dff import dff
from baselines.per_frame import per_frame
from bench.models.backbone import Backbone
from bench.models.pyramid import BackboneNameError, FeatureLevelError, PyramidBackbone, build_backbone
from bench.models.segformer import segformer
from bench.models.tmanet import tmanet

SMALL = dict(value_channels=16, channels=16, aux_channels=16)


def test_a_timm_resnet_stays_the_dilated_backbone_with_the_same_outputs():
    torch.manual_seed(0)
    built = build_backbone("resnet18").eval()
    torch.manual_seed(0)
    plain = Backbone("resnet18").eval()
    assert type(built) is Backbone
    image = torch.randn(1, 3, 40, 48)
    layer3, layer4 = plain(image)
    feats = built.features(image)
    assert built.levels == {"layer3": 256, "layer4": 512} and built.default_levels == ("layer4", "layer3")
    assert torch.equal(feats["layer3"], layer3) and torch.equal(feats["layer4"], layer4)


def test_swin_is_a_native_stride_pyramid_at_any_input_size():
    backbone = build_backbone("swin_tiny_patch4_window7_224").eval()
    assert isinstance(backbone, PyramidBackbone)
    assert backbone.levels == {"s4": 96, "s8": 192, "s16": 384, "s32": 768}
    with torch.no_grad():
        feats = backbone.features(torch.randn(1, 3, 50, 70))  # padded to 64x96 inside, cropped back
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "s4": (1, 96, 13, 18),
        "s8": (1, 192, 7, 9),
        "s16": (1, 384, 4, 5),
        "s32": (1, 768, 2, 3),
    }


def test_unknown_names_list_what_is_valid():
    with pytest.raises(BackboneNameError) as info:
        build_backbone("swin_tiny_patch4_window7")
    message = str(info.value)
    assert "\n" not in message and "mit_b0, mit_b1" in message and "swin_tiny_patch4_window7_224" in message
    with pytest.raises(BackboneNameError, match="did you mean mit_b5"):
        build_backbone("mit_b6")


@pytest.mark.parametrize("level,channels,grid", [("s8", 16, 4), ("s32", 64, 1)])
def test_tmanet_reads_the_chosen_level_of_a_mit(level, channels, grid):
    model = tmanet(num_classes=3, memory_length=2, key_channels=8, backbone="mit_tiny", feature_level=level, **SMALL)
    assert (model.level, model.aux_level, model.in_channels) == (level, "s16", channels)
    assert model.memory_keys[0][0][0].in_channels == channels
    feats = model.extract(torch.randn(2, 3, 32, 32))
    assert tuple(feats[level].shape[-2:]) == (grid, grid)
    out = model(torch.randn(2, 3, 3, 32, 32))
    assert out["out"].shape == (2, 3, 32, 32) and out["aux"].shape == (2, 3, 32, 32)
    out["out"].mean().backward()
    assert model.backbone.body.stages[0].embed.proj.weight.grad is not None


def test_default_levels_of_a_pyramid_are_its_deepest_two():
    model = per_frame(num_classes=3, backbone="mit_tiny", **SMALL)
    assert (model.level, model.aux_level) == ("s32", "s16")


def test_a_level_the_backbone_lacks_is_one_line_listing_the_valid_ones():
    with pytest.raises(FeatureLevelError) as info:
        tmanet(num_classes=3, backbone="mit_tiny", feature_level="layer4", **SMALL)
    message = str(info.value)
    assert "\n" not in message and "model.feature_level" in message
    assert "s4 (stride 4, 8 channels), s8 (stride 8, 16 channels)" in message
    with pytest.raises(FeatureLevelError, match=r"reads feature level 's4' .*layer3 \(stride 8, 256 channels\)"):
        segformer(num_classes=3, backbone="resnet18")
    with pytest.raises(FeatureLevelError, match="dilated ResNets only"):
        dff(num_classes=3, backbone="mit_tiny", **SMALL)

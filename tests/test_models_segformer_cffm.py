"""SegFormer and CFFM: parameter counts of the official MiT-B1 configurations per submodule, shapes, training
outputs, and streaming with cached reference features equal to recomputing every clip."""

import pytest
import torch

from bench.models.cffm import cffm
from bench.models.cffm_attention import CoarseToFineBlock
from bench.models.registry import RegistryError
from bench.models.segformer import segformer
from bench.models.streaming import StreamingSegmenter

VSPW_CLASSES = 124
TINY = dict(backbone="mit_tiny", decoder_channels=16)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# The official MiT-B1 CFFM (GuoleiSun/VSS-CFFM@a3e4595 local_configs/cffm/B1/cffm.b1.480x480.vspw2.160k.py:
# mit_b1, in_channels [64, 128, 320, 512], embed_dim 256, depths 2, 124 classes; head CFFMHead_clips_resize1_8 in
# mmseg/models/decode_heads/cffm_head.py, blocks BasicLayer3d3 in cffm_module/cffm_transformer.py with num_heads 8,
# window 7, expand 3, focal_level 2, focal_window 5, focal_l_clips [1, 2, 3], focal_kernel_clips [7, 5, 3]).
# Each count is written as the layer arithmetic of those definitions; the block total (846,907) was also counted
# on the official BasicLayer3d3 itself in a one-off run, whose output ours matched within 1.4e-5 (scale 24) with
# the same weights.
D, K = 256, VSPW_CLASSES
OFFICIAL_B1 = {
    "backbone": 13_151_424,  # mit_b1 (tests/test_models_mit.py derives it layer by layer)
    "linear_c1..c4": sum(c * D + D for c in (64, 128, 320, 512)),  # MLP: nn.Linear(c_i, 256) each
    "linear_fuse": 4 * D * D + 2 * D,  # ConvModule 1x1 (no bias with a norm) + BN weight/bias
    "linear_pred": D * K + K,  # nn.Conv2d(256, 124, 1): the per-frame prediction
    "block.norm1": 2 * D,
    "block.pool_layers": 7 * 7 + 1,  # nn.Linear(49, 1): the target pooled per 7x7 window
    "block.pool_layers_clips": (7 * 7 + 1) + (3 * 3 + 1) + (2 * 2 + 1),  # windows floor(7 / l), l = 1, 2, 3
    "block.attn.qkv": D * 3 * D + 3 * D,
    "block.attn.proj": D * D + D,
    "block.attn.relative_position_bias_table": (2 * 7 - 1) ** 2 * 8,
    "block.attn.relative_position_bias_table_to_neighbors": 8 * 49 * (4 * 49 - 4 * (7 - 3) ** 2),
    "block.attn.relative_position_bias_table_to_windows": 8 * (7 + 5 - 1) ** 2,
    "block.attn.relative_position_bias_table_to_windows_clips": 8 * sum((7 + k - 1) ** 2 for k in (7, 5, 3)),
    "block.norm2": 2 * D,
    "block.mlp": (D * 4 * D + 4 * D) + (4 * D * D + D),
    "linear_pred2": 2 * D * K + K,  # nn.Conv2d(512, 124, 1) on cat([features, attended])
}
BLOCK_B1 = sum(v for k, v in OFFICIAL_B1.items() if k.startswith("block."))


@pytest.fixture(scope="module")
def cffm_b1():
    return cffm(num_classes=VSPW_CLASSES, memory_length=3, backbone="mit_b1", cffm_depth=2)


def test_cffm_b1_parameter_counts_per_submodule_equal_the_official_configuration(cffm_b1):
    head, block = cffm_b1.decode_head, cffm_b1.decode_head.blocks[0]
    attn = block.attn
    ours = {
        "backbone": count(cffm_b1.backbone),
        "linear_c1..c4": count(head.frame.mlp.linear_c),
        "linear_fuse": count(head.frame.mlp.linear_fuse),
        "linear_pred": count(head.frame.linear_pred),
        "block.norm1": count(block.norm1),
        "block.pool_layers": count(block.pool_self),
        "block.pool_layers_clips": count(block.pool_refs),
        "block.attn.qkv": count(attn.qkv),
        "block.attn.proj": count(attn.proj),
        "block.attn.relative_position_bias_table": attn.bias_window.numel(),
        "block.attn.relative_position_bias_table_to_neighbors": attn.bias_neighbours.numel(),
        "block.attn.relative_position_bias_table_to_windows": attn.bias_focal.numel(),
        "block.attn.relative_position_bias_table_to_windows_clips": count(attn.bias_refs),
        "block.norm2": count(block.norm2),
        "block.mlp": count(block.mlp),
        "linear_pred2": count(head.linear_pred2),
    }
    assert ours == OFFICIAL_B1
    assert BLOCK_B1 == 846_907 and [count(b) for b in head.blocks] == [BLOCK_B1, BLOCK_B1]
    # total: 15.47 M at 124 classes; 15.39 M at Cityscapes' 19 (the CFFM README's "15.4 M params")
    assert count(cffm_b1) == 15_466_542 == sum(OFFICIAL_B1.values()) + BLOCK_B1


def test_segformer_b1_decoder_counts_equal_the_official_head():
    model = segformer(num_classes=19, backbone="mit_b1", decoder_channels=256)
    assert count(model.decode_head.mlp.linear_c) == OFFICIAL_B1["linear_c1..c4"]
    assert count(model.decode_head.mlp.linear_fuse) == OFFICIAL_B1["linear_fuse"]
    assert count(model.decode_head.linear_pred) == 256 * 19 + 19
    assert count(model.backbone) == OFFICIAL_B1["backbone"]


def test_segformer_is_per_frame_and_returns_image_size_logits():
    model = segformer(num_classes=5, **TINY).train()
    frames = torch.randn(2, 3, 3, 35, 42)
    out = model(frames)
    assert set(out) == {"out"} and out["out"].shape == (2, 5, 35, 42)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(frames)["out"], model(frames[:, -1:])["out"])


def test_references_are_pooled_coarser_the_farther_they_are():
    model = cffm(num_classes=5, memory_length=3, cffm_depth=1, **TINY).eval()
    feats = model.extract(torch.randn(1, 3, 64, 64))  # stride-8 context 8x8 -> padded 14x14: 2x2 windows
    assert tuple(feats["context"].shape) == (1, 16, 8, 8)
    grids = [tuple(p.shape[1:3]) for p in feats["pooled"][0]]
    assert grids == [(2, 2), (4, 4), (6, 6)]  # t-9: 1 token per window, t-6: 2x2, t-3: 3x3


def test_cffm_training_output_and_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = cffm(num_classes=4, memory_length=3, cffm_depth=2, **TINY).train()
    out = model(torch.randn(2, 4, 3, 32, 32))
    assert out["out"].shape == (2, 4, 32, 32) and out["aux"].shape == (2, 4, 32, 32)
    (out["out"].mean() + 0.5 * out["aux"].mean()).backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert silent == []


def test_every_reference_changes_the_prediction():
    torch.manual_seed(0)
    model = cffm(num_classes=4, memory_length=3, cffm_depth=1, **TINY).eval()
    with torch.no_grad():
        for p in model.decode_head.parameters():
            p.add_(0.1 * torch.randn_like(p))
        clip = torch.randn(1, 4, 3, 32, 32)
        base = model(clip)["out"]
        for slot in range(3):
            changed = clip.clone()
            changed[:, slot] = torch.randn(3, 32, 32)
            assert (model(changed)["out"] - base).abs().max() > 1e-4, slot


def test_streaming_with_cached_features_equals_recomputing_each_clip():
    torch.manual_seed(0)
    model = cffm(num_classes=4, memory_length=3, cffm_depth=2, **TINY).eval()
    video = [torch.randn(1, 3, 32, 32) for _ in range(6)]
    streaming, recompute = StreamingSegmenter(model, "streaming"), StreamingSegmenter(model, "recompute")
    with torch.no_grad():
        for t, frame in enumerate(video):
            cached = streaming.step(frame)
            torch.testing.assert_close(recompute.step(frame), cached, rtol=1e-4, atol=1e-5)
            clip = torch.stack([video[max(t + o, 0)] for o in (-3, -2, -1)] + [frame], dim=1)  # first frame repeated
            torch.testing.assert_close(model(clip)["out"], cached, rtol=1e-4, atol=1e-5)


def test_cffm_memory_length_and_block_settings_are_checked():
    with pytest.raises(RegistryError, match="1..3 reference frames"):
        cffm(num_classes=3, memory_length=4, **TINY)
    model = cffm(num_classes=3, memory_length=2, cffm_depth=1, **TINY)
    assert model.decode_head.blocks[0].ref_levels == (2, 3)  # the nearest frames keep the finest levels
    with pytest.raises(ValueError, match="one each per reference"):
        CoarseToFineBlock(16, heads=2, ref_levels=(1, 2), ref_kernels=(7,))

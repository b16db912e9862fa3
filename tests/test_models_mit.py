"""Mix Transformer: sizes and parameter counts of the official variants, released-checkpoint layouts, and a
numerical check against Hugging Face ``transformers``' Segformer encoder with the same random weights."""

import os
import re

import pytest
import torch

from bench.models.backbone import PretrainedWeightsError
from bench.models.mit import MIT_VARIANTS, MixTransformer
from bench.models.mit_checkpoint import CheckpointLayoutError, CheckpointSizeError, load_mit_checkpoint
from bench.models.pyramid import PyramidBackbone

ORACLE_INSTALL = "pip install -e '.[oracle]'"


def official_parameter_count(name: str) -> int:
    """MiT parameters from the layer list of NVlabs/SegFormer mmseg/models/backbones/mix_transformer.py:
    OverlapPatchEmbed (conv k x k + bias, LayerNorm), per Block: norm1, q (d x d + d), kv (d x 2d + 2d),
    proj (d x d + d), sr conv (d x d x r x r + d) and its LayerNorm when r > 1, norm2, Mlp fc1 (d x 4d + 4d),
    depth-wise 3x3 conv (4d x 9 + 4d), fc2 (4d x d + d); a LayerNorm after each stage."""
    v = MIT_VARIANTS[name]
    total, c_in = 0, 3
    for d, depth, r, k in zip(v.dims, v.depths, v.sr_ratios, (7, 3, 3, 3)):
        total += k * k * c_in * d + d + 2 * d
        hidden = v.mlp_ratio * d
        attention = (d * d + d) + (2 * d * d + 2 * d) + (d * d + d) + ((d * d * r * r + d + 2 * d) if r > 1 else 0)
        ffn = (d * hidden + hidden) + (hidden * 9 + hidden) + (hidden * d + d)
        total += depth * (2 * d + attention + 2 * d + ffn) + 2 * d
        c_in = d
    return total


@pytest.mark.parametrize(
    "name,count",
    # the formula above, and the count of the official classes mit_b0 / mit_b1 / mit_b2 built from
    # NVlabs/SegFormer@65fa8cf mix_transformer.py (whose outputs ours also matched within 4e-6 with its weights
    # loaded through the nvlabs key map: a one-off check, the official file needs mmcv/mmseg 0.x)
    [("mit_b0", 3_319_392), ("mit_b1", 13_151_424), ("mit_b2", 24_196_288)],
)
def test_parameter_counts_equal_the_official_variants(name, count):
    assert official_parameter_count(name) == count
    model = MixTransformer.from_name(name)
    assert sum(p.numel() for p in model.parameters()) == count


def test_levels_are_strides_4_to_32_with_ceil_sizes():
    model = MixTransformer.from_name("mit_tiny").eval()
    feats = model(torch.randn(2, 3, 37, 50))
    assert list(feats) == ["s4", "s8", "s16", "s32"]
    assert [tuple(f.shape) for f in feats.values()] == [
        (2, 8, 10, 13),
        (2, 16, 5, 7),
        (2, 40, 3, 4),
        (2, 64, 2, 2),
    ]


def _nvlabs_state(model: MixTransformer) -> dict:
    """Our state dict renamed to the NVlabs release layout (patch_embed1, block1.0.mlp.dwconv.dwconv, norm1)."""
    out = {}
    for key, value in model.state_dict().items():
        s, rest = re.match(r"stages\.(\d)\.(.*)", key).groups()
        n = int(s) + 1
        rest = re.sub(r"^embed\.", f"patch_embed{n}.", rest)
        rest = re.sub(r"^blocks\.(\d+)\.ffn\.dwconv\.", rf"block{n}.\1.mlp.dwconv.dwconv.", rest)
        rest = re.sub(r"^blocks\.(\d+)\.ffn\.", rf"block{n}.\1.mlp.", rest)
        rest = re.sub(r"^blocks\.(\d+)\.", rf"block{n}.\1.", rest)
        rest = re.sub(r"^norm\.", f"norm{n}.", rest)
        out[rest] = value.clone()
    out["head.weight"], out["head.bias"] = torch.zeros(1000, 64), torch.zeros(1000)  # the ImageNet classifier
    return out


def _mmseg_state(model: MixTransformer) -> dict:
    """Our state dict in mmseg's layout (mit2mmseg.py): layers.{i}.{0,1,2}, in_proj = [q; kv], 1x1-conv FFN."""
    state, out = model.state_dict(), {}
    for key, value in state.items():
        s, rest = re.match(r"stages\.(\d)\.(.*)", key).groups()
        if ".attn.kv." in rest:
            continue
        if ".attn.q." in rest:
            kind = rest.rsplit(".", 1)[1]
            value = torch.cat([value, state[key.replace(".attn.q.", ".attn.kv.")]])
            rest = rest.replace(f"attn.q.{kind}", f"attn.attn.in_proj_{kind}")
        rest = re.sub(r"^embed\.proj\.", "0.projection.", rest)
        rest = re.sub(r"^embed\.norm\.", "0.norm.", rest)
        rest = re.sub(r"^norm\.", "2.", rest)
        rest = rest.replace("attn.proj.", "attn.attn.out_proj.")
        if re.search(r"ffn\.fc[12]\.weight", rest):
            value = value[:, :, None, None]
        rest = rest.replace("ffn.fc1.", "ffn.layers.0.").replace("ffn.dwconv.", "ffn.layers.1.")
        rest = rest.replace("ffn.fc2.", "ffn.layers.4.")
        rest = re.sub(r"^blocks\.", "1.", rest)
        out[f"layers.{s}.{rest}"] = value.clone()
    return out


@pytest.mark.parametrize("layout", ["nvlabs", "mmseg"])
def test_released_layouts_load_exactly(tmp_path, layout):
    torch.manual_seed(0)
    source = MixTransformer.from_name("mit_tiny").eval()
    state = _nvlabs_state(source) if layout == "nvlabs" else _mmseg_state(source)
    path = tmp_path / f"mit_tiny_{layout}.pth"
    torch.save({"state_dict": state} if layout == "mmseg" else state, path)
    backbone = PyramidBackbone("mit_tiny", pretrained=True, pretrained_path=str(path)).eval()
    assert backbone.load_report["layout"] == layout
    assert backbone.load_report["ignored"] == (["head.bias", "head.weight"] if layout == "nvlabs" else [])
    image = torch.randn(1, 3, 40, 56)
    for level, feat in source(image).items():
        torch.testing.assert_close(backbone.features(image)[level], feat, rtol=0, atol=0)


def test_a_checkpoint_of_another_size_names_both_sizes(tmp_path):
    path = tmp_path / "mit_b0.pth"
    torch.save(_nvlabs_state(MixTransformer.from_name("mit_b0")), path)
    with pytest.raises(CheckpointSizeError) as info:
        PyramidBackbone("mit_b1", pretrained_path=str(path))
    message = str(info.value)
    assert "\n" not in message and "(mit_b0)" in message and "backbone is mit_b1" in message
    assert "model.backbone=mit_b0" in message


def test_foreign_or_incomplete_files_are_one_line_errors(tmp_path):
    foreign = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointLayoutError, match="no Mix Transformer checkpoint"):
        PyramidBackbone("mit_tiny", pretrained_path=str(foreign))
    partial = tmp_path / "partial.pth"
    state = _nvlabs_state(MixTransformer.from_name("mit_tiny"))
    del state["block4.1.attn.q.weight"]
    torch.save(state, partial)
    with pytest.raises(CheckpointLayoutError, match=r"1 missing \(e.g. \['stages.3.blocks.1.attn.q.weight'\]\)"):
        load_mit_checkpoint(MixTransformer.from_name("mit_tiny"), partial)
    with pytest.raises(PretrainedWeightsError, match="model.pretrained_path=/path/to/mit_b1.pth"):
        PyramidBackbone("mit_b1", pretrained=True)


def _hf_state(model: MixTransformer) -> dict:
    """Our weights in transformers' (>= 5) SegformerModel names: kv split into k_proj and v_proj."""
    names = {
        "embed.proj": "patch_embeddings.proj",
        "embed.norm": "patch_embeddings.layer_norm",
        "norm1": "layernorm_before",
        "norm2": "layernorm_after",
        "attn.q": "attention.q_proj",
        "attn.proj": "attention.o_proj",
        "attn.sr": "attention.sequence_reduction.sequence_reduction",
        "attn.norm": "attention.sequence_reduction.layer_norm",
        "ffn.fc1": "mlp.fc1",
        "ffn.dwconv": "mlp.dwconv.dwconv",
        "ffn.fc2": "mlp.fc2",
        "norm": "layer_norm",
    }
    out = {}
    for key, value in model.state_dict().items():
        prefix, module, kind = re.match(r"(stages\.\d\.(?:blocks\.\d+\.)?)(.*)\.(weight|bias)$", key).groups()
        if module == "attn.kv":
            k, v = value.chunk(2)
            out[f"{prefix}attention.k_proj.{kind}"], out[f"{prefix}attention.v_proj.{kind}"] = k, v
        else:
            out[f"{prefix}{names[module]}.{kind}"] = value
    return out


def test_equal_to_transformers_segformer_encoder_with_the_same_weights():
    if os.environ.get("BENCH_ORACLE") != "1":
        pytest.importorskip("transformers", reason=f"the oracle needs transformers: {ORACLE_INSTALL}")
    from transformers import SegformerConfig, SegformerModel

    torch.manual_seed(0)
    variant = MIT_VARIANTS["mit_b0"]
    config = SegformerConfig(
        depths=list(variant.depths),
        hidden_sizes=list(variant.dims),
        num_attention_heads=list(variant.heads),
        sr_ratios=list(variant.sr_ratios),
        drop_path_rate=0.0,
    )
    theirs = SegformerModel(config).eval()
    ours = MixTransformer.from_name("mit_b0").eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.05 * torch.randn_like(p))  # away from the init's zero biases and unit norms
    # transformers builds every LayerNorm with PyTorch's default epsilon; the official blocks use 1e-6
    ours.set_block_norm_eps(theirs.stages[0].blocks[0].layernorm_before.eps)
    assert theirs.load_state_dict(_hf_state(ours), strict=True)
    image = torch.randn(2, 3, 75, 101)
    with torch.no_grad():
        hidden = theirs(image, output_hidden_states=True).hidden_states
        feats = list(ours(image).values())
    assert len(hidden) == 4
    for mine, reference in zip(feats, hidden):
        torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-5)

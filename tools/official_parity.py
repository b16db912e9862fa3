"""Compare the suite's MiT and CFFM blocks with the official code, run from a checkout of it, same weights.

    python tools/official_parity.py --mix-transformer SegFormer/mmseg/models/backbones/mix_transformer.py \\
        --cffm-transformer VSS-CFFM/mmseg/models/decode_heads/cffm_module/cffm_transformer.py

Not a test: the official files import mmcv / mmseg 0.x (stubbed here: only registries and a checkpoint loader are
touched at import) and ``einops`` (``pip install einops``); the suite never imports them. It prints, for MiT-B0,
B1 and B2, the parameter counts and the largest difference of each level with the official weights loaded
through ``bench.models.mit_checkpoint``'s NVlabs key map; for CFFM, the parameters per block and submodule of
the official ``BasicLayer3d3`` (MiT-B1 settings: dim 256, depth 2, 8 heads, window 7, expand 3, focal level 2,
focal window 5, reference levels [1, 2, 3], kernels [7, 5, 3]) beside ours, and the largest output difference
of the target frame on clips of several sizes with the same random weights.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.models.cffm_attention import CoarseToFineBlock  # noqa: E402
from bench.models.mit import MixTransformer  # noqa: E402
from bench.models.mit_checkpoint import to_our_layout  # noqa: E402


def _stub_openmmlab() -> None:
    """The names the official files import from mmcv / mmseg 0.x and old timm, as inert stand-ins."""

    class Registry:
        def register_module(self, *args, **kwargs):
            return args[0] if args else (lambda cls: cls)

    for name in ("mmseg", "mmseg.models", "mmseg.models.builder", "mmseg.utils", "mmcv", "mmcv.runner"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["mmseg.models.builder"].BACKBONES = Registry()
    sys.modules["mmseg.utils"].get_root_logger = lambda: None
    sys.modules["mmcv.runner"].load_checkpoint = None
    import timm.models.registry as registry
    import timm.models.vision_transformer as vit

    registry.register_model = lambda fn: fn
    vit._cfg = getattr(vit, "_cfg", lambda **kw: kw)


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with contextlib.redirect_stdout(io.StringIO()):
        spec.loader.exec_module(module)
    return module


def check_mit(path: Path) -> None:
    _stub_openmmlab()
    official_module = _load(path, "official_mix_transformer")
    for variant in ("mit_b0", "mit_b1", "mit_b2"):
        torch.manual_seed(0)
        official = getattr(official_module, variant)().eval()
        state = {k: v + 0.01 * torch.randn_like(v) for k, v in official.state_dict().items()}
        official.load_state_dict(state)
        ours = MixTransformer.from_name(variant).eval()
        ours.load_state_dict(to_our_layout(state)[0], strict=True)
        image = torch.randn(2, 3, 67, 93)
        with torch.no_grad():
            diffs = [(a - b).abs().max().item() for a, b in zip(official(image), ours(image).values())]
        counts = [sum(p.numel() for p in m.parameters()) for m in (official, ours)]
        print(f"{variant}: parameters official {counts[0]:,} ours {counts[1]:,}; max |diff| per level {diffs}")


def _copy_block(official: torch.nn.Module, ours: CoarseToFineBlock) -> None:
    attn, mine = official.attn, ours.attn
    pairs = [
        (official.norm1, ours.norm1),
        (official.norm2, ours.norm2),
        (official.pool_layers[0], ours.pool_self),
        (official.mlp.fc1, ours.mlp[0]),
        (official.mlp.fc2, ours.mlp[2]),
        (attn.qkv, mine.qkv),
        (attn.proj, mine.proj),
        *zip(official.pool_layers_clips, ours.pool_refs),
    ]
    for source, target in pairs:
        target.load_state_dict(source.state_dict())
    with torch.no_grad():
        mine.bias_window.copy_(attn.relative_position_bias_table)
        mine.bias_neighbours.copy_(attn.relative_position_bias_table_to_neighbors)
        mine.bias_focal.copy_(attn.relative_position_bias_table_to_windows[0])
        for table, source in zip(mine.bias_refs, attn.relative_position_bias_table_to_windows_clips):
            table.copy_(source)


def check_cffm(path: Path) -> None:
    official_module = _load(path, "official_cffm_transformer")
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        official = official_module.BasicLayer3d3(
            dim=256, depth=2, num_heads=8, window_size=7, expand_size=3, pool_method="fc", focal_level=2,
            focal_window=5, focal_l_clips=[1, 2, 3], focal_kernel_clips=[7, 5, 3],
        ).eval()  # fmt: skip
    ours = torch.nn.ModuleList(CoarseToFineBlock(256) for _ in range(2)).eval()
    for block in official.blocks:
        print("official block", {n: sum(p.numel() for p in c.parameters()) for n, c in block.named_children()})
    print("our block", {n: sum(p.numel() for p in c.parameters()) for n, c in ours[0].named_children()})
    for source, target in zip(official.blocks, ours):
        for p in source.parameters():
            torch.nn.init.normal_(p, std=0.2)
        _copy_block(source, target)
    for h, w in ((60, 60), (60, 107), (17, 23), (4, 4)):
        clip = torch.randn(2, 4, 256, h, w)
        with torch.no_grad():
            reference = official(clip)[:, -1]
            tokens = clip.permute(0, 1, 3, 4, 2)
            target = tokens[:, -1]
            for block in ours:
                target = block(target, [block.pool_reference(tokens[:, s], s) for s in range(3)])
        diff = (target.permute(0, 3, 1, 2) - reference).abs().max().item()
        print(f"CFFM blocks at {h}x{w}: max |diff| {diff:.2e} (output scale {reference.abs().max().item():.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mix-transformer", type=Path, help="NVlabs/SegFormer mmseg/models/backbones/mix_transformer.py"
    )
    parser.add_argument("--cffm-transformer", type=Path, help="VSS-CFFM .../cffm_module/cffm_transformer.py")
    args = parser.parse_args()
    if args.mix_transformer:
        check_mit(args.mix_transformer)
    if args.cffm_transformer:
        check_cffm(args.cffm_transformer)


if __name__ == "__main__":
    main()

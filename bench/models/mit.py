"""Mix Transformer (MiT), the SegFormer encoder (Xie et al., NeurIPS 2021), in plain PyTorch.

Four stages; stage i embeds its input with an overlapping strided convolution (7x7 stride 4, then 3x3 stride 2),
runs ``depth`` blocks of efficient self-attention (keys and values reduced by a ``sr``x``sr`` strided conv) and a
Mix-FFN (fc -> 3x3 depth-wise conv -> GELU -> fc), and ends with a LayerNorm. The outputs are the four stage
maps at strides 4, 8, 16 and 32 (``s4`` .. ``s32``).

The variants are the paper's (Table 6) and the official ``mit_b0`` .. ``mit_b5`` classes
(NVlabs/SegFormer ``mmseg/models/backbones/mix_transformer.py``): embedding widths, heads, depths, reduction
ratios 8/4/2/1, MLP ratio 4, qkv bias, stochastic depth 0.1. ``mit_tiny`` is ours: MiT-B0 at a quarter of its
width (8/16/40/64 channels, the same heads, depths and ratios), for demo-scale runs on 32x32 frames.
LayerNorm epsilons follow the official code: 1e-6 in the blocks and after each stage, PyTorch's 1e-5 in the
patch embedding and the key/value reduction (``set_block_norm_eps`` changes the former, e.g. to compare with
an implementation that uses 1e-5 throughout).

Checkpoints: ``bench.models.mit_checkpoint`` maps the released NVlabs (``mit_b1.pth``) and mmseg layouts onto
these module names.

Usage::

    from bench.models.mit import MixTransformer
    mit = MixTransformer.from_name("mit_b1")
    feats = mit(images)      # {"s4": (B, 64, H/4, W/4), "s8": (B, 128, H/8, W/8), ..., "s32": (B, 512, H/32, W/32)}
    mit.channels             # (64, 128, 320, 512); sizes are ceil(H / stride)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

STRIDES: tuple[int, ...] = (4, 8, 16, 32)
LEVELS: tuple[str, ...] = tuple(f"s{s}" for s in STRIDES)
PATCH_KERNELS: tuple[int, ...] = (7, 3, 3, 3)
PATCH_STRIDES: tuple[int, ...] = (4, 2, 2, 2)


@dataclass(frozen=True)
class MiTVariant:
    """Widths, heads, depths and key/value reduction ratios of the four stages."""

    dims: tuple[int, int, int, int]
    heads: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    sr_ratios: tuple[int, int, int, int] = (8, 4, 2, 1)
    mlp_ratio: int = 4


_B1_DIMS, _HEADS = (64, 128, 320, 512), (1, 2, 5, 8)
MIT_VARIANTS: dict[str, MiTVariant] = {
    "mit_b0": MiTVariant((32, 64, 160, 256), _HEADS, (2, 2, 2, 2)),
    "mit_b1": MiTVariant(_B1_DIMS, _HEADS, (2, 2, 2, 2)),
    "mit_b2": MiTVariant(_B1_DIMS, _HEADS, (3, 4, 6, 3)),
    "mit_b3": MiTVariant(_B1_DIMS, _HEADS, (3, 4, 18, 3)),
    "mit_b4": MiTVariant(_B1_DIMS, _HEADS, (3, 8, 27, 3)),
    "mit_b5": MiTVariant(_B1_DIMS, _HEADS, (3, 6, 40, 3)),
    "mit_tiny": MiTVariant((8, 16, 40, 64), _HEADS, (2, 2, 2, 2)),
}


def _init_weights(module: nn.Module) -> None:
    """The official initialisation: trunc-normal(0.02) linear weights, LayerNorm 1/0, He-normal convs."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def to_tokens(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def to_map(tokens: Tensor, height: int, width: int) -> Tensor:
    """(B, H*W, C) -> (B, C, H, W)."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: conv (kernel k, stride s, padding k//2) -> LayerNorm: (B, C, H, W) ->
    tokens (B, ceil(H/s)*ceil(W/s), D) and the new (h, w)."""

    def __init__(self, in_channels: int, dim: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel, stride=stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        x = self.proj(x)
        return self.norm(to_tokens(x)), x.shape[2], x.shape[3]


class EfficientSelfAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from the map reduced by an ``sr``x``sr`` strided conv."""

    def __init__(self, dim: int, heads: int, sr_ratio: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        """Tokens (B, N, D) of an (height, width) map -> (B, N, D)."""
        b, n, d = x.shape
        q = self.q(x).reshape(b, n, self.heads, d // self.heads).transpose(1, 2)
        source = x
        if self.sr_ratio > 1:
            source = self.norm(to_tokens(self.sr(to_map(x, height, width))))
        kv = self.kv(source).reshape(b, -1, 2, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, kv[0], kv[1])
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class MixFFN(nn.Module):
    """fc1 -> 3x3 depth-wise conv -> GELU -> fc2 (the conv gives the position information MiT has no embedding for)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        x = to_tokens(self.dwconv(to_map(self.fc1(x), height, width)))
        return self.fc2(F.gelu(x))


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability ``p`` (rescaled)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype) >= self.p
        return x * keep / (1.0 - self.p)


class MiTBlock(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + ffn(norm2(x)), each with stochastic depth."""

    def __init__(self, dim: int, heads: int, sr_ratio: int, mlp_ratio: int, drop_path: float, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = EfficientSelfAttention(dim, heads, sr_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.ffn = MixFFN(dim, dim * mlp_ratio)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.ffn(self.norm2(x), height, width))


class MiTStage(nn.Module):
    """Patch embedding -> blocks -> LayerNorm: (B, C_in, H, W) -> (B, D, ceil(H/s), ceil(W/s))."""

    def __init__(self, in_channels: int, dim: int, index: int, variant: MiTVariant, drop_paths: list[float]) -> None:
        super().__init__()
        eps = 1e-6
        self.embed = PatchEmbed(in_channels, dim, PATCH_KERNELS[index], PATCH_STRIDES[index])
        self.blocks = nn.ModuleList(
            MiTBlock(dim, variant.heads[index], variant.sr_ratios[index], variant.mlp_ratio, p, eps) for p in drop_paths
        )
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        tokens, height, width = self.embed(x)
        for block in self.blocks:
            tokens = block(tokens, height, width)
        return to_map(self.norm(tokens), height, width).contiguous()


class MixTransformer(nn.Module):
    """The four-stage MiT encoder: image (B, 3, H, W) -> {"s4", "s8", "s16", "s32"} feature maps."""

    def __init__(self, variant: MiTVariant, drop_path_rate: float = 0.1, name: str = "mit") -> None:
        super().__init__()
        self.name = name
        self.variant = variant
        rates = torch.linspace(0, drop_path_rate, sum(variant.depths)).tolist()  # stochastic depth decay rule
        starts = [sum(variant.depths[:i]) for i in range(4)]
        self.stages = nn.ModuleList(
            MiTStage(
                3 if i == 0 else variant.dims[i - 1],
                variant.dims[i],
                i,
                variant,
                rates[starts[i] : starts[i] + variant.depths[i]],
            )
            for i in range(4)
        )
        self.apply(_init_weights)

    @classmethod
    def from_name(cls, name: str, drop_path_rate: float = 0.1) -> MixTransformer:
        """``mit_b0`` .. ``mit_b5`` or ``mit_tiny``; another name is a ``ValueError`` listing them."""
        if name not in MIT_VARIANTS:
            raise ValueError(f"unknown Mix Transformer {name!r}; choose one of {', '.join(MIT_VARIANTS)}")
        return cls(MIT_VARIANTS[name], drop_path_rate, name)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(self.variant.dims)

    def set_block_norm_eps(self, eps: float) -> None:
        """Set the epsilon of every block and stage LayerNorm (official: 1e-6)."""
        for stage in self.stages:
            stage.norm.eps = eps
            for block in stage.blocks:
                block.norm1.eps = block.norm2.eps = eps

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        feats: dict[str, Tensor] = {}
        x = image
        for level, stage in zip(LEVELS, self.stages):
            x = stage(x)
            feats[level] = x
        return feats

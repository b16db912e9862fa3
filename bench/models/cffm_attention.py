"""CFFM's coarse-to-fine cross-frame attention block (Sun et al., CVPR 2022, Sec. 3), written from the paper and
the official ``CffmTransformerBlock3d3`` / ``WindowAttention3d3`` (GuoleiSun/VSS-CFFM
``mmseg/models/decode_heads/cffm_module/cffm_transformer.py``) with the configuration of ``CFFMHead_clips_resize1_8``:
window 7, expand 3, one focal level of the target (window 5), reference levels (1, 2, 3) with kernels (7, 5, 3),
8 heads, MLP ratio 4, no shift.

Only the target (current) frame is a query. Its map (B, h, w, C) is normed, zero-padded to a multiple of the
window and cut into 7x7 windows; each window attends jointly (one softmax) to:

1. its own 49 tokens and 132 tokens around it (the window rolled by +-3 in both directions, cyclically, keeping
   the positions outside the window), with learned relative-position biases;
2. the target pooled to one token per window (a learned linear pooling over the 49 tokens, initialised to the
   mean) and unfolded 5x5 around the window (focal attention);
3. every reference frame k, pooled coarser the farther it is (coarse-to-fine feature assembling): the oldest
   (level 1) to one token per window, then 2x2 (level 2: the map resized to 6 cells per window and pooled 3x3),
   then 3x3 (level 3: pooled 2x2) tokens per window, unfolded with kernels 7, 5 and 3 at stride = level, so each
   window sees a 7x7, 5x5 and 3x3 neighbourhood of pooled reference tokens.

Unfolded positions that fall on the zero padding get -100 added to their scores (the official mask). The block
is pre-norm (norm1 -> attention -> residual on the target; norm2 -> MLP -> residual); reference frames pass
through unchanged, so their pooled tokens depend on the frame alone: ``pool_reference`` computes them once per
frame (``bench.models.cffm`` caches them in ``extract``). All K/V come from the block's one ``qkv`` projection.

Usage::

    block = CoarseToFineBlock(dim=256, heads=8)
    pooled = [block.pool_reference(ref_map, slot) for slot, ref_map in enumerate(ref_maps)]  # (B, h, w, C) each
    target = block(target, pooled)                                                         # (B, h, w, C)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MASK_VALUE = -100.0  # added to scores of padded positions (official value)


def window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) with H, W multiples of ``window`` -> (B * nWh * nWw, window * window, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def window_reverse(windows: Tensor, window: int, height: int, width: int) -> Tensor:
    """(B * nWh * nWw, window * window, C) -> (B, height, width, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, height, width, c)


def window_pool(x: Tensor, window: int, pool: nn.Linear) -> Tensor:
    """(B, H, W, C), H and W multiples of ``window`` -> (B, H/window, W/window, C): ``pool`` over each window."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 5, 2, 4)
    return pool(x.reshape(b, h // window, w // window, c, window * window)).squeeze(-1)


def relative_index(query: int, key: int) -> Tensor:
    """(query^2, key^2) index into a ((query + key - 1)^2) bias table: relative offsets of a query window's
    cells to a key window's cells, both grids anchored at their top-left corner (official
    ``get_relative_position_index``)."""
    q = torch.stack(torch.meshgrid(torch.arange(query), torch.arange(query), indexing="ij")).flatten(1)
    k = torch.stack(torch.meshgrid(torch.arange(key), torch.arange(key), indexing="ij")).flatten(1)
    rel = (q[:, :, None] - k[:, None, :]).permute(1, 2, 0) + (key - 1)
    return rel[..., 0] * (query + key - 1) + rel[..., 1]


def rolled_neighbour_indices(window: int, expand: int) -> Tensor:
    """Indices into the 4 * window^2 tokens of the four rolled windows (shifts (-e,-e), (-e,+e), (+e,-e),
    (+e,+e)) that lie outside the window itself: 4 * (window^2 - (window - expand)^2) of them."""
    inner = window - expand
    masks = []
    for top, left in ((True, True), (True, False), (False, True), (False, False)):
        mask = torch.ones(window, window)
        rows = slice(None, inner) if top else slice(expand, None)
        cols = slice(None, inner) if left else slice(expand, None)
        mask[rows, cols] = 0
        masks.append(mask)
    return torch.stack(masks).flatten().nonzero().view(-1)


def unfold_tokens(x: Tensor, kernel: int, stride: int, heads: int) -> tuple[Tensor, Tensor]:
    """(B, Hm, Wm, C) -> (B * L, heads, kernel^2, C / heads) tokens of each ``kernel`` x ``kernel`` patch (padding
    kernel // 2, ``stride``), and the (L, kernel^2) mask: 0 on the map, ``MASK_VALUE`` on the padding."""
    b, hm, wm, c = x.shape
    cols = F.unfold(x.permute(0, 3, 1, 2), kernel, padding=kernel // 2, stride=stride)  # (B, C*k*k, L)
    tokens = cols.view(b, c, kernel * kernel, -1).permute(0, 3, 2, 1).reshape(-1, kernel * kernel, heads, c // heads)
    ones = x.new_ones(1, 1, hm, wm)
    inside = F.unfold(ones, kernel, padding=kernel // 2, stride=stride)[0].t()  # (L, k*k)
    return tokens.transpose(1, 2), torch.where(inside > 0, 0.0, MASK_VALUE)


class CrossFrameAttention(nn.Module):
    """Window attention of the target over its neighbourhood, its pooled self and the pooled references."""

    def __init__(
        self, dim: int, heads: int, window: int, expand: int, focal_window: int, ref_kernels: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.heads, self.window, self.expand, self.focal_window = heads, window, expand, focal_window
        self.ref_kernels = tuple(ref_kernels)
        self.scale = (dim // heads) ** -0.5
        area = window * window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_window = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))  # zeros, as the official code
        neighbours = 4 * (area - (window - expand) ** 2)
        self.bias_neighbours = nn.Parameter(nn.init.trunc_normal_(torch.zeros(1, heads, area, neighbours), std=0.02))
        self.bias_focal = nn.Parameter(
            nn.init.trunc_normal_(torch.zeros(heads, (window + focal_window - 1) ** 2), std=0.02)
        )
        self.bias_refs = nn.ParameterList(
            nn.Parameter(nn.init.trunc_normal_(torch.zeros(heads, (window + k - 1) ** 2), std=0.02))
            for k in self.ref_kernels
        )
        self.register_buffer("index_window", relative_index(window, window), persistent=False)
        self.register_buffer("index_focal", relative_index(window, focal_window), persistent=False)
        for i, k in enumerate(self.ref_kernels):
            self.register_buffer(f"index_ref{i}", relative_index(window, k), persistent=False)
        self.register_buffer("neighbour_ids", rolled_neighbour_indices(window, expand), persistent=False)

    def _local_keys(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Own window + rolled neighbours: (B, H, W, C) each -> (B*nW, heads, area + neighbours, hd) each."""
        e, out = self.expand, []
        for t in (k, v):
            own = self._heads(window_partition(t, self.window))
            shifted = [torch.roll(t, shifts=(dy, dx), dims=(1, 2)) for dy, dx in ((-e, -e), (-e, e), (e, -e), (e, e))]
            rolled = self._heads(torch.cat([window_partition(s, self.window) for s in shifted], dim=1))
            out.append(torch.cat([own, rolled[:, :, self.neighbour_ids]], dim=2))
        return out[0], out[1]

    def _heads(self, tokens: Tensor) -> Tensor:
        """(N, L, C) -> (N, heads, L, C / heads)."""
        n, length, c = tokens.shape
        return tokens.view(n, length, self.heads, c // self.heads).transpose(1, 2)

    def _bias(self) -> Tensor:
        """(heads, area, keys) relative-position biases of every key group, in the keys' order."""
        area = self.window * self.window
        parts = [
            self.bias_window[self.index_window.view(-1)].view(area, area, -1).permute(2, 0, 1),
            self.bias_neighbours[0],
            self.bias_focal[:, self.index_focal.view(-1)].view(self.heads, area, -1),
        ]
        for i, table in enumerate(self.bias_refs):
            parts.append(table[:, getattr(self, f"index_ref{i}").view(-1)].view(self.heads, area, -1))
        return torch.cat(parts, dim=-1)

    def forward(self, x: Tensor, pooled_self: Tensor, pooled_refs: list[Tensor], levels: tuple[int, ...]) -> Tensor:
        """Normed padded target (B, H, W, C), its window-pooled map (B, H/7, W/7, C) and the references' pooled
        maps (B, H/7 * level, W/7 * level, C) -> attended target windows (B * nW, window^2, C)."""
        b, h, w, c = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        keys, values = self._local_keys(k, v)
        masks = [x.new_zeros(keys.shape[0] // b, keys.shape[2])]
        for source, kernel, stride in [
            (pooled_self, self.focal_window, 1),
            *zip(pooled_refs, self.ref_kernels, levels),
        ]:
            _, pk, pv = self.qkv(source).chunk(3, dim=-1)
            pk, mask = unfold_tokens(pk, kernel, stride, self.heads)
            pv, _ = unfold_tokens(pv, kernel, stride, self.heads)
            keys, values = torch.cat([keys, pk], dim=2), torch.cat([values, pv], dim=2)
            masks.append(mask)
        mask = torch.cat(masks, dim=-1).repeat(b, 1)  # (B*nW, keys): windows in (batch, row, column) order
        bias = self._bias().unsqueeze(0) + mask[:, None, None, :]
        out = F.scaled_dot_product_attention(
            self._heads(window_partition(q, self.window)), keys, values, bias, scale=self.scale
        )
        return self.proj(out.transpose(1, 2).reshape(-1, self.window * self.window, c))


class CoarseToFineBlock(nn.Module):
    """One CFFM transformer block: the target frame (B, h, w, C) attends to itself and the pooled references."""

    def __init__(
        self,
        dim: int = 256,
        heads: int = 8,
        window: int = 7,
        expand: int = 3,
        focal_window: int = 5,
        ref_levels: tuple[int, ...] = (1, 2, 3),
        ref_kernels: tuple[int, ...] = (7, 5, 3),
        mlp_ratio: int = 4,
    ) -> None:
        super().__init__()
        if len(ref_levels) != len(ref_kernels) or any(level > window for level in ref_levels):
            raise ValueError(
                f"ref_levels {ref_levels} and ref_kernels {ref_kernels}: one each per reference, <= {window}"
            )
        self.window, self.ref_levels = window, tuple(ref_levels)
        self.norm1 = nn.LayerNorm(dim)
        self.pool_self = _mean_pool(window * window)
        self.pool_refs = nn.ModuleList(_mean_pool(self.pool_size(level) ** 2) for level in self.ref_levels)
        self.attn = CrossFrameAttention(dim, heads, window, expand, focal_window, ref_kernels)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def pool_size(self, level: int) -> int:
        """Side of the window a level-``level`` reference token pools (7, 3, 2 for levels 1, 2, 3)."""
        return math.floor(self.window / level)

    def _normed_padded(self, x: Tensor) -> Tensor:
        """norm1, then zero-pad (B, h, w, C) at the bottom and right to multiples of the window."""
        h, w = x.shape[1:3]
        pad_h, pad_w = (-h) % self.window, (-w) % self.window
        return F.pad(self.norm1(x), (0, 0, 0, pad_w, 0, pad_h))

    def pool_reference(self, x: Tensor, slot: int) -> Tensor:
        """A reference frame (B, h, w, C) in memory slot ``slot`` (0 = oldest) -> its pooled tokens
        (B, nWh * level, nWw * level, C): resized (bilinear) to level * pool_size cells per window, then pooled."""
        level = self.ref_levels[slot]
        size = self.pool_size(level)
        padded = self._normed_padded(x)
        h_pool = padded.shape[1] // self.window * level * size
        w_pool = padded.shape[2] // self.window * level * size
        if (h_pool, w_pool) != tuple(padded.shape[1:3]):
            padded = F.interpolate(
                padded.permute(0, 3, 1, 2), size=(h_pool, w_pool), mode="bilinear", align_corners=False
            )
            padded = padded.permute(0, 2, 3, 1)
        return window_pool(padded.contiguous(), size, self.pool_refs[slot])

    def forward(self, x: Tensor, pooled_refs: list[Tensor]) -> Tensor:
        """Target (B, h, w, C) and ``pool_reference`` of each reference slot -> target (B, h, w, C)."""
        h, w = x.shape[1:3]
        padded = self._normed_padded(x)
        pooled_self = window_pool(padded, self.window, self.pool_self)
        windows = self.attn(padded, pooled_self, pooled_refs, self.ref_levels)
        attended = window_reverse(windows, self.window, padded.shape[1], padded.shape[2])[:, :h, :w]
        x = x + attended
        return x + self.mlp(self.norm2(x))


def _mean_pool(cells: int) -> nn.Linear:
    """A linear pooling of ``cells`` tokens into one, initialised to their mean (the official 'fc' pooling)."""
    pool = nn.Linear(cells, 1)
    nn.init.constant_(pool.weight, 1.0 / cells)
    nn.init.zeros_(pool.bias)
    return pool

"""Temporal memory attention (TMA) read, as ``MemoryModule`` of the official TMANet (docs/tmanet.md §1.5).

For every query position p of the current frame::

    read(p) = sum_{t, q} softmax_{t, q}( <Q_K(p), M_K[t](q)> ) * M_V[t](q)

* one softmax jointly over all T*H*W memory positions (not per frame);
* NO 1/sqrt(C_k) scaling (``MemoryModule(matmul_norm=False)``);
* no heads, no positional encoding, no output projection, no residual.

Two implementations with the same maths:

* ``tma_read_sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` with ``scale=1.0``; the fused kernels
  (CUDA memory-efficient attention; CPU flash attention, used on CPU for inference only) never materialise the
  (H*W) x (T*H*W) score matrix;
* ``tma_read_reference``: explicit ``bmm`` -> ``softmax`` -> ``bmm``, a transcription of the official code,
  which stores the full score matrix (1.32 GiB per sample in fp32 at 97x97, T=4).

FLOPs (``torch.utils.flop_counter.FlopCounterMode``) are counted on the true shapes: one read costs
``tma_read_flops`` = 2*B*N*(T*N)*Ck + 2*B*N*(T*N)*Cv (QK^T and SV; N = H*W; softmax not counted), the same as
the reference's two ``bmm``. The CPU inference path zero-pads the head sizes to reach the fused kernel; it runs
as the custom op ``vss_bench::tma_sdpa_padded``, whose registered FLOP formula counts the unpadded shapes.

Usage::

    from bench.models.attention import tma_read
    read = tma_read(query_key, memory_keys, memory_values, impl="sdpa")
    # query_key (B, Ck, H, W), memory_keys (B, T, Ck, H, W), memory_values (B, T, Cv, H, W) -> (B, Cv, H, W)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from bench.errors import BenchError

ATTENTION_IMPLS: tuple[str, ...] = ("sdpa", "reference")


class WindowSizeError(BenchError, ValueError):
    """A local read's window that is even, below 1, or larger than its feature map needs (a user error)."""


def _check_shapes(query_key: Tensor, memory_keys: Tensor, memory_values: Tensor) -> None:
    if query_key.dim() != 4 or memory_keys.dim() != 5 or memory_values.dim() != 5:
        raise ValueError(
            f"expected query_key (B,Ck,H,W), memory_keys (B,T,Ck,H,W), memory_values (B,T,Cv,H,W); "
            f"got {tuple(query_key.shape)}, {tuple(memory_keys.shape)}, {tuple(memory_values.shape)}"
        )
    b, ck, h, w = query_key.shape
    if memory_keys.shape[0] != b or memory_keys.shape[2] != ck or memory_keys.shape[3:] != (h, w):
        raise ValueError(f"memory_keys {tuple(memory_keys.shape)} do not match query_key {tuple(query_key.shape)}")
    if memory_values.shape[:2] != memory_keys.shape[:2] or memory_values.shape[3:] != (h, w):
        raise ValueError(
            f"memory_values {tuple(memory_values.shape)} do not match memory_keys {tuple(memory_keys.shape)}"
        )


def _flatten_memory(memory: Tensor) -> Tensor:
    """(B, T, C, H, W) -> (B, T*H*W, C), flat index t*H*W + hw as in the official code."""
    b, t, c, h, w = memory.shape
    return memory.permute(0, 1, 3, 4, 2).reshape(b, t * h * w, c)


def tma_read_flops(batch: int, positions: int, memory_positions: int, key_channels: int, value_channels: int) -> int:
    """FLOPs (2 per multiply-add) of one TMA read: ``2*B*N*M*Ck`` for QK^T plus ``2*B*N*M*Cv`` for SV (M = T*N)."""
    return 2 * batch * positions * memory_positions * (key_channels + value_channels)


@torch.library.custom_op("vss_bench::tma_sdpa_padded", mutates_args=())
def _sdpa_padded(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """SDPA (scale 1) of q (B, 1, N, Ck), k (B, 1, M, Ck), v (B, 1, M, Cv) with head sizes zero-padded to
    max(Ck, Cv), so PyTorch's fused CPU (flash) kernel applies; -> (B, 1, N, Cv). Inference only (no autograd)."""
    ck, cv = q.shape[-1], v.shape[-1]
    width = max(ck, cv)
    q, k, v = F.pad(q, (0, width - ck)), F.pad(k, (0, width - ck)), F.pad(v, (0, width - cv))
    return F.scaled_dot_product_attention(q, k, v, scale=1.0)[..., :cv].contiguous()


@_sdpa_padded.register_fake
def _(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    return q.new_empty(*q.shape[:-1], v.shape[-1])


@register_flop_formula(torch.ops.vss_bench.tma_sdpa_padded)
def _sdpa_padded_flops(
    q_shape: tuple[int, ...], k_shape: tuple[int, ...], v_shape: tuple[int, ...], *args, **kwargs
) -> int:
    """The unpadded count: the zero channels are an implementation detail, not work of the model."""
    b, heads, n, ck = q_shape
    return tma_read_flops(b * heads, n, k_shape[-2], ck, v_shape[-1])


def tma_read_sdpa(query_key: Tensor, memory_keys: Tensor, memory_values: Tensor) -> Tensor:
    """Fused TMA read: (B, Ck, H, W), (B, T, Ck, H, W), (B, T, Cv, H, W) -> (B, Cv, H, W)."""
    _check_shapes(query_key, memory_keys, memory_values)
    b, ck, h, w = query_key.shape
    q = query_key.flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, HW, Ck)
    k = _flatten_memory(memory_keys).unsqueeze(1)  # (B, 1, THW, Ck)
    v = _flatten_memory(memory_values).unsqueeze(1)  # (B, 1, THW, Cv)
    cv = v.shape[-1]
    needs_grad = torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v))
    if q.device.type == "cpu" and ck != cv and not needs_grad:
        # PyTorch's fused CPU (flash) kernel needs equal query/value head sizes, else SDPA falls back to the
        # O(N^2)-memory math path; zero channels add nothing to <q, k> and extra value channels are cut off.
        # Only without autograd: that kernel's backward measured several times slower than the math path
        # (bench.perf.attention_bench), so CPU training keeps the math path.
        out = torch.ops.vss_bench.tma_sdpa_padded(q, k, v)
    else:
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # matmul_norm=False: no 1/sqrt(Ck)
    return out.squeeze(1).transpose(1, 2).reshape(b, cv, h, w)


def tma_read_reference(query_key: Tensor, memory_keys: Tensor, memory_values: Tensor) -> Tensor:
    """Official ``MemoryModule.forward``: explicit (B, HW, THW) scores, softmax over the last axis."""
    _check_shapes(query_key, memory_keys, memory_values)
    b, ck, h, w = query_key.shape
    t, cv = memory_values.shape[1], memory_values.shape[2]
    keys = memory_keys.permute(0, 2, 1, 3, 4).reshape(b, ck, t * h * w)  # (B, Ck, THW)
    query = query_key.reshape(b, ck, h * w).permute(0, 2, 1)  # (B, HW, Ck)
    attention = F.softmax(torch.bmm(query, keys), dim=-1)  # (B, HW, THW)
    values = memory_values.permute(0, 2, 1, 3, 4).reshape(b, cv, t * h * w).permute(0, 2, 1)  # (B, THW, Cv)
    memory = torch.bmm(attention, values)  # (B, HW, Cv)
    return memory.permute(0, 2, 1).reshape(b, cv, h, w)


_IMPLS: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {"sdpa": tma_read_sdpa, "reference": tma_read_reference}


def get_tma_read(impl: str) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """The TMA read function named ``impl`` ("sdpa" or "reference")."""
    if impl not in _IMPLS:
        raise ValueError(f"unknown attention implementation {impl!r}; choose one of {', '.join(ATTENTION_IMPLS)}")
    return _IMPLS[impl]


def tma_read(query_key: Tensor, memory_keys: Tensor, memory_values: Tensor, impl: str = "sdpa") -> Tensor:
    """TMA read with the chosen implementation: -> (B, Cv, H, W)."""
    return get_tma_read(impl)(query_key, memory_keys, memory_values)


def local_window_limit(height: int, width: int) -> int:
    """The smallest odd window that covers the whole (height, width) map from every position: 2*max(h, w) - 1."""
    return 2 * max(height, width) - 1


def local_tma_read(query_key: Tensor, memory_keys: Tensor, memory_values: Tensor, window_size: int) -> Tensor:
    """TMA read restricted to a ``window_size`` x ``window_size`` window around each query position (LMANet-style,
    Paul et al., IROS 2021): one softmax jointly over the T*k*k memory positions of the window, no scaling.

    (B, Ck, H, W), (B, T, Ck, H, W), (B, T, Cv, H, W) -> (B, Cv, H, W). Keys and values are gathered with
    ``F.unfold`` (zero padding); window positions outside the map get score -inf, so a window of
    ``local_window_limit(H, W)`` = 2*max(H, W) - 1 sees every memory position exactly once and equals the global
    ``tma_read_reference``. A larger window would only add padding: a ``WindowSizeError`` (a ``ValueError``).
    Memory: the unfolded values are B*T*Cv*k*k*H*W elements.
    """
    _check_shapes(query_key, memory_keys, memory_values)
    b, ck, h, w = query_key.shape
    t, cv = memory_values.shape[1], memory_values.shape[2]
    if window_size < 1 or window_size % 2 == 0:
        raise WindowSizeError(
            f"window_size must be an odd number >= 1 (the window is centred on the query), got {window_size}"
        )
    limit = local_window_limit(h, w)
    if window_size > limit:
        raise WindowSizeError(
            f"window_size={window_size} is larger than the {h}x{w} feature map needs ({limit} covers "
            f"it from every position); lower model.window_size to at most {limit}, or use "
            f"model.name=tmanet"
        )
    k2, pad = window_size * window_size, window_size // 2

    def gather(x: Tensor) -> Tensor:  # (B, T, C, H, W) -> (B, T, C, k*k, H*W)
        return F.unfold(x.flatten(0, 1), window_size, padding=pad).view(b, t, x.shape[2], k2, h * w)

    valid = F.unfold(query_key.new_ones(1, 1, h, w), window_size, padding=pad).view(1, 1, k2, h * w) > 0
    scores = torch.einsum("bcn,btckn->btkn", query_key.flatten(2), gather(memory_keys))
    scores = scores.masked_fill(~valid, float("-inf")).flatten(1, 2)  # (B, T*k*k, HW)
    weights = F.softmax(scores, dim=1).view(b, t, k2, h * w)
    read = torch.einsum("btkn,btvkn->bvn", weights, gather(memory_values))  # (B, Cv, HW)
    return read.reshape(b, cv, h, w)

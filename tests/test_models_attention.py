"""TMA read: fused SDPA equals the official bmm/softmax transcription (values and gradients).

Also checks the maths itself: one softmax jointly over all memory positions, no 1/sqrt(Ck) scaling.
"""

import pytest
import torch

from bench.models.attention import get_tma_read, tma_read, tma_read_reference, tma_read_sdpa


def _inputs(b=2, t=3, ck=8, cv=16, h=5, w=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    # post-ReLU, as the official encoders produce
    q = torch.randn(b, ck, h, w, generator=g).relu()
    k = torch.randn(b, t, ck, h, w, generator=g).relu()
    v = torch.randn(b, t, cv, h, w, generator=g)
    return q, k, v


@pytest.mark.parametrize("t,ck,cv", [(1, 8, 16), (2, 8, 16), (4, 8, 16), (2, 16, 8), (2, 8, 8)])
def test_sdpa_matches_reference_values_and_gradients(t, ck, cv):
    q, k, v = _inputs(t=t, ck=ck, cv=cv)
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
    leaves_ref = [x.clone().requires_grad_(True) for x in (q, k, v)]
    out = tma_read_sdpa(*leaves)
    ref = tma_read_reference(*leaves_ref)
    assert out.shape == ref.shape == (2, cv, 5, 7)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    with torch.no_grad():  # inference takes the fused CPU kernel (padded head sizes)
        torch.testing.assert_close(tma_read_sdpa(q, k, v), ref, atol=1e-4, rtol=1e-4)
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    (ref * weight).sum().backward()
    for a, b in zip(leaves, leaves_ref):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4)


def test_reference_is_unscaled_softmax_over_all_memory_positions():
    q, k, v = _inputs(b=1, t=2, h=3, w=4)
    # explicit formula: scores <q(p), k(t, q')>, softmax over (t, q') jointly, no 1/sqrt(Ck)
    scores = torch.einsum("cp,tcq->ptq", q[0].flatten(1), k[0].flatten(2))  # (HW, T, HW)
    weights = scores.flatten(1).softmax(dim=-1).view_as(scores)
    expected = torch.einsum("ptq,tcq->cp", weights, v[0].flatten(2)).view(1, -1, 3, 4)
    for impl in ("sdpa", "reference"):
        torch.testing.assert_close(tma_read(q, k, v, impl=impl), expected, atol=1e-5, rtol=1e-5)


def test_softmax_is_joint_over_frames_not_per_frame():
    # frame 1's keys match the query far better: a joint softmax reads only frame 1's values,
    # a per-frame softmax would average both frames.
    q = torch.ones(1, 4, 2, 2)
    k = torch.stack([torch.zeros(1, 4, 2, 2), torch.full((1, 4, 2, 2), 5.0)], dim=1)
    v = torch.stack([torch.full((1, 3, 2, 2), -1.0), torch.full((1, 3, 2, 2), 2.0)], dim=1)
    for impl in ("sdpa", "reference"):
        torch.testing.assert_close(tma_read(q, k, v, impl=impl), torch.full((1, 3, 2, 2), 2.0))


def test_bad_shapes_and_impl_raise():
    q, k, v = _inputs()
    with pytest.raises(ValueError, match="memory_keys"):
        tma_read_sdpa(q, k[:, :, :4], v)
    with pytest.raises(ValueError, match="memory_values"):
        tma_read_reference(q, k, v[:, :2])
    with pytest.raises(ValueError, match="sdpa"):
        get_tma_read("flash")


def test_flops_are_counted_on_true_shapes_and_equal_the_reference_count():
    from torch.utils.flop_counter import FlopCounterMode

    from bench.models.attention import tma_read_flops

    b, t, ck, cv, h, w = 2, 3, 8, 16, 5, 7
    q, k, v = _inputs(b=b, t=t, ck=ck, cv=cv, h=h, w=w)
    n = h * w
    analytic = 2 * b * n * (t * n) * ck + 2 * b * n * (t * n) * cv  # QK^T + SV
    assert tma_read_flops(b, n, t * n, ck, cv) == analytic
    counts = {}
    for impl in ("sdpa", "reference"):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:  # no grad: the padded CPU kernel
            tma_read(q, k, v, impl=impl)
        counts[impl] = counter.get_total_flops()
    assert counts["sdpa"] == counts["reference"] == analytic
    # what padding Ck up to Cv would have counted instead
    assert analytic < 2 * b * n * (t * n) * 2 * max(ck, cv)

"""Streaming (cached features) == recompute (full window) == model.forward on the clip window."""

import pytest
import torch

from baselines.flow_warp import flow_warp
from baselines.per_frame import per_frame
from bench.models.streaming import StreamingSegmenter
from bench.models.tmanet import tmanet

SMALL = dict(backbone="resnet18", value_channels=16, channels=16, aux_channels=16)


def _video(n=4, b=1, h=64, w=64):
    return torch.randn(n, b, 3, h, w, generator=torch.Generator().manual_seed(0))


def _window(video, k, t):
    """Clip for time k with the first frame repeated to fill the memory: (B, T+1, 3, H, W)."""
    return torch.stack([video[max(k - t + i, 0)] for i in range(t + 1)], dim=1)


def _gt_flow(k, t, b=1, h=64, w=64):
    return torch.full((b, t, 2, h, w), 0.5 * (k + 1))


@pytest.mark.parametrize("name", ["tmanet", "per_frame", "flow_warp"])
def test_streaming_equals_recompute_equals_clip_forward(name):
    torch.manual_seed(0)
    if name == "tmanet":
        model, t = tmanet(num_classes=3, memory_length=2, key_channels=8, **SMALL), 2
    elif name == "per_frame":
        model, t = per_frame(num_classes=3, **SMALL), 0
    else:
        model, t = flow_warp(num_classes=3, memory_length=2, flow_source="ground_truth", **SMALL), 2
    model.eval()
    video = _video(n=4, b=2)
    streaming, recompute = StreamingSegmenter(model, "streaming"), StreamingSegmenter(model, "recompute")
    for k in range(len(video)):
        flow = _gt_flow(k, t, b=2) if name == "flow_warp" else None
        a = streaming.step(video[k], flow)
        b = recompute.step(video[k], flow)
        with torch.no_grad():
            expected = model(_window(video, k, t), flow)["out"]
        assert a.shape == (2, 3, 64, 64)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        torch.testing.assert_close(a, expected, atol=1e-5, rtol=0)


def test_reset_starts_a_new_stream():
    torch.manual_seed(0)
    model = tmanet(num_classes=3, memory_length=2, key_channels=8, **SMALL).eval()
    video = _video(n=3)
    stream = StreamingSegmenter(model)
    first = stream.step(video[0])
    later = [stream.step(frame) for frame in video[1:]]
    assert not torch.allclose(later[-1], stream.step(video[0]), atol=1e-6)  # memory holds other frames
    stream.reset()
    torch.testing.assert_close(stream.step(video[0]), first, atol=0, rtol=0)


def test_streaming_runs_the_backbone_once_per_frame():
    model = tmanet(num_classes=3, memory_length=2, key_channels=8, **SMALL).eval()
    calls = {"n": 0}
    model.backbone.register_forward_hook(lambda *args: calls.__setitem__("n", calls["n"] + 1))
    video = _video(n=3)
    stream = StreamingSegmenter(model, "streaming")
    for frame in video:
        stream.step(frame)
    assert calls["n"] == 3
    calls["n"] = 0
    stream = StreamingSegmenter(model, "recompute")
    for frame in video:
        stream.step(frame)
    assert calls["n"] == 9


def test_bad_mode_raises():
    with pytest.raises(ValueError, match="recompute"):
        StreamingSegmenter(per_frame(num_classes=3, **SMALL), mode="cached")

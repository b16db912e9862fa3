"""Streaming with a memory other than the last T frames (CFFM's t-9, t-6, t-3 and its first-frames table): the
cached features give what model.forward gives on the clip of those frames."""

import pytest
import torch

from bench.data.memory import memory_positions
from bench.models.streaming import StreamingSegmenter
from bench.models.tmanet import tmanet

SMALL = dict(backbone="resnet10t", value_channels=8, channels=8, aux_channels=8, key_channels=8)
CFFM = (-9, -6, -3)


def cffm_rule(position: int) -> list[int]:
    return memory_positions(position, CFFM, "repeat", preset="cffm")


def test_cffm_positions_stream_equals_recompute_equals_the_clip_forward():
    torch.manual_seed(0)
    model = tmanet(num_classes=3, memory_length=3, **SMALL).eval()
    video = torch.randn(11, 1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    streams = [StreamingSegmenter(model, mode, cffm_rule, max_lag=9) for mode in ("streaming", "recompute")]
    for k, frame in enumerate(video):
        outputs = [stream.step(frame) for stream in streams]
        clip = torch.stack([video[p] for p in cffm_rule(k)] + [frame], dim=1)
        with torch.no_grad():
            expected = model(clip)["out"]
        for out in outputs:
            torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert len(streams[0]._memory) == 9  # only what a later frame can still read


def test_a_rule_reaching_further_back_than_max_lag_is_refused():
    model = tmanet(num_classes=3, memory_length=3, **SMALL).eval()
    stream = StreamingSegmenter(model, "streaming", cffm_rule, max_lag=5)
    video = torch.randn(10, 1, 3, 16, 16)
    with pytest.raises(ValueError, match="memory position 0 of frame 6 is not kept"):
        for frame in video:
            stream.step(frame)
    with pytest.raises(ValueError, match="memory_positions needs max_lag"):
        StreamingSegmenter(model, "streaming", cffm_rule)

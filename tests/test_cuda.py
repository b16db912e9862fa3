"""CUDA paths of the suite (``pytest -m cuda``; ``make gpu-check`` runs them): AMP training steps through the real
trainer, the fused TMA read and its backward against the reference, streaming == clip forward, SyncBatchNorm under
a DDP process group, and CUDA-event timing against wall-clock timing. Every test is skipped without CUDA.
"""

from __future__ import annotations

import copy
import statistics

import pytest
import torch
from helpers import tiny_config

from bench.distributed import DistEnv
from bench.engine import trainer
from bench.evaluation.latency import timed_step
from bench.models.attention import get_tma_read
from bench.models.streaming import StreamingSegmenter
from bench.models.tmanet import tmanet
from bench.run.execute import train_job

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (make gpu-check on a GPU)"),
]

SMALL = dict(backbone="resnet18", value_channels=16, channels=16, aux_channels=16)
# The fused kernel sums the softmax in another order (and in fp32 blocks): a few float32 ulps over 4*33*33
# positions. TF32 is switched off for the reference's bmm so both sides are float32 maths.
ATTENTION_ATOL, ATTENTION_RTOL = 1e-4, 1e-4
# GPU timing: wall clock (perf_counter around a synchronised step) minus the CUDA-event time is the host's launch
# and synchronisation overhead; on a step of a few ms it must stay below 10% of the wall time + 1 ms.
EVENT_TOLERANCE_FRACTION, EVENT_TOLERANCE_MS = 0.10, 1.0


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_training_steps_through_the_trainer(tmp_path, amp):
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    cfg = tiny_config(
        "device=cuda",
        f"train.amp={amp}",
        "train.iters=3",
        "train.batch_size=2",
        "model.memory_length=1",
        f"run_dir={tmp_path}",
    )
    run = trainer.setup(train_job(cfg, tmp_path)[0], DistEnv(device=torch.device("cuda")))
    states = [trainer.step(run) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor([s.loss, s.aux_loss])).all() for s in states)
    assert all(torch.isfinite(p).all() for p in run.model.parameters())
    assert run.amp.enabled and (amp != "fp16" or run.amp.scaler.is_enabled())


@pytest.mark.parametrize("size", [17, 33])
def test_sdpa_matches_the_reference_forward_and_backward(size):
    torch.backends.cuda.matmul.allow_tf32 = False
    g = torch.Generator(device="cuda").manual_seed(0)
    shapes = [(2, 16, size, size), (2, 4, 16, size, size), (2, 4, 32, size, size)]
    inputs = [torch.rand(s, device="cuda", generator=g) for s in shapes]
    outputs, grads = [], []
    for impl in ("sdpa", "reference"):
        leaves = [x.clone().requires_grad_(True) for x in inputs]
        out = get_tma_read(impl)(*leaves)
        (out * torch.linspace(-1, 1, out.numel(), device="cuda").view_as(out)).sum().backward()
        outputs.append(out.detach())
        grads.append([x.grad for x in leaves])
    torch.testing.assert_close(outputs[0], outputs[1], atol=ATTENTION_ATOL, rtol=ATTENTION_RTOL)
    for fused, reference in zip(*grads):
        torch.testing.assert_close(fused, reference, atol=ATTENTION_ATOL, rtol=ATTENTION_RTOL)


def test_streaming_equals_the_clip_forward_on_cuda():
    torch.backends.cudnn.deterministic = True
    torch.manual_seed(0)
    model = tmanet(num_classes=3, memory_length=2, key_channels=8, **SMALL).cuda().eval()
    video = torch.randn(4, 1, 3, 64, 64, device="cuda")
    streaming, recompute = StreamingSegmenter(model, "streaming"), StreamingSegmenter(model, "recompute")
    for k in range(len(video)):
        window = torch.stack([video[max(k - 2 + i, 0)] for i in range(3)], dim=1)
        with torch.no_grad():
            expected = model(window)["out"]
        a, b = streaming.step(video[k]), recompute.step(video[k])
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(a, expected, atol=1e-4, rtol=1e-4)


def test_sync_batchnorm_under_a_single_gpu_ddp_process_group(tmp_path):
    import torch.distributed as dist
    from torch import nn

    dist.init_process_group("nccl", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        plain = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()).cuda()
        synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(plain)).cuda()
        assert any(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
        ddp = nn.parallel.DistributedDataParallel(synced, device_ids=[torch.cuda.current_device()])
        x = torch.randn(4, 3, 16, 16, device="cuda")
        a, b = plain(x), ddp(x)
        a.square().mean().backward()
        b.square().mean().backward()
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(plain[1].running_mean, synced[1].running_mean, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(plain[0].weight.grad, synced[0].weight.grad, atol=1e-5, rtol=1e-4)
    finally:
        dist.destroy_process_group()


def test_cuda_event_time_equals_wall_clock_time():
    torch.manual_seed(0)
    model = (
        tmanet(num_classes=19, memory_length=2, key_channels=32, **{**SMALL, "value_channels": 64, "channels": 128})
        .cuda()
        .eval()
    )
    stream = StreamingSegmenter(model, "recompute")
    frame = torch.randn(1, 3, 384, 384, device="cuda")
    pairs = [timed_step(stream, frame, None, torch.device("cuda"))[:2] for _ in range(13)][3:]
    wall, event = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    assert event <= wall * 1.02 + 0.05  # the events lie inside the synchronised wall-clock interval
    assert wall - event <= EVENT_TOLERANCE_FRACTION * wall + EVENT_TOLERANCE_MS, (wall, event)

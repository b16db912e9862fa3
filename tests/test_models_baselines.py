"""Per-frame and flow-warp baselines: shapes, shared decoder, RAFT (untrained, padded), GT flow, gradients."""

import pytest
import torch
from torchvision.models import optical_flow

from baselines.flow_warp import flow_warp
from baselines.per_frame import per_frame
from bench.flow.raft import RaftFlow, load_raft
from bench.models.segmenter import SegmenterBase
from bench.models.tmanet import tmanet

SMALL = dict(backbone="resnet18", value_channels=16, channels=16, aux_channels=16)


def _clip(t, b=1, h=64, w=64, seed=0):
    return torch.randn(b, t + 1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _trainable_without_grad(model):
    """Trainable parameters the loss does not reach. Residual-branch backbone weights may get an exactly zero
    gradient at init (timm, like mmseg, zero-initialises each block's last BN); all others must be non-zero."""
    return [
        n
        for n, p in model.named_parameters()
        if p.requires_grad
        and (p.grad is None or (not p.grad.abs().sum() > 0 and not n.startswith("backbone.body.layer")))
    ]


def test_per_frame_shapes_and_memory_free_decoder():
    torch.manual_seed(0)
    model = per_frame(num_classes=5, **SMALL)
    assert model.memory_length == 0 and isinstance(model, SegmenterBase)
    out = model(_clip(0, b=2, h=60, w=76))
    assert out["out"].shape == out["aux"].shape == (2, 5, 60, 76)
    (out["out"].square().mean() + out["aux"].square().mean()).backward()
    assert _trainable_without_grad(model) == []
    # the same decoder modules as TMANet's `sum` variant, minus the memory
    tma = tmanet(num_classes=5, memory_length=1, aggregation="sum", key_channels=8, **SMALL)
    tma_names = {n for n, _ in tma.named_parameters()}
    pf_names = {n for n, _ in model.named_parameters()}
    assert pf_names < tma_names
    assert {n.split(".")[0] for n in tma_names - pf_names} == {"query_key", "memory_keys", "memory_values"}
    # only the current (last) frame matters
    model.eval()
    clip = _clip(2, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(model(clip)["out"], model(clip[:, -1:])["out"])


@pytest.mark.parametrize("fusion,memory_length", [("netwarp", 1), ("concat", 2), ("netwarp", 4)])
def test_flow_warp_with_ground_truth_flow(fusion, memory_length):
    torch.manual_seed(0)
    model = flow_warp(
        num_classes=4, memory_length=memory_length, flow_source="ground_truth", flow_fusion=fusion, **SMALL
    )
    assert model.flow_net is None
    flow = torch.randn(2, memory_length, 2, 64, 64) * 3
    out = model(_clip(memory_length, b=2), flow)
    assert out["out"].shape == out["aux"].shape == (2, 4, 64, 64)
    (out["out"].square().mean() + out["aux"].square().mean()).backward()
    assert _trainable_without_grad(model) == []
    with pytest.raises(ValueError, match="ground_truth"):
        model(_clip(memory_length, b=2))
    with pytest.raises(ValueError, match="flow must be"):
        model(_clip(memory_length, b=2), flow[:, :1].repeat(1, memory_length + 1, 1, 1, 1))


@pytest.mark.parametrize("source", ["dis"])
def test_flow_warp_with_classical_flow_matches_that_flow_given_as_input(source):
    torch.manual_seed(0)
    model = flow_warp(num_classes=3, memory_length=1, flow_source=source, **SMALL).eval()
    gt = flow_warp(num_classes=3, memory_length=1, flow_source="ground_truth", **SMALL).eval()
    gt.load_state_dict(model.state_dict())
    assert not list(model.flow_net.parameters())  # no weights: the state dict is the ground-truth model's
    clip = _clip(1, h=32, w=32)
    flow = model.flow_net(clip[:, 1], clip[:, 0])[:, None]
    with torch.no_grad():
        torch.testing.assert_close(model(clip)["out"], gt(clip, flow)["out"])


def test_netwarp_weights_init_and_zero_flow_identity():
    model = flow_warp(num_classes=3, memory_length=2, flow_source="ground_truth", **SMALL).eval()
    w = model.fusion.weights
    assert w.shape == (3, 16)
    torch.testing.assert_close(w.detach().sum(0), torch.ones(16))
    assert torch.all(w[0] == 0.5)
    # zero flow and identical frames: the fusion returns the current value features unchanged
    frame = _clip(0)
    clip = frame.repeat(1, 3, 1, 1, 1)
    with torch.no_grad():
        current = model.extract(frame[:, 0])
        value = model.query_value(current["layer4"])
        fused = model.fuse(current, [current, current], torch.zeros(1, 2, 2, 64, 64), value)
        torch.testing.assert_close(fused, value, atol=1e-5, rtol=1e-5)
        assert model(clip, torch.zeros(1, 2, 2, 64, 64))["out"].shape == (1, 3, 64, 64)


@pytest.mark.parametrize("size", [(64, 64), (60, 76)])
def test_flow_warp_with_untrained_raft_small(size):
    torch.manual_seed(0)
    model = flow_warp(
        num_classes=3, memory_length=1, flow_source="raft", flow_raft="small", flow_weights="", flow_iters=2, **SMALL
    )
    model.train()
    assert not model.flow_net.raft.training  # frozen RAFT stays in eval mode
    assert not any(p.requires_grad for p in model.flow_net.parameters())
    frames = _clip(1, h=size[0], w=size[1])
    flows = model.memory_flow(model.extract(frames[:, -1]), [model.extract(frames[:, 0])], None)
    assert flows.shape == (1, 1, 2, *size) and not flows.requires_grad
    out = model(frames)
    assert out["out"].shape == out["aux"].shape == (1, 3, *size)
    (out["out"].square().mean() + out["aux"].square().mean()).backward()
    assert _trainable_without_grad(model) == []
    assert all(p.grad is None for p in model.flow_net.parameters())


def test_raft_flow_is_zero_free_of_padding_artifacts_for_identical_frames():
    # the same image twice must not produce a flow that is shifted by the padding offset
    raft = RaftFlow("small", "", iters=2)
    image = torch.randn(2, 3, 60, 76)
    flow = raft(image, image)
    assert flow.shape == (2, 2, 60, 76) and torch.isfinite(flow).all()


def test_raft_weights_from_local_file_and_offline_default(tmp_path, monkeypatch):
    torch.manual_seed(0)
    source = optical_flow.raft_small()
    path = tmp_path / "raft_small.pth"
    torch.save(source.state_dict(), path)
    loaded = load_raft("small", str(path))
    torch.testing.assert_close(loaded.state_dict(), source.state_dict())

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(optical_flow.Raft_Small_Weights, "get_state_dict", offline)
    with pytest.raises(RuntimeError, match="raft_small_C_T_V2-01064c6d.pth") as info:
        load_raft("small", "default")
    assert "hub/checkpoints" in str(info.value) and "model.flow.weights" in str(info.value)
    with pytest.raises(FileNotFoundError):
        load_raft("small", str(tmp_path / "absent.pth"))


def test_unfrozen_raft_is_trainable():
    model = flow_warp(3, memory_length=1, flow_freeze=False, flow_iters=1, **SMALL)
    model.train()
    assert model.flow_net.raft.training
    assert all(p.requires_grad for p in model.flow_net.parameters())


def test_flow_warp_invalid_arguments():
    with pytest.raises(ValueError, match="per_frame"):
        flow_warp(num_classes=3, memory_length=0, **SMALL)
    with pytest.raises(ValueError, match="ground_truth"):
        flow_warp(num_classes=3, flow_source="flownet", **SMALL)
    with pytest.raises(ValueError, match="netwarp"):
        flow_warp(num_classes=3, flow_fusion="gru", **SMALL)

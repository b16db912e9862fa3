"""TMANet: output shapes for every variant, per-slot encoders, gradients, attention impls, contract interface."""

import pytest
import torch

from bench.models.tmanet import TMANet, tmanet

SMALL = dict(backbone="resnet18", key_channels=8, value_channels=16, channels=16, aux_channels=16)


def _clip(t, b=1, h=64, w=64, seed=0):
    return torch.randn(b, t + 1, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("memory_length", [1, 2, 4])
@pytest.mark.parametrize("aggregation", ["concat", "sum"])
def test_output_shapes_train_and_eval(memory_length, aggregation):
    torch.manual_seed(0)
    model = tmanet(num_classes=5, memory_length=memory_length, aggregation=aggregation, **SMALL)
    frames = _clip(memory_length, b=2, h=64, w=48)
    with torch.no_grad():
        out = model(frames)
        assert set(out) == {"out", "aux"}
        assert out["out"].shape == out["aux"].shape == (2, 5, 64, 48)
        model.eval()
        out = model(frames)
    assert set(out) == {"out"} and out["out"].shape == (2, 5, 64, 48)
    assert model.bottleneck[0].in_channels == (32 if aggregation == "concat" else 16)


@pytest.mark.parametrize("encoding,kernels", [("1x1", [1]), ("3x3", [3]), ("1x1+3x3", [1, 3])])
def test_encodings(encoding, kernels):
    model = tmanet(num_classes=3, memory_length=2, encoding=encoding, **SMALL)
    for encoder in (model.query_key, model.query_value, *model.memory_keys, *model.memory_values):
        assert [block[0].kernel_size[0] for block in encoder] == kernels
    assert model(_clip(2))["out"].shape == (1, 3, 64, 64)


def test_memory_encoders_are_per_slot_and_not_shared():
    torch.manual_seed(0)
    model = tmanet(num_classes=3, memory_length=3, **SMALL)
    encoders = [*model.memory_keys, *model.memory_values, model.query_key, model.query_value]
    pointers = {p.data_ptr() for enc in encoders for p in enc.parameters()}
    assert len(pointers) == sum(len(list(enc.parameters())) for enc in encoders)
    assert not torch.equal(model.memory_keys[0][0][0].weight, model.memory_keys[1][0][0].weight)
    # slot order matters: swapping two memory frames changes the prediction
    model.eval()
    frames = _clip(3, seed=1)
    swapped = frames[:, [1, 0, 2, 3]]
    with torch.no_grad():
        assert not torch.allclose(model(frames)["out"], model(swapped)["out"], atol=1e-6)


def test_official_head_parameter_counts():
    # docs/tmanet.md §1.10 [X]: T=2, 19 classes -> memory encoders 2.567 M, query 1.283 M, bottleneck 2.360 M
    model = tmanet(num_classes=19, backbone="resnet50", memory_length=2)
    count = lambda *mods: sum(p.numel() for m in mods for p in m.parameters())  # noqa: E731
    assert round(count(model.memory_keys, model.memory_values) / 1e6, 3) == 2.567
    assert round(count(model.query_key, model.query_value) / 1e6, 3) == 1.283
    assert round(count(model.bottleneck) / 1e6, 3) == 2.360
    assert round(count(model.aux_head) / 1e6, 2) == 2.36


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = tmanet(num_classes=4, memory_length=2, **SMALL)
    out = model(_clip(2))
    (out["out"].square().mean() + out["aux"].square().mean()).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    # timm (like mmseg) zero-initialises each residual block's last BN, which blocks the gradient to the
    # earlier convs of that branch at init; every other parameter gets a non-zero gradient
    zero = [n for n, p in model.named_parameters() if not p.grad.abs().sum() > 0]
    assert zero and all(n.startswith("backbone.body.layer") for n in zero)
    head = [n for n, p in model.named_parameters() if not n.startswith("backbone.")]
    assert not set(head) & set(zero) and len(head) > 20


def test_sdpa_and_reference_models_agree_including_gradients():
    torch.manual_seed(0)
    fused = tmanet(num_classes=4, memory_length=2, attention="sdpa", dropout=0.0, **SMALL)
    reference = tmanet(num_classes=4, memory_length=2, attention="reference", dropout=0.0, **SMALL)
    reference.load_state_dict(fused.state_dict())
    frames = _clip(2, b=2)
    with torch.no_grad():  # the backbones are identical; compare the heads on the same features
        current = fused.extract(frames[:, -1])
        memory = [fused.extract(frames[:, i]) for i in range(2)]
    a = fused.decode(current, memory, None, (64, 64))
    b = reference.decode(current, memory, None, (64, 64))
    torch.testing.assert_close(a["out"], b["out"], atol=1e-4, rtol=1e-4)
    weight = torch.randn_like(a["out"])
    (a["out"] * weight).sum().backward()
    (b["out"] * weight).sum().backward()
    grads = dict(reference.named_parameters())
    compared = 0
    for name, p in fused.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-4, rtol=1e-3, msg=name)
            compared += 1
    assert compared == len(list(fused.parameters())) - len(list(fused.backbone.parameters())) - len(
        list(fused.aux_head.parameters())
    )


def test_forward_equals_extract_then_decode():
    torch.manual_seed(0)
    model = tmanet(num_classes=3, memory_length=2, **SMALL).eval()
    frames = _clip(2, seed=3)
    with torch.no_grad():
        direct = model(frames)["out"]
        current = model.extract(frames[:, -1])
        memory = [model.extract(frames[:, i]) for i in range(2)]
        via = model.decode(current, memory, None, (64, 64))["out"]
    torch.testing.assert_close(direct, via, atol=0, rtol=0)
    with pytest.raises(ValueError, match="memory_length=2"):
        model.decode(current, memory[:1], None, (64, 64))
    with pytest.raises(ValueError, match="3 frames"):
        model(_clip(3))


def test_invalid_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="per_frame"):
        tmanet(num_classes=3, memory_length=0, **SMALL)
    with pytest.raises(ValueError, match="1..8"):
        tmanet(num_classes=3, memory_length=9, **SMALL)
    with pytest.raises(ValueError, match="concat"):
        tmanet(num_classes=3, aggregation="max", **SMALL)
    with pytest.raises(ValueError, match="1x1"):
        tmanet(num_classes=3, encoding="5x5", **SMALL)
    assert isinstance(tmanet(num_classes=3, memory_length=1, **SMALL), TMANet)


def test_classifier_and_conv_init_follow_mmseg():
    torch.manual_seed(0)
    model = tmanet(num_classes=19, memory_length=1, **SMALL)
    cls = model.classifier[1]
    assert cls.kernel_size == (1, 1) and abs(cls.weight.std().item() - 0.01) < 0.003 and (cls.bias == 0).all()
    conv = model.bottleneck[0]
    assert conv.bias is None
    fan_out = conv.out_channels * 9
    assert abs(conv.weight.std().item() - (2 / fan_out) ** 0.5) < 0.2 * (2 / fan_out) ** 0.5

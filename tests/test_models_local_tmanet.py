"""local_tmanet: the windowed memory read equals TMANet's global read when the window covers the map; streaming."""

import pytest
import torch

from bench.config import ConfigError, load_config
from bench.models.attention import local_tma_read, local_window_limit, tma_read_reference
from bench.models.local_tmanet import local_tmanet
from bench.models.streaming import StreamingSegmenter
from bench.models.tmanet import tmanet
from bench.run.model import build_model

SMALL = dict(backbone="resnet18", value_channels=8, channels=8, aux_channels=8, key_channels=4)


def _memory(b=2, t=2, ck=4, cv=6, h=3, w=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, ck, h, w, generator=g),
        torch.randn(b, t, ck, h, w, generator=g),
        torch.randn(b, t, cv, h, w, generator=g),
    )


def test_full_window_read_equals_the_global_read():
    q, k, v = _memory()
    assert local_window_limit(3, 5) == 9
    torch.testing.assert_close(local_tma_read(q, k, v, 9), tma_read_reference(q, k, v))


def test_window_one_attends_to_the_same_position_of_every_memory_frame():
    q, k, v = _memory(t=3)
    weights = torch.softmax((q[:, None] * k).sum(2), dim=1)  # (B, T, H, W)
    expected = (weights[:, :, None] * v).sum(1)
    torch.testing.assert_close(local_tma_read(q, k, v, 1), expected)
    assert not torch.allclose(local_tma_read(q, k, v, 3), tma_read_reference(q, k, v))


def test_window_larger_than_the_map_or_even_is_a_one_line_error():
    q, k, v = _memory()
    with pytest.raises(ValueError, match=r"window_size=11 is larger than the 3x5 feature map needs \(9 covers"):
        local_tma_read(q, k, v, 11)
    with pytest.raises(ValueError, match="odd"):
        local_tmanet(num_classes=3, window_size=4, **SMALL)
    with pytest.raises(ConfigError, match="model.window_size=4 must be odd"):
        load_config(None, ["model.name=local_tmanet", "model.window_size=4"])


def test_model_with_a_covering_window_equals_tmanet_and_streams():
    torch.manual_seed(0)
    glob = tmanet(num_classes=3, memory_length=2, attention="reference", **SMALL).eval()
    local = local_tmanet(num_classes=3, memory_length=2, window_size=7, **SMALL).eval()  # 32 px -> 4x4 map
    local.load_state_dict(glob.state_dict())
    video = torch.randn(3, 1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    clip = torch.stack([video[0], video[1], video[2]], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(local(clip)["out"], glob(clip)["out"])
        stream = StreamingSegmenter(local, "streaming")
        outs = [stream.step(frame) for frame in video]
    torch.testing.assert_close(outs[-1], local(clip)["out"])
    local.window_size = 1
    with torch.no_grad():
        assert not torch.allclose(local(clip)["out"], glob(clip)["out"])
    local.window_size = 9
    with pytest.raises(ValueError, match="lower model.window_size to at most 7"):
        local(clip)


def test_built_from_config_with_gradients():
    cfg = load_config(
        None,
        [
            "model.name=local_tmanet",
            "model.window_size=3",
            "model.memory_length=1",
            "data.dataset=synthetic",
            *[f"model.{k}={v}" for k, v in SMALL.items()],
        ],
    )
    model = build_model(cfg)
    assert model.window_size == 3 and model.memory_length == 1
    out = model(torch.randn(2, 2, 3, 32, 32))
    out["out"].square().mean().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("memory_keys"))


def test_a_window_larger_than_the_map_is_a_one_line_cli_error(tmp_path, capsys):
    from bench.cli import main

    code = main(
        [
            "train",
            "configs/synthetic_tmanet.yaml",
            "model.name=local_tmanet",
            "model.window_size=9",
            f"run_dir={tmp_path}/run",
            "train.iters=1",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert "lower model.window_size to at most 7" in err

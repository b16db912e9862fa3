"""Keyframe models (DFF, Accel): the paper's training draw, warping, k = 1 == per_frame, streaming schedule,
per-frame-type latency and FLOPs, bit-identical resume, one-line errors."""

from pathlib import Path

import pytest
import torch
from helpers import TINY, as_overrides, tiny_config

from baselines.accel import accel
from baselines.dff import dff
from baselines.per_frame import per_frame
from bench.config import ConfigError, load_config
from bench.engine.checkpoint import load_checkpoint
from bench.engine.trainer import TrainHook, TrainingInterrupted
from bench.evaluation.latency import measure_latency
from bench.flow.warp import backward_warp, resize_flow
from bench.models.layers import resize_to
from bench.models.streaming import StreamingSegmenter
from bench.run.execute import train_and_evaluate

SMALL = dict(backbone="resnet18", value_channels=8, channels=8, aux_channels=8)


def _clip(k, b=2, size=32, seed=0):
    return torch.randn(b, k, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("factory", [dff, accel])
def test_training_reaches_every_trainable_parameter_and_draws_keyframes_from_torch_rng(factory):
    torch.manual_seed(0)
    model = factory(num_classes=3, keyframe_interval=3, flow_source="dis", **SMALL)
    assert model.memory_length == 2 and model.keyframe_interval == 3 and not list(model.flow_net.parameters())
    out = model(_clip(3))
    assert out["out"].shape == out["aux"].shape == (2, 3, 32, 32)
    (out["out"].square().mean() + out["aux"].square().mean()).backward()
    frozen = [n for n, p in model.named_parameters() if p.grad is None]
    assert frozen == []
    torch.manual_seed(5)
    drawn = model.clip_offsets(64, torch.device("cpu"), None)
    torch.manual_seed(5)
    assert torch.equal(drawn, model.clip_offsets(64, torch.device("cpu"), None))  # resumable: global RNG
    assert set(drawn.tolist()) == {0, 1, 2}
    model.eval()
    assert model.clip_offsets(2, torch.device("cpu"), None).tolist() == [2, 2]  # eval: the farthest keyframe


def test_dff_warps_the_keyframe_value_features_with_the_flow_to_the_keyframe():
    torch.manual_seed(0)
    model = dff(num_classes=3, keyframe_interval=3, flow_source="ground_truth", **SMALL).eval()
    clip = _clip(3, b=1)
    flow = torch.randn(1, 2, 2, 32, 32) * 2  # current -> slot 0 (two back) and slot 1 (one back)
    with torch.no_grad():
        for offset in (1, 2):
            key = model.key_features(clip[:, 2 - offset])
            value = backward_warp(key["value"], resize_flow(flow[:, 2 - offset], key["value"].shape[-2:]))
            expected = resize_to(model.classifier(model.bottleneck(value)), (32, 32))
            torch.testing.assert_close(model(clip, flow, keyframe_offset=offset)["out"], expected)
        with pytest.raises(ValueError, match="ground_truth"):
            model(clip)


def test_keyframe_interval_one_is_the_per_frame_model():
    torch.manual_seed(0)
    reference = per_frame(num_classes=3, **SMALL).eval()
    model = dff(num_classes=3, keyframe_interval=1, flow_source="dis", **SMALL).eval()
    model.load_state_dict(reference.state_dict())
    assert model.memory_length == 0
    clip = _clip(1)
    with torch.no_grad():
        torch.testing.assert_close(model(clip)["out"], reference(clip)["out"])


@pytest.mark.parametrize("factory,source", [(dff, "ground_truth"), (dff, "dis"), (accel, "farneback")])
def test_streaming_keeps_the_keyframe_and_equals_recompute_and_the_clip_forward(factory, source):
    torch.manual_seed(0)
    model = factory(num_classes=3, keyframe_interval=3, flow_source=source, **SMALL).eval()
    video = torch.randn(7, 1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    streaming, recompute = StreamingSegmenter(model, "streaming"), StreamingSegmenter(model, "recompute")
    kinds = []
    for i in range(len(video)):
        flow = torch.full((1, 2, 2, 32, 32), 0.5 * (i + 1)) if source == "ground_truth" else None
        a, b = streaming.step(video[i], flow), recompute.step(video[i], flow)
        kinds.append(streaming.last_frame_type)
        window = torch.stack([video[max(i - 2 + j, 0)] for j in range(3)], dim=1)
        with torch.no_grad():
            expected = model(window, flow, keyframe_offset=i % 3)["out"]
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
        torch.testing.assert_close(a, expected, atol=1e-5, rtol=0)
    assert kinds == ["key", "non_key", "non_key"] * 2 + ["key"]
    streaming.reset()
    assert streaming.step(video[3]) is not None and streaming.last_frame_type == "key"


def test_accel_fusion_starts_at_the_mean_of_both_branches_and_uses_the_update_backbone():
    torch.manual_seed(0)
    model = accel(num_classes=3, keyframe_interval=2, update_backbone="resnet10t", flow_source="dis", **SMALL)
    assert model.update_backbone.name == "resnet10t"
    ref, upd = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(model.fusion(ref, upd), (ref + upd) / 2)


def test_latency_reports_key_and_non_key_frames_and_cycle_flops():
    torch.manual_seed(0)
    model = dff(num_classes=3, keyframe_interval=3, flow_source="dis", **SMALL)
    frames = [(torch.randn(1, 3, 32, 32), None) for _ in range(12)]
    result = measure_latency(model, frames, warmup=1, threads=1, repeats=1, max_extra_passes=0)
    assert result["modes_agree"]
    for stats in result["modes"].values():
        types = stats["frame_types"]
        assert types["key"]["frames"] > 0 and types["non_key"]["frames"] > 0
        cycle = (types["key"]["median_ms"] + 2 * types["non_key"]["median_ms"]) / 3
        assert types["cycle_mean_ms"] == pytest.approx(cycle)
        assert stats["gflops"] == pytest.approx((stats["gflops_key"] + 2 * stats["gflops_non_key"]) / 3, rel=1e-6)
    streaming = result["modes"]["streaming"]
    assert streaming["gflops_non_key"] < 0.5 * streaming["gflops_key"]  # no backbone on non-keyframes
    # recompute re-runs the keyframe's network at every frame (DIS flow and the warp are not counted FLOPs)
    assert result["modes"]["recompute"]["gflops_non_key"] >= streaming["gflops_key"]


def test_bad_keyframe_settings_are_one_line_errors():
    for bad in (0, 17):
        with pytest.raises(ValueError, match="keyframe_interval in 1..16") as err:
            dff(num_classes=3, keyframe_interval=bad, **SMALL)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="model.keyframe_interval"):
        tiny_config("model.name=dff", "model.keyframe_interval=0")
    with pytest.raises(ValueError, match="unknown flow source 'flownet'"):
        accel(num_classes=3, flow_source="flownet", **SMALL)
    with pytest.raises(ValueError, match="eval_offset"):
        dff(num_classes=3, keyframe_interval=3, eval_offset=3, **SMALL)
    with pytest.raises(ValueError, match=r"clips \(B, 3, 3, H, W\)"):
        dff(num_classes=3, keyframe_interval=3, flow_source="dis", **SMALL)(_clip(2))


class StopAfter(TrainHook):
    def on_step_end(self, state) -> None:
        if state.iteration == 2:
            state.request_stop("StopAfter")


def test_dff_training_resumes_bit_identically(tmp_path: Path):
    settings = {
        **TINY,
        "model.name": "dff",
        "model.keyframe_interval": 3,
        "model.flow.source": "dis",
        "data.synthetic.train_clips": 4,
        "data.synthetic.val_clips": 1,
        "data.synthetic.clip_length": 4,
        "train.batch_size": 2,
        "train.iters": 4,
        "train.checkpoint_every": 2,
        "train.log_every": 2,
        "eval.temporal_consistency": False,
    }
    config = lambda run: load_config(None, as_overrides(settings) + [f"run_dir={run}"])  # noqa: E731
    train_and_evaluate(config(tmp_path / "a"), tmp_path / "a")
    with pytest.raises(TrainingInterrupted):
        train_and_evaluate(config(tmp_path / "b"), tmp_path / "b", hooks=[StopAfter()])
    train_and_evaluate(config(tmp_path / "b"), tmp_path / "b")
    first, second = load_checkpoint(tmp_path / "a" / "checkpoint.pt"), load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert first["iteration"] == second["iteration"] == 4
    for key, value in first["model"].items():
        assert torch.equal(value, second["model"][key]), key


def test_paper_numbers_of_dff_and_accel_come_with_their_source():
    from bench.report.paper import load_paper_reference, paper_number

    ref = load_paper_reference()
    accel18 = {
        "model.name": "accel",
        "model.backbone": "resnet50c",
        "model.update_backbone": "resnet18",
        "model.keyframe_interval": 5,
    }
    value, note = paper_number(ref, "cityscapes", accel18, "other")
    assert value == 72.1 and "SamvitJ/Accel" in note
    assert paper_number(ref, "cityscapes", {**accel18, "model.keyframe_interval": 2}, "other")[0] is None
    dff = {"model.name": "dff", "model.backbone": "resnet50c", "model.keyframe_interval": 5}
    assert paper_number(ref, "cityscapes", dff, "other")[0] == 69.2
    assert paper_number(ref, "cityscapes", {**dff, "model.backbone": "resnet10t"}, "other")[0] is None
    sourced = [e for e in ref["entries"] if "Accel" in e["method"]]
    assert {e["miou"] for e in sourced} == {72.1, 72.4, 74.2, 75.5, 68.7, 75.2} and all(
        e.get("source") for e in sourced
    )


@pytest.mark.parametrize("dataset", ["synthetic", "cityscapes", "camvid"])
def test_keyframe_and_flow_source_grids_expand(dataset):
    from bench.grid.spec import build_grid

    repo = Path(__file__).resolve().parent.parent
    keyframe = build_grid(repo / "ablations" / f"{dataset}_keyframe.yaml").runs
    seeds = 3 if dataset == "synthetic" else 1
    assert len(keyframe) == 2 * 4 * seeds
    assert {(r.config.model.name, r.config.model.keyframe_interval) for r in keyframe} == {
        (name, k) for name in ("dff", "accel") for k in (1, 2, 5, 10)
    }
    assert len({r.run_id for r in keyframe}) == len(keyframe)
    sources = build_grid(repo / "ablations" / f"{dataset}_flow_source.yaml").runs
    expected = {"ground_truth", "dis", "farneback"} if dataset == "synthetic" else {"raft", "dis", "farneback"}
    assert {r.config.model.flow.source for r in sources} == expected and len(sources) == 2 * 3 * seeds

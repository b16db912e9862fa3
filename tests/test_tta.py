"""Test-time augmentation (bench/evaluation/tta.py): the protocol's passes and labels, memory frames and flow
transformed with the current frame, streaming with one cache per scale equal to clip inference, and the record.
mmseg's own TTA checks the arithmetic in test_oracle_mmseg.py."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_config

from bench.evaluation.evaluate import build_eval_dataset, evaluate_model
from bench.evaluation.inference import predict_logits
from bench.evaluation.tta import AugmentedStream, Protocol, augment, augmentation_label, predict_scores, scaled_size
from bench.run.model import build_model

MS_FLIP = Protocol(scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75), flip=True)


def test_protocols_name_themselves_as_tables_do():
    assert MS_FLIP.short_label() == "ms+flip (0.5-1.75)" and len(MS_FLIP.augmentations()) == 12
    assert Protocol().short_label() == "single-scale" and Protocol().single
    assert Protocol(flip=True).short_label() == "flip" and augmentation_label([0.5], False) == "scale 0.5"
    slide = Protocol.of("slide", [769, 769], [513, 513], [0.5, 1.0], True)
    assert slide.label() == "slide 769x769/513, ms+flip (0.5-1)"
    assert scaled_size((1024, 2048), 0.75) == (768, 1536) and scaled_size((45, 61), 1.25) == (56, 76)


def test_a_single_pass_is_the_logits_themselves():
    model = build_model(tiny_config("model.memory_length=1")).eval()
    frames = torch.randn(1, 2, 3, 32, 40)
    with torch.no_grad():
        assert torch.equal(predict_scores(model, frames, None, Protocol()), predict_logits(model, frames, None))


def test_memory_frames_and_flow_take_the_current_frames_scale_and_flip():
    frames = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(1, 2, 3, 4, 6)
    flow = torch.ones(1, 1, 2, 4, 6) * torch.tensor([2.0, 1.0]).view(1, 1, 2, 1, 1)
    scaled, scaled_flow = augment(frames, flow, (2, 3), mirrored=True)
    assert scaled.shape == (1, 2, 3, 2, 3) and scaled_flow.shape == (1, 1, 2, 2, 3)
    for t in range(2):  # every frame of the clip resized and mirrored alike
        expected = torch.nn.functional.interpolate(frames[:, t], size=(2, 3), mode="bilinear").flip(-1)
        torch.testing.assert_close(scaled[:, t], expected)
    assert torch.allclose(scaled_flow[:, :, 0], torch.tensor(-1.0)) and torch.allclose(
        scaled_flow[:, :, 1], torch.tensor(0.5)
    )


def test_tta_scores_are_a_distribution_and_mirror_symmetric_for_a_mirrored_clip():
    model = build_model(tiny_config("model.memory_length=2")).eval()
    half = torch.randn(1, 3, 3, 32, 20)
    frames = torch.cat([half, half.flip(-1)], dim=-1)  # every frame mirror-symmetric
    with torch.no_grad():
        scores = predict_scores(model, frames, None, Protocol(scales=(0.75, 1.0), flip=True))
    torch.testing.assert_close(scores.sum(1), torch.ones(1, 32, 40))
    torch.testing.assert_close(scores, scores.flip(-1), rtol=0, atol=1e-5)


def test_streaming_keeps_one_cache_per_scale_and_equals_clip_inference():
    model = build_model(tiny_config("model.memory_length=2")).eval()
    protocol = Protocol(scales=(0.75, 1.0), flip=True)
    video = torch.randn(4, 1, 3, 32, 40)
    stream = AugmentedStream(model, protocol)
    assert len(stream.streams) == 4
    for frame in video:
        got = stream.step(frame)
    clip = torch.stack([video[1], video[2], video[3]], dim=1)  # memory t-2, t-1 and the current frame
    with torch.no_grad():
        expected = predict_scores(model, clip, None, protocol)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_the_record_states_the_protocol():
    cfg = tiny_config("model.name=per_frame", "eval.max_images=2", "eval.temporal_consistency=false",
                      "eval.scales=[0.75,1.0]", "eval.flip=true")  # fmt: skip
    model = build_model(cfg)
    dataset, _, _ = build_eval_dataset(cfg.data, cfg.eval, model)
    metrics = evaluate_model(model, dataset, cfg.eval)
    assert metrics["protocol"] == "whole, ms+flip (0.75-1)" and metrics["scales"] == [0.75, 1.0] and metrics["flip"]
    assert 0.0 <= metrics["miou"] <= 1.0


@pytest.mark.parametrize("scales", [[], [0.5, 0.5], [-1.0]])
def test_bad_scales_are_config_errors(scales):
    from bench.config import ConfigError

    with pytest.raises(ConfigError, match="eval.scales"):
        tiny_config(f"eval.scales={scales}")


def test_tables_show_the_protocol_in_the_row_label(tmp_path):
    from helpers import fabricate_records, write_report_spec

    from bench.report.build import build_report

    spec = write_report_spec(
        tmp_path, "tta", "methods", "model.name", [{"product": {"model.name": ["per_frame", "fcn"]}}],
        {"data": {"dataset": "synthetic"}, "eval": {"scales": [0.5, 1.0, 1.5], "flip": True}}, seeds=[0, 1],
    )  # fmt: skip
    fabricate_records(spec, lambda run: 0.5 + 0.01 * run.seed)
    build_report([str(spec)], tmp_path / "reports")
    table = (tmp_path / "reports" / "tables" / "tta.md").read_text()
    assert "per_frame [ms+flip (0.5-1.5)]" in table and "fcn [ms+flip (0.5-1.5)]" in table


def test_whole_video_streaming_under_tta_scores_the_clip_evaluation_of_the_same_frames(tmp_path):
    """Whole-video evaluation keeps one streaming cache per scale and flip (AugmentedStream); its pixels are the
    clip evaluation's under the same protocol (the memory frames scaled and mirrored with the current one)."""
    from helpers.vspw_tree import write_vspw_tree

    from bench.config import DataConfig, EvalConfig
    from bench.data.build import build_dataset, build_videos
    from bench.evaluation.videos import evaluate_videos
    from bench.models.tmanet import tmanet

    root = write_vspw_tree(tmp_path, {"val": {"3_ccc": 9}}, size=(16, 16))
    data = DataConfig(dataset="vspw", root=str(root), memory_preset="cffm")
    torch.manual_seed(0)
    model = tmanet(num_classes=124, memory_length=3, backbone="resnet10t", value_channels=8, channels=8,
                   aux_channels=8, key_channels=8).eval()  # fmt: skip
    tta = dict(scales=[0.75, 1.0], flip=True)
    streamed = evaluate_videos(model, build_videos(data, "val"), EvalConfig(vc_windows=[8], **tta), data)
    clips = evaluate_model(model, build_dataset(data, "val", 3, train=False),
                           EvalConfig(temporal_consistency=False, **tta))  # fmt: skip
    assert streamed["confusion_matrix"] == clips["confusion_matrix"]

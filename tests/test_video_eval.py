"""Whole-video evaluation (bench.evaluation.videos): streaming == recompute == the clip evaluation of the same
frames; the written submission scores the same with bench score; videos shard over ranks; a run trains with it."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_config
from helpers.vspw_tree import write_vspw_tree

from bench.config import ConfigError, DataConfig, EvalConfig
from bench.data.build import build_dataset, build_videos
from bench.data.catalog import dataset_info
from bench.distributed import DistEnv
from bench.evaluation.evaluate import evaluate_model
from bench.evaluation.scoring import score_predictions
from bench.evaluation.videos import VideoEvalError, evaluate_videos, video_groups
from bench.models.tmanet import tmanet

SMALL = dict(backbone="resnet10t", value_channels=8, channels=8, aux_channels=8, key_channels=8)
VIDEOS = {"3_ccc": 11, "5_eee": 9}  # > 8 frames: one mVC_8 window at least


@pytest.fixture(scope="module")
def vspw(tmp_path_factory) -> tuple[DataConfig, torch.nn.Module, dict]:
    """A two-video VSPW val split of 16x16 frames, a small TMANet with CFFM's memory, and its streamed metrics."""
    root = write_vspw_tree(tmp_path_factory.mktemp("vspw"), {"val": VIDEOS}, size=(16, 16))
    data = DataConfig(dataset="vspw", root=str(root), memory_preset="cffm")
    torch.manual_seed(0)
    model = tmanet(num_classes=124, memory_length=3, **SMALL).eval()
    return data, model, evaluate_videos(model, build_videos(data, "val"), EvalConfig(vc_windows=[8]), data)


def test_streamed_videos_score_the_clip_evaluation_of_the_same_frames(vspw):
    data, model, streamed = vspw
    videos = build_videos(data, "val")
    recomputed = evaluate_videos(model, videos, EvalConfig(vc_windows=[8], stream_mode="recompute"), data)
    clips = evaluate_model(model, build_dataset(data, "val", 3, train=False), EvalConfig(temporal_consistency=False))
    assert streamed["per_video"]["intersection"] == recomputed["per_video"]["intersection"]
    assert streamed["mvc"] == recomputed["mvc"]
    assert streamed["confusion_matrix"] == clips["confusion_matrix"]  # every frame, the same clip: same pixels
    assert streamed["miou"] == pytest.approx(clips["miou"])
    assert (streamed["num_videos"], streamed["num_images"], streamed["miou_convention"]) == (2, 20, "nonzero_union")
    assert streamed["mvc_8"] == streamed["mvc"]["official"]["mvc_8"] and streamed["mvc_variant"] == "official"
    assert streamed["mvc"]["official"]["counts"]["8"]["videos"] == 2


def test_the_written_submission_scores_the_same_with_bench_score(vspw, tmp_path):
    data, model, _ = vspw
    videos = build_videos(data, "val")
    ev = EvalConfig(vc_windows=[8], miou_convention="present_in_gt")
    timings: dict[str, float] = {}
    metrics = evaluate_videos(
        model, videos, ev, data, out_dir=tmp_path, palette=dataset_info(data).palette, timings=timings
    )
    scored = score_predictions(tmp_path, videos, convention="present_in_gt", windows=[8])
    for key in ("miou", "miou_nonzero_union", "mvc", "per_video", "confusion_matrix"):
        assert scored[key] == metrics[key], key
    assert set(timings) == {"read", "predict", "score", "write"} and all(v > 0 for v in timings.values())


def test_videos_are_sharded_over_ranks_and_each_scores_its_own(vspw, monkeypatch):
    data, model, whole = vspw
    monkeypatch.setattr("bench.evaluation.videos.all_reduce_sum", lambda tensor, env: tensor)
    monkeypatch.setattr("bench.evaluation.videos.all_gather_list", lambda items, env: list(items))
    videos = build_videos(data, "val")
    ev = EvalConfig(vc_windows=[8])
    # without a process group, each rank keeps its own share: what all_gather_list would hand the others
    shards = [evaluate_videos(model, videos, ev, data, DistEnv(rank=r, world_size=2)) for r in (0, 1)]
    assert [s["per_video"]["names"] for s in shards] == [["3_ccc"], ["5_eee"]]  # video i on rank i % 2
    for key in ("frames", "intersection", "union", "label_pixels"):
        assert [s["per_video"][key][0] for s in shards] == whole["per_video"][key]
    total = torch.tensor(shards[0]["confusion_matrix"]) + torch.tensor(shards[1]["confusion_matrix"])
    assert total.tolist() == whole["confusion_matrix"]


def test_a_run_trains_and_evaluates_whole_synthetic_videos(tmp_path):
    from bench.run.execute import train_and_evaluate

    cfg = tiny_config(
        "train.iters=2",
        "eval.whole_videos=true",
        "eval.vc_windows=[4, 8]",
        "data.synthetic.val_video_length=9",
        "data.synthetic.val_clips=3",
        settings={"model.memory_length": 1},
    )
    record = train_and_evaluate(cfg, tmp_path / "run")
    metrics = record["metrics"]
    assert metrics["whole_videos"] and metrics["num_videos"] == 3 and metrics["num_images"] == 27
    assert metrics["mvc"]["official"]["counts"]["4"]["windows"] == 3 * 5  # range(9 - 4) windows per video
    assert 0 <= metrics["mvc_4"] <= 1 and 0 <= metrics["mvc_8"] <= 1


def test_videos_of_one_length_stream_together_with_the_same_result():
    cfg = tiny_config(
        "data.synthetic.val_video_length=9", "data.synthetic.val_clips=5", settings={"model.memory_length": 2}
    )
    torch.manual_seed(0)
    model = tmanet(num_classes=6, memory_length=2, **SMALL).eval()
    videos = build_videos(cfg.data, "val")
    one = evaluate_videos(model, videos, EvalConfig(vc_windows=[8]), cfg.data)
    batched = evaluate_videos(model, videos, EvalConfig(vc_windows=[8], batch_size=2), cfg.data)
    assert batched["per_video"] == one["per_video"] and batched["mvc"] == one["mvc"]
    assert video_groups(videos, videos.names, 2) == [videos.names[0:2], videos.names[2:4], videos.names[4:]]


def test_files_left_out_by_missing_files_skip_are_listed_in_the_metrics(vspw, tmp_path):
    data, model, _ = vspw
    root = write_vspw_tree(tmp_path, {"val": {"7_ggg": 9}}, size=(16, 16))
    missing = root / "data" / "7_ggg" / "origin" / "00000004.jpg"
    missing.unlink()
    skipping = DataConfig(dataset="vspw", root=str(root), memory_preset="cffm", missing_files="skip")
    clips = evaluate_model(
        model, build_dataset(skipping, "val", 3, train=False), EvalConfig(temporal_consistency=False)
    )
    streamed = evaluate_videos(model, build_videos(skipping, "val"), EvalConfig(vc_windows=[4]), skipping)
    assert clips["skipped_files"] == streamed["skipped_files"] == [str(missing)]
    assert clips["num_images"] == streamed["num_images"] == 8


def test_whole_videos_need_dense_labels_and_whole_frames():
    with pytest.raises(ConfigError, match="needs densely labelled videos"):
        tiny_config("eval.whole_videos=true", "data.dataset=camvid")
    with pytest.raises(ConfigError, match="set eval.mode=whole"):
        tiny_config("eval.whole_videos=true", "eval.mode=slide")
    with pytest.raises(ConfigError, match="at least 2 frames"):
        tiny_config("eval.whole_videos=true", "eval.vc_windows=[1]")


def test_a_model_reading_ground_truth_flow_gets_the_synthetic_flow_to_the_previous_frame():
    from baselines.flow_warp import flow_warp

    cfg = tiny_config(
        "data.synthetic.val_video_length=9", "data.synthetic.val_clips=2", settings={"model.memory_length": 1}
    )
    torch.manual_seed(0)
    small = {k: v for k, v in SMALL.items() if k != "key_channels"}
    model = flow_warp(num_classes=6, memory_length=1, flow_source="ground_truth", **small).eval()
    videos = build_videos(cfg.data, "val")
    metrics = evaluate_videos(model, videos, EvalConfig(vc_windows=[8]), cfg.data)
    assert metrics["num_images"] == 18
    frames = list(videos.frames(videos.names[0]))
    assert frames[0].flow.abs().sum() == 0 and frames[1].flow.shape == (2, 32, 32)
    with pytest.raises(VideoEvalError, match="needs model.memory_length=1"):
        two = flow_warp(num_classes=6, memory_length=2, flow_source="ground_truth", **small).eval()
        evaluate_videos(two, videos, EvalConfig(vc_windows=[8]), cfg.data)


def test_cffm_streams_its_t9_t6_t3_references_on_whole_vspw_videos(tmp_path):
    from bench.models.registry import create

    root = write_vspw_tree(tmp_path, {"val": {"3_ccc": 10}}, size=(32, 32))
    data = DataConfig(dataset="vspw", root=str(root), memory_preset="cffm")
    torch.manual_seed(0)
    model = create("cffm", 124, {"backbone": "mit_tiny", "pretrained": False, "memory_length": 3}).eval()
    videos = build_videos(data, "val")
    streamed = evaluate_videos(model, videos, EvalConfig(vc_windows=[8]), data)
    recomputed = evaluate_videos(model, videos, EvalConfig(vc_windows=[8], stream_mode="recompute"), data)
    clips = evaluate_model(model, build_dataset(data, "val", 3, train=False), EvalConfig(temporal_consistency=False))
    assert streamed["confusion_matrix"] == recomputed["confusion_matrix"] == clips["confusion_matrix"]

"""Whole / sliding-window inference, the evaluation loop (with temporal consistency) and ``bench eval``."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import TINY, as_overrides, tiny_builder
from torch import nn

from bench.config import ConfigError, to_dict
from bench.data.catalog import dataset_info
from bench.distributed import DistEnv
from bench.engine.checkpoint import CheckpointError, save_checkpoint
from bench.evaluation.evaluate import SplitCounts, build_eval_dataset, evaluate_model
from bench.evaluation.inference import predict_logits, slide_windows
from bench.evaluation.temporal import TcPlan, tc_plan
from bench.metrics import confusion_matrix, pair_miou
from bench.run.eval_run import evaluate_checkpoint
from bench.run.model import build_model

SETTINGS = {"model.memory_length": 1, "data.synthetic.num_classes": 4}
EVAL_TINY = as_overrides({**TINY, **SETTINGS})
tiny_config = tiny_builder(SETTINGS)


class PixelwiseModel(nn.Module):
    """Translation-equivariant: 1x1 convs of the current and the memory frame (so slide == whole exactly)."""

    memory_length = 1

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.current = nn.Conv2d(3, num_classes, 1)
        self.memory = nn.Conv2d(3, num_classes, 1, bias=False)

    def forward(self, frames, flow=None):
        return {"out": self.current(frames[:, -1]) + self.memory(frames[:, 0])}


class CallCounter(nn.Module):
    """Outputs the constant k on its k-th call: shows how overlapping windows are averaged."""

    memory_length = 0

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, frames, flow=None):
        self.calls += 1
        return {"out": torch.full((frames.shape[0], 1, *frames.shape[-2:]), float(self.calls))}


def test_slide_windows_follow_mmseg_grid():
    windows = slide_windows((10, 13), crop=(4, 6), stride=(3, 4))
    assert sorted({(y1, y2) for y1, y2, _, _ in windows}) == [(0, 4), (3, 7), (6, 10)]
    assert sorted({(x1, x2) for _, _, x1, x2 in windows}) == [(0, 6), (4, 10), (7, 13)]  # last one shifted back
    assert slide_windows((5, 5), crop=(8, 8), stride=(4, 4)) == [(0, 5, 0, 5)]  # image smaller than the crop


@pytest.mark.parametrize("crop,stride", [((5, 7), (3, 4)), ((11, 13), (11, 13)), ((16, 20), (8, 8))])
def test_slide_equals_whole_for_a_pixelwise_model(crop, stride):
    model = PixelwiseModel().eval()
    frames = torch.randn(2, 2, 3, 11, 13)
    with torch.no_grad():
        whole = predict_logits(model, frames, None, "whole")
        slide = predict_logits(model, frames, None, "slide", crop, stride)
    torch.testing.assert_close(slide, whole, rtol=0, atol=1e-5)


def test_overlapping_windows_are_averaged():
    # 1 x 10 image, crop width 6, stride 4 -> windows [0, 6) (call 1) and [4, 10) (call 2)
    logits = predict_logits(CallCounter(), torch.zeros(1, 1, 3, 1, 10), None, "slide", (1, 6), (1, 4))
    assert logits[0, 0, 0].tolist() == [1, 1, 1, 1, 1.5, 1.5, 2, 2, 2, 2]


def test_a_window_covering_the_image_is_whole_image_inference_with_a_warning(caplog):
    model = CallCounter()
    with caplog.at_level("WARNING", logger="bench.evaluation.evaluate"):
        logits = predict_logits(model, torch.zeros(1, 1, 3, 8, 8), None, "slide", (769, 769), (513, 513))
        predict_logits(model, torch.zeros(1, 1, 3, 8, 8), None, "slide", (769, 769), (513, 513))
    assert model.calls == 2 and logits.shape == (1, 1, 8, 8)  # one unpadded pass each, not 769x769 windows
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "eval.mode=whole" in warnings[0] and "eval.crop_size=[769, 769]" in warnings[0]


def test_slide_equals_whole_for_tmanet_when_the_crop_is_the_image():
    cfg = tiny_config()
    model = build_model(cfg).eval()
    frames = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        whole = predict_logits(model, frames, None, "whole")
        slide = predict_logits(model, frames, None, "slide", (32, 32), (16, 16))
    assert torch.equal(slide, whole)


def test_evaluate_model_reports_miou_pixel_acc_and_both_temporal_measures():
    cfg = tiny_config("model.name=per_frame", "eval.max_images=3", "eval.batch_size=2", "eval.tc_pairs=3")
    model = build_model(cfg)
    dataset, plan, reason = build_eval_dataset(cfg.data, cfg.eval, model)
    assert plan == TcPlan(pixel_agreement=True, etc=True, pairs=3) and reason is None
    assert dataset[0]["frames"].shape[0] == 4 and dataset[0]["step_flow"].shape[0] == 3  # 3 extra frames for TC
    model.train()
    metrics = evaluate_model(model, dataset, cfg.eval, with_tc=plan)
    assert model.training  # restored
    assert metrics["num_images"] == 3 and metrics["tc_flow"] == "ground_truth" and metrics["tc_skipped"] is None
    assert 0.0 <= metrics["pixel_agreement"] <= 1.0 and 0.0 <= metrics["etc_tc"] <= 1.0 and metrics["etc_pairs"] == 3
    assert 0.0 <= metrics["miou"] <= 1.0 and 0.0 <= metrics["pixel_acc"] <= 1.0
    assert list(metrics["per_class_iou"]) == dataset.class_names
    no_tc = evaluate_model(
        model,
        build_eval_dataset(
            *sections(tiny_config("model.name=per_frame", "eval.max_images=3", "eval.temporal_consistency=false")),
            model,
        )[0],
        cfg.eval,
        with_tc=False,
        tc_skipped="off",
    )
    assert no_tc["pixel_agreement"] is None and no_tc["etc_tc"] is None and no_tc["tc_skipped"] == "off"
    # TC and the current-frame prediction come from the same clip end: metrics agree with and without TC
    assert no_tc["miou"] == pytest.approx(metrics["miou"]) and no_tc["pixel_acc"] == pytest.approx(metrics["pixel_acc"])


def test_etc_tc_pairs_the_right_frames_and_flows():
    # ETC's TC recomputed from the samples by hand: prediction at t-j from frames (t-j-1, t-j), flow t-j -> t-j-1
    cfg = tiny_config("eval.max_images=2", "eval.tc_metric=etc", "eval.tc_pairs=4")
    model = PixelwiseModel(4)
    dataset, plan, _ = build_eval_dataset(cfg.data, cfg.eval, model)
    assert plan == TcPlan(etc=True, pairs=4)
    metrics = evaluate_model(model, dataset, cfg.eval, with_tc=plan)
    expected = []
    with torch.no_grad():
        for sample in (dataset[0], dataset[1]):
            frames, step = sample["frames"], sample["step_flow"]  # (6, 3, H, W), (5, 2, H, W)
            preds = [model(frames[i - 1 : i + 1][None])["out"].argmax(1) for i in range(1, 6)]  # frames 1..5
            expected += [pair_miou(preds[i], preds[i - 1], step[i][None], 4)[0] for i in range(1, 5)]
    assert metrics["etc_tc"] == pytest.approx(sum(expected) / len(expected), abs=1e-12)
    assert metrics["pixel_agreement"] is None and metrics["etc_pairs"] == 4


def test_synthetic_step_flow_is_exact_and_ends_with_the_current_frames_flow():
    """Warping frame i's labels with ``step_flow[i]`` gives frame i+1's labels on object pixels away from label
    edges (the rest: objects passing in front of each other), where copying the same position does not."""
    import torch.nn.functional as F

    from bench.data.synthetic import SyntheticVideo
    from bench.flow.warp import warp_labels

    video = SyntheticVideo(size=(48, 48), num_classes=5, clip_length=6, seed=1, classes_per_clip=3)
    warped_agree, copied_agree = [], []
    for index in range(6):
        clip = video.render("val", index, 6, degrade=False)
        assert torch.equal(clip.step_flow[-1], clip.flow[-1])
        for i in range(5):
            label = clip.labels[i + 1].float()[None, None]
            edge = (F.max_pool2d(label, 3, 1, 1) != -F.max_pool2d(-label, 3, 1, 1))[0, 0]
            warped = warp_labels(clip.labels[i][None], clip.step_flow[i][None], ignore_index=-1)[0]
            objects = (warped >= 0) & (clip.labels[i + 1] > 0) & ~edge
            warped_agree.append((warped[objects] == clip.labels[i + 1][objects]).float().mean().item())
            copied_agree.append((clip.labels[i][objects] == clip.labels[i + 1][objects]).float().mean().item())
    assert sum(warped_agree) / len(warped_agree) > 0.93
    assert sum(copied_agree) / len(copied_agree) < 0.6


def test_tc_plan_explains_why_tc_is_skipped():
    model = PixelwiseModel()
    assert tc_plan(*sections(tiny_config()), model) == TcPlan(pixel_agreement=True, etc=True, pairs=4)
    assert (
        tc_plan(*sections(tiny_config("data.synthetic.clip_length=4")), model).pairs == 2
    )  # capped by the clip's frames
    assert tc_plan(*sections(tiny_config("eval.tc_metric=pixel_agreement")), model) == TcPlan(
        pixel_agreement=True, pairs=1
    )
    strided = tc_plan(*sections(tiny_config("data.memory_stride=2")), model)
    assert strided.pixel_agreement and not strided.etc and "not consecutive" in strided.skipped
    assert not tc_plan(*sections(tiny_config("data.memory_stride=2", "eval.tc_metric=etc")), model)
    plan = tc_plan(*sections(tiny_config("eval.tc_flow=raft")), model)
    assert not plan and "tc_raft_weights" in plan.skipped
    plan = tc_plan(*sections(tiny_config("data.dataset=cityscapes")), model)
    assert not plan and "synthetic" in plan.skipped
    plan = tc_plan(
        *sections(
            tiny_config(
                "data.dataset=camvid",
                "data.memory_source=labelled",
                "eval.tc_flow=raft",
                "eval.tc_raft_weights=raft.pth",
            )
        ),
        model,
    )
    assert not plan and "labelled" in plan.skipped
    plan = tc_plan(*sections(tiny_config("data.memory_sampling=random", "data.sequence_range=3")), model)
    assert not plan and "random" in plan.skipped
    gt_flow_model = build_model(tiny_config("model.name=flow_warp", "model.flow.source=ground_truth"))
    plan = tc_plan(*sections(tiny_config()), gt_flow_model)
    assert not plan and "ground-truth flow" in plan.skipped


def test_tc_with_raft_flow_from_a_local_weights_file(tmp_path):
    from torchvision.models.optical_flow import raft_small

    weights = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), weights)  # random weights: only the code path is tested
    cfg = tiny_config(
        "model.name=per_frame", "eval.tc_flow=raft", f"eval.tc_raft_weights={weights}", "eval.max_images=1"
    )
    model = build_model(cfg)
    dataset, with_tc, _ = build_eval_dataset(cfg.data, cfg.eval, model)
    metrics = evaluate_model(model, dataset, cfg.eval, with_tc=with_tc)
    assert metrics["tc_flow"] == "raft" and 0.0 <= metrics["pixel_agreement"] <= 1.0 and 0.0 <= metrics["etc_tc"] <= 1.0
    missing = tiny_config("model.name=per_frame", "eval.tc_flow=raft", f"eval.tc_raft_weights={tmp_path}/no.pth")
    with pytest.raises(FileNotFoundError, match="tc_raft_weights"):
        evaluate_model(model, dataset, missing.eval, with_tc=True)


@pytest.mark.parametrize("source", ["dis", "farneback"])
def test_tc_with_classical_flow_needs_no_weights(source):
    cfg = tiny_config("model.name=per_frame", f"eval.tc_flow={source}", "eval.max_images=1")
    model = build_model(cfg)
    dataset, with_tc, _ = build_eval_dataset(cfg.data, cfg.eval, model)
    assert with_tc
    metrics = evaluate_model(model, dataset, cfg.eval, with_tc=with_tc)
    assert metrics["tc_flow"] == source and metrics["tc_skipped"] is None
    assert 0.0 <= metrics["pixel_agreement"] <= 1.0 and 0.0 <= metrics["etc_tc"] <= 1.0
    real = tc_plan(*sections(tiny_config("data.dataset=cityscapes", f"eval.tc_flow={source}")), model)
    assert "synthetic" not in (real.skipped or "")


def test_per_image_counts_sum_to_the_split_confusion_matrix():
    cfg = tiny_config("model.name=per_frame", "eval.batch_size=3", "eval.temporal_consistency=false")
    model = build_model(cfg)
    dataset, _, _ = build_eval_dataset(cfg.data, cfg.eval, model)
    metrics = evaluate_model(model, dataset, cfg.eval)
    per_image = metrics["per_image"]
    assert per_image["names"] == [dataset[i]["name"] for i in range(len(dataset))]  # dataset order
    counts = {k: torch.tensor(per_image[k]) for k in ("intersection", "union", "label_pixels")}
    assert all(c.shape == (4, 4) and c.dtype == torch.int64 for c in counts.values())  # 4 images x 4 classes
    with torch.no_grad():
        matrix = sum(
            confusion_matrix(model.eval()(dataset[i]["frames"][None])["out"].argmax(1)[0], dataset[i]["label"], 4)
            for i in range(len(dataset))
        )
    assert torch.equal(counts["intersection"].sum(0), matrix.diag())
    assert torch.equal(counts["label_pixels"].sum(0), matrix.sum(1))
    assert torch.equal(counts["union"].sum(0), matrix.sum(0) + matrix.sum(1) - matrix.diag())
    iou = counts["intersection"].sum(0).double() / counts["union"].sum(0).double()
    assert metrics["miou"] == pytest.approx(float(torch.nanmean(iou)))


def test_per_image_counts_exclude_ignored_pixels_and_follow_dataset_indices():
    counts = SplitCounts(num_classes=2, ignore_index=255)
    label = torch.tensor([[[0, 1], [255, 1]], [[0, 0], [0, 255]]])
    pred = torch.tensor([[[0, 0], [1, 1]], [[1, 0], [0, 1]]])
    counts.add([7, 3], ["a", "b"], pred, label)
    counts.gather(DistEnv())
    per_image = counts.per_image()
    assert per_image["names"] == ["b", "a"]  # ordered by dataset index
    assert per_image["label_pixels"] == [[3, 0], [1, 2]]
    assert per_image["intersection"] == [[2, 0], [1, 1]]
    assert per_image["union"] == [[3, 1], [2, 2]]


def save_run(tmp_path, cfg):
    """A run folder with a checkpoint written the way the trainer writes it (weights, config, classes)."""
    model = build_model(cfg)
    save_checkpoint(
        tmp_path / "run" / "checkpoint.pt",
        {
            "iteration": 5,
            "model": model.state_dict(),
            "config": to_dict(cfg),
            "classes": list(dataset_info(cfg.data).class_names),
        },
    )
    return model


def test_evaluate_checkpoint_takes_the_config_from_the_run(tmp_path):
    with pytest.raises(ConfigError, match="checkpoint=PATH"):
        evaluate_checkpoint(EVAL_TINY)
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate_checkpoint([f"checkpoint={tmp_path}/missing.pt"])

    cfg = tiny_config("eval.max_images=2", "model.memory_length=2", "data.synthetic.clip_length=6")
    model = save_run(tmp_path, cfg)
    # no config file: the run's config; an eval.* override is allowed
    metrics = evaluate_checkpoint([f"checkpoint={tmp_path}/run", "eval.max_images=3", "device=cpu"])
    cfg3 = tiny_config("eval.max_images=3", "model.memory_length=2", "data.synthetic.clip_length=6")
    expected = evaluate_model(model, build_eval_dataset(cfg3.data, cfg3.eval, model)[0], cfg3.eval, with_tc=True)
    assert metrics == expected and metrics["num_images"] == 3
    written = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert written["iteration"] == 5 and written["metrics"]["miou"] == pytest.approx(metrics["miou"])

    # anything that changes the trained model or the training data is refused, with the differing keys
    with pytest.raises(ConfigError, match="model.args.memory_length: stored 2, now 1"):
        evaluate_checkpoint([f"checkpoint={tmp_path}/run", "model.memory_length=1"])
    with pytest.raises(ConfigError, match="data.crop_size"):
        evaluate_checkpoint([f"checkpoint={tmp_path}/run/checkpoint.pt", "data.crop_size=[16, 16]"])


DDP_WORKER = """
import json, sys
sys.path.insert(0, "tests")
from bench.config import load_config
from bench.distributed import init_distributed, shutdown_distributed
from bench.run.model import build_model
from bench.evaluation.evaluate import build_eval_dataset, evaluate_model
from helpers import TINY, as_overrides
import torch
cfg = load_config(None, as_overrides({**TINY, "data.synthetic.val_clips": 5, "data.synthetic.num_classes": 4})
                  + ["model.name=per_frame", "eval.batch_size=2"])
torch.manual_seed(0)
model = build_model(cfg)
env = init_distributed("cpu")
dataset, with_tc, _ = build_eval_dataset(cfg.data, cfg.eval, model)
metrics = evaluate_model(model, dataset, cfg.eval, env, with_tc=with_tc)
shutdown_distributed(env)
print(json.dumps(metrics))
"""


def test_per_image_counts_are_gathered_in_dataset_order_under_ddp(tmp_path):
    """Two gloo processes split 5 clips 3 + 2 (interleaved); every rank returns the single-process metrics."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    repo = Path(__file__).resolve().parent.parent
    common = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": "2",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(repo),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DDP_WORKER],
            cwd=repo,
            stdout=subprocess.PIPE,
            text=True,
            env={**common, "RANK": str(r), "LOCAL_RANK": str(r)},
        )
        for r in (0, 1)
    ]
    outputs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    single = subprocess.run(
        [sys.executable, "-c", DDP_WORKER],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(repo)},
        timeout=300,
        check=True,
    )
    expected = json.loads(single.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1] == expected
    assert expected["per_image"]["names"] == [f"synthetic-val-{i:06d}" for i in range(5)]


def test_loader_options_resolve_auto_workers_and_pin_only_on_cuda(monkeypatch):
    from bench.distributed import AUTO_WORKERS_CAP, loader_options, resolve_num_workers

    cpu, cuda = DistEnv(device=torch.device("cpu")), DistEnv(device=torch.device("cuda", 0))
    assert resolve_num_workers(-1, cpu) == 0 and resolve_num_workers(3, cpu) == 3
    assert loader_options(-1, cpu) == {"num_workers": 0, "pin_memory": False, "persistent_workers": False}
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert resolve_num_workers(-1, cuda) == 2  # 16 CPUs shared by 8 torchrun processes
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert resolve_num_workers(-1, cuda) == AUTO_WORKERS_CAP
    assert loader_options(-1, cuda) == {
        "num_workers": 4,
        "pin_memory": True,
        "persistent_workers": True,
        "prefetch_factor": 2,
    }
    assert loader_options(-1, cuda, persistent=False)["persistent_workers"] is False
    assert loader_options(0, cuda)["persistent_workers"] is False  # persistent needs workers


def test_persistent_workers_keep_the_stream_identical_across_epochs_and_resumes():
    # the CUDA setting (one loader, persistent workers re-iterated each epoch) forced on the CPU
    from bench.data.build import build_dataset
    from bench.engine.batches import InfiniteBatches

    cfg = tiny_config()
    dataset = build_dataset(cfg.data, "train", 1, train=True)
    env = DistEnv()
    stream = InfiniteBatches(dataset, 4, seed=0, env=env)
    reference = [next(stream) for _ in range(6)]  # 8 clips: 2 batches per epoch, 3 epochs
    persistent = InfiniteBatches(dataset, 4, seed=0, env=env, num_workers=2)
    persistent.loader_options = {"num_workers": 2, "pin_memory": False, "persistent_workers": True}
    persistent.load_state_dict({"epoch": 0, "position": 1})
    got = [next(persistent) for _ in range(5)]
    persistent.load_state_dict({"epoch": 1, "position": 1})  # re-iterate the same loader mid-epoch
    got += [next(persistent) for _ in range(3)]
    assert persistent._loader is not None and persistent._loader.persistent_workers
    for batch, expected in zip(got, reference[1:] + reference[3:]):
        assert batch["name"] == expected["name"] and torch.equal(batch["frames"], expected["frames"])


def sections(cfg):
    """(data, eval) sections of a config: what the evaluation plan and dataset are built from."""
    return cfg.data, cfg.eval

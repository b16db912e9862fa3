"""The shared trainer on tiny synthetic runs: schedule, loss, learning, records, NaN guard, data stream."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from bench.run.checkpoint import CheckpointError, load_checkpoint
from bench.config import load_config, to_dict
from bench.data.build import build_dataset
from bench.distributed import DistEnv
from bench.models.registry import register_model
from bench.run.trainer import (
    InfiniteBatches,
    NonFiniteLossError,
    ResumableSampler,
    amp_setup,
    poly_lr,
    segmentation_loss,
    train_and_evaluate,
)
from tiny import TINY, as_overrides

TINY = as_overrides({**TINY, "model.memory_length": 1, "data.synthetic.train_clips": 16,
                     "data.synthetic.num_classes": 4, "train.batch_size": 4, "train.log_every": 5})


def tiny_config(run_dir, *overrides: str):
    return load_config(None, TINY + [f"run_dir={run_dir}"] + list(overrides))


def test_poly_lr_matches_mmcv_with_min_lr():
    assert poly_lr(0, 100, 0.01, 1e-4, 0.9) == pytest.approx(0.01)
    assert poly_lr(100, 100, 0.01, 1e-4, 0.9) == pytest.approx(1e-4)
    assert poly_lr(50, 100, 0.01, 1e-4, 0.9) == pytest.approx((0.01 - 1e-4) * 0.5 ** 0.9 + 1e-4)


def test_loss_averaging_over_all_or_valid_pixels():
    logits = torch.randn(2, 3, 4, 4)
    label = torch.randint(0, 3, (2, 4, 4))
    label[:, :2] = 255  # half the pixels ignored
    valid = segmentation_loss(logits, label, "valid_pixels")
    assert valid == pytest.approx(float(nn.functional.cross_entropy(logits, label, ignore_index=255)))
    assert segmentation_loss(logits, label, "all_pixels") == pytest.approx(float(valid) / 2)  # mmseg: ignored count 0
    assert segmentation_loss(logits, torch.full_like(label, 255), "valid_pixels") == 0.0


def test_amp_is_ignored_on_cpu_with_a_warning():
    with pytest.warns(UserWarning, match="CUDA-only"):
        assert amp_setup("bf16", torch.device("cpu")) == (None, None)
    assert amp_setup("none", torch.device("cpu")) == (None, None)


def test_a_short_run_learns_and_writes_its_record(tmp_path):
    run_dir = tmp_path / "run"
    # four fixed clips without augmentation: the loss must fall quickly as the model fits them
    cfg = tiny_config(run_dir, "train.iters=30", "train.lr=0.05", "train.checkpoint_every=20",
                      "data.synthetic.train_clips=4", "data.scale_range=[1.0, 1.0]", "data.flip=false",
                      "data.photometric=false", "train.eval_every=20")
    record = train_and_evaluate(cfg)

    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    train_lines = [e for e in log if "loss" in e]
    assert [e["iter"] for e in train_lines] == list(range(5, 31, 5))
    assert {"iter", "loss", "aux_loss", "lr", "throughput", "max_memory_mb", "elapsed_s"} <= set(train_lines[0])
    first, last = train_lines[0]["loss"], sum(e["loss"] for e in train_lines[-2:]) / 2
    assert last < 0.8 * first, (first, last)  # it learns
    assert train_lines[-1]["lr"] < train_lines[0]["lr"]
    assert [e["iter"] for e in log if "val" in e] == [20, 30]  # eval_every, then the final evaluation

    assert record["status"] == "done" and record["iters"] == 30 and record["model"] == "tmanet"
    assert record["config"] == to_dict(cfg) and record["device"] == "cpu" and record["wall_time_s"] > 0
    metrics = record["metrics"]
    assert {"miou", "pixel_acc", "per_class_iou", "tc", "num_images"} <= set(metrics)
    assert metrics["num_images"] == 4 and 0 <= metrics["tc"] <= 1
    assert list(metrics["per_class_iou"]) == ["background", "red", "green", "blue"]
    assert json.loads((run_dir / "record.json").read_text()) == json.loads(json.dumps(record))
    assert (run_dir / "config.yaml").is_file() and record["checkpoint"] == str(run_dir / "checkpoint.pt")
    assert load_checkpoint(run_dir / "checkpoint.pt")["iteration"] == 30

    # idempotent: a finished run is returned as it is, without touching the checkpoint
    stamp = (run_dir / "checkpoint.pt").stat().st_mtime_ns
    assert train_and_evaluate(cfg) == json.loads((run_dir / "record.json").read_text())
    assert (run_dir / "checkpoint.pt").stat().st_mtime_ns == stamp

    # a checkpoint of another recipe is not resumed silently
    (run_dir / "record.json").unlink()
    with pytest.raises(CheckpointError, match="train"):
        train_and_evaluate(tiny_config(run_dir, "train.iters=30", "train.lr=0.01"))


class NanAfter(nn.Module):
    """Per-frame model whose training logits become NaN from its ``nan_at``-th training call on."""

    def __init__(self, inner: nn.Module, nan_at: int) -> None:
        super().__init__()
        self.inner, self.nan_at, self.calls = inner, nan_at, 0
        self.memory_length = inner.memory_length

    def forward(self, frames, flow=None):
        out = self.inner(frames, flow)
        if self.training:
            self.calls += 1
            if self.calls >= self.nan_at:
                out["out"] = out["out"] * float("nan")
        return out


@register_model("test_nan_after")
def nan_after(num_classes: int, backbone: str = "resnet18", value_channels: int = 16, channels: int = 16,
              aux_channels: int = 16, nan_at: int = 5) -> nn.Module:
    from baselines.per_frame import per_frame

    inner = per_frame(num_classes, backbone=backbone, value_channels=value_channels, channels=channels,
                      aux_channels=aux_channels)
    return NanAfter(inner, nan_at)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "nan"
    cfg = tiny_config(run_dir, "model.name=test_nan_after", "model.options={nan_at: 5}", "train.iters=10",
                      "train.checkpoint_every=2")
    with pytest.raises(NonFiniteLossError, match="iteration 5") as err:
        train_and_evaluate(cfg)
    assert err.value.iteration == 5
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert state["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (run_dir / "record.json").exists()


def test_data_stream_resumes_mid_epoch_and_ignores_worker_count():
    cfg = load_config(None, TINY)
    dataset = build_dataset(cfg.data, "train", 1, train=True)  # random crops, flips, photometric distortion
    env = DistEnv()
    stream = InfiniteBatches(dataset, 4, seed=0, env=env)
    reference = [next(stream) for _ in range(6)]  # 4 batches per epoch: crosses an epoch boundary
    assert stream.state_dict() == {"epoch": 1, "position": 2}

    resumed = InfiniteBatches(dataset, 4, seed=0, env=env, num_workers=2)
    resumed.load_state_dict({"epoch": 0, "position": 3})
    for expected in reference[3:]:
        batch = next(resumed)
        assert batch["name"] == expected["name"]
        assert torch.equal(batch["frames"], expected["frames"]) and torch.equal(batch["label"], expected["label"])
    epochs = [sorted(n for b in reference[i:i + 4] for n in b["name"]) for i in (0, 4)]
    assert epochs[0] == sorted(f"synthetic-train-{i:06d}" for i in range(16))  # every clip once per epoch
    assert reference[0]["name"] != reference[4]["name"]  # reshuffled each epoch


def test_sampler_splits_an_epoch_between_ranks():
    data = list(range(10))
    shards = [list(ResumableSampler(data, 2, rank, seed=0)) for rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert {i for _, i in shards[0]} | {i for _, i in shards[1]} == set(range(10))
    assert all(epoch == 0 for shard in shards for epoch, _ in shard)
    late = ResumableSampler(data, 2, 0, seed=0)
    late.set_position(0, 3)
    assert list(late) == shards[0][3:]
    assert not math.isnan(len(late))

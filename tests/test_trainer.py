"""The shared trainer on tiny synthetic runs: schedule, loss, learning, records, divergence guards, hooks, data."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import TINY, as_overrides, tiny_builder
from torch import nn

from bench.config import ConfigError, load_config, to_dict
from bench.data.build import build_dataset
from bench.distributed import DistEnv
from bench.engine.batches import InfiniteBatches, ResumableSampler, per_rank_batch
from bench.engine.checkpoint import load_checkpoint
from bench.engine.recipe import MixedPrecision, poly_lr, segmentation_loss
from bench.engine.trainer import (
    NonFiniteLossError,
    NonFiniteStateError,
    TrainHook,
    TrainingInterrupted,
)
from bench.models.registry import register_model
from bench.run.execute import train_and_evaluate

SETTINGS = {
    "model.memory_length": 1,
    "data.synthetic.train_clips": 16,
    "data.synthetic.num_classes": 4,
    "train.batch_size": 4,
    "train.log_every": 5,
}
TRAINER_TINY = as_overrides({**TINY, **SETTINGS})
tiny_config = tiny_builder(SETTINGS, "run_dir")


def test_poly_lr_matches_mmcv_with_min_lr():
    assert poly_lr(0, 100, 0.01, 1e-4, 0.9) == pytest.approx(0.01)
    assert poly_lr(100, 100, 0.01, 1e-4, 0.9) == pytest.approx(1e-4)
    assert poly_lr(50, 100, 0.01, 1e-4, 0.9) == pytest.approx((0.01 - 1e-4) * 0.5**0.9 + 1e-4)


def test_loss_averaging_over_all_or_valid_pixels():
    logits = torch.randn(2, 3, 4, 4)
    label = torch.randint(0, 3, (2, 4, 4))
    label[:, :2] = 255  # half the pixels ignored
    valid = segmentation_loss(logits, label, "valid_pixels")
    assert valid == pytest.approx(float(nn.functional.cross_entropy(logits, label, ignore_index=255)))
    assert segmentation_loss(logits, label, "all_pixels") == pytest.approx(float(valid) / 2)  # mmseg: ignored count 0
    assert segmentation_loss(logits, torch.full_like(label, 255), "valid_pixels") == 0.0


def test_amp_is_ignored_on_cpu_with_a_warning_and_the_scaler_is_a_no_op():
    with pytest.warns(UserWarning, match="CUDA-only"):
        amp = MixedPrecision.create("bf16", torch.device("cpu"))
    assert not amp.enabled and not amp.scaler.is_enabled()
    loss = torch.tensor(2.0)
    assert amp.scaler.scale(loss) is loss and amp.scaler.state_dict() == {}
    assert not MixedPrecision.create("none", torch.device("cpu")).enabled


def test_global_batch_is_split_evenly_across_ranks():
    assert per_rank_batch(8, 1) == 8 and per_rank_batch(8, 2) == 4 and per_rank_batch(8, 4) == 2
    with pytest.raises(ConfigError, match="global batch.*multiple of 3"):
        per_rank_batch(8, 3)


def test_a_short_run_learns_and_returns_its_record(tmp_path):
    run_dir = tmp_path / "run"
    # four fixed clips without augmentation: the loss must fall quickly as the model fits them
    cfg = tiny_config(
        run_dir,
        "train.iters=30",
        "train.lr=0.05",
        "train.checkpoint_every=20",
        "data.synthetic.train_clips=4",
        "data.scale_range=[1.0, 1.0]",
        "data.flip=false",
        "data.photometric=false",
        "train.eval_every=20",
    )
    record = train_and_evaluate(cfg, run_dir)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["checkpoint.pt", "log.jsonl", "run"]  # nothing else

    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    train_lines = [e for e in log if "loss" in e]
    assert [e["iter"] for e in train_lines] == list(range(5, 31, 5))
    assert {"iter", "loss", "aux_loss", "lr", "throughput", "max_memory_mb", "elapsed_s"} <= set(train_lines[0])
    assert train_lines[0]["batch_size_global"] == 4 and train_lines[0]["batch_size_per_rank"] == 4
    first, last = train_lines[0]["loss"], sum(e["loss"] for e in train_lines[-2:]) / 2
    assert last < 0.8 * first, (first, last)  # it learns
    assert train_lines[-1]["lr"] < train_lines[0]["lr"]
    assert [e["iter"] for e in log if "val" in e] == [20, 30]  # eval_every, then the final evaluation
    assert "per_image" not in log[-1]["val"]

    assert record["status"] == "done" and record["iters"] == 30 and record["model"] == "tmanet"
    assert record["config"] == to_dict(cfg) and record["device"] == "cpu" and record["wall_time_s"] > 0
    assert (record["batch_size_global"], record["batch_size_per_rank"], record["world_size"]) == (4, 4, 1)
    assert "latency" not in record  # launch.latency is false
    metrics = record["metrics"]
    assert {"miou", "pixel_acc", "per_class_iou", "pixel_agreement", "etc_tc", "num_images", "per_image"} <= set(
        metrics
    )
    assert metrics["num_images"] == 4 and 0 <= metrics["pixel_agreement"] <= 1 and 0 <= metrics["etc_tc"] <= 1
    assert list(metrics["per_class_iou"]) == ["background", "red", "green", "blue"]
    assert record["checkpoint"] == str(run_dir / "checkpoint.pt")
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert state["iteration"] == 30 and state["classes"] == list(metrics["per_class_iou"])

    # a finished run is not trained again: it resumes at the end, evaluates, and returns the same record
    stamp = (run_dir / "checkpoint.pt").stat().st_mtime_ns
    again = train_and_evaluate(cfg, run_dir)
    assert again["metrics"] == metrics and again["iters"] == 30
    assert (run_dir / "checkpoint.pt").stat().st_mtime_ns == stamp


class Recorder(TrainHook):
    """Records the steps it sees and requests a stop after ``stop_at`` iterations."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.seen, self.evaluated, self.stop_at = [], [], stop_at

    def on_step_end(self, state):
        self.seen.append((state.iteration, state.loss, state.lr))
        if state.iteration == self.stop_at:
            state.request_stop("test hook")

    def on_evaluate(self, iteration, metrics):
        self.evaluated.append((iteration, metrics["num_images"]))


def test_hooks_see_every_step_and_may_stop_the_run(tmp_path):
    hook = Recorder(stop_at=3)
    cfg = tiny_config(tmp_path, "model.name=per_frame", "train.iters=6", "train.eval_every=2")
    with pytest.raises(TrainingInterrupted, match="after iteration 3 \\(test hook\\)"):
        train_and_evaluate(cfg, tmp_path, hooks=[hook])
    assert [i for i, _, _ in hook.seen] == [1, 2, 3] and all(math.isfinite(loss) for _, loss, _ in hook.seen)
    assert [lr for _, _, lr in hook.seen] == [poly_lr(i, 6, 0.01, 1e-4, 0.9) for i in range(3)]
    assert hook.evaluated == [(2, 4)]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 3
    resumed = Recorder()
    record = train_and_evaluate(cfg, tmp_path, hooks=[resumed])
    assert [i for i, _, _ in resumed.seen] == [4, 5, 6] and resumed.evaluated == [(4, 4), (6, 4)]
    assert record["iters"] == 6


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
def nan_after(num_classes: int, nan_at: int = 5, **head) -> nn.Module:
    from baselines.per_frame import per_frame

    inner = per_frame(num_classes, **head)
    return NanAfter(inner, nan_at)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "nan"
    cfg = tiny_config(
        run_dir, "model.name=test_nan_after", "model.options={nan_at: 5}", "train.iters=10", "train.checkpoint_every=2"
    )
    with pytest.raises(NonFiniteLossError, match="iteration 5.*keeps the last good state \\(iteration 4\\)") as err:
        train_and_evaluate(cfg, run_dir)
    assert err.value.iteration == 5
    state = load_checkpoint(run_dir / "checkpoint.pt")
    assert state["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_non_finite_loss_before_any_checkpoint_says_there_is_none(tmp_path):
    cfg = tiny_config(tmp_path, "model.name=test_nan_after", "model.options={nan_at: 2}", "train.iters=10")
    with pytest.raises(NonFiniteLossError, match="no checkpoint had been saved yet") as err:
        train_and_evaluate(cfg, tmp_path)
    assert "keeps" not in str(err.value) and not (tmp_path / "checkpoint.pt").exists()


class BreakBatchNorm(TrainHook):
    """Divergence in the last iteration: a BatchNorm running_var becomes inf (the loss in train mode stays finite)."""

    def on_step_end(self, state):
        if state.iteration == state.iters:
            bn = next(m for m in state.model.modules() if isinstance(m, nn.BatchNorm2d))
            bn.running_var.fill_(float("inf"))


def test_a_model_with_non_finite_buffers_is_never_recorded(tmp_path):
    """Failure 7: the weights became non-finite at the end; eval would still print a plausible-looking mIoU."""
    cfg = tiny_config(tmp_path, "model.name=per_frame", "train.iters=3", "train.checkpoint_every=2")
    with pytest.raises(NonFiniteStateError, match="buffer .*running_var is not finite at iteration 3") as err:
        train_and_evaluate(cfg, tmp_path, hooks=[BreakBatchNorm()])
    assert "\n" not in str(err.value) and "train.lr" in str(err.value)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 2  # the last finite state is kept


@pytest.mark.parametrize("iters", [1, 3])
def test_an_infinite_learning_rate_never_returns_a_record(tmp_path, iters):
    """Failure 7, second way: train.lr=inf (built directly: config validation may reject it earlier)."""
    cfg = tiny_config(tmp_path, "model.name=per_frame", f"train.iters={iters}")
    object.__setattr__(cfg.train, "lr", math.inf)  # past the assignment check, which refuses it
    with pytest.raises((NonFiniteStateError, NonFiniteLossError)):
        train_and_evaluate(cfg, tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_data_stream_resumes_mid_epoch_and_ignores_worker_count():
    cfg = load_config(None, TRAINER_TINY)
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
    epochs = [sorted(n for b in reference[i : i + 4] for n in b["name"]) for i in (0, 4)]
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

"""The TensorBoard hook mirrors log.jsonl (checked with a fake writer); a missing package is a one-line error."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from bench.config import ConfigError
from bench.engine.tensorboard import TensorBoardHook, tensorboard_hooks
from bench.run import rundir
from bench.run.execute import train_and_evaluate
from bench.run.rundir import RunDir


class FakeWriter:
    """What SummaryWriter offers the hook: add_scalar, flush, close."""

    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []
        self.closed = False

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_hook_mirrors_every_log_line_and_validation(tmp_path, tiny_cfg):
    cfg = tiny_cfg(tmp_path / "run", "train.iters=6", "train.log_every=3", "train.eval_every=3")
    writer = FakeWriter()
    train_and_evaluate(cfg, tmp_path / "run", hooks=[TensorBoardHook(writer)])
    lines = [json.loads(line) for line in (tmp_path / "run" / rundir.LOG).read_text().splitlines()]
    got = {(tag, step): value for tag, value, step in writer.scalars}
    train_lines = [e for e in lines if "val" not in e]
    val_lines = [e for e in lines if "val" in e]
    assert [e["iter"] for e in train_lines] == [3, 6] and [e["iter"] for e in val_lines] == [3, 6]
    for entry in train_lines:
        for key in ("loss", "aux_loss", "lr", "throughput", "max_memory_mb"):
            assert got[(f"train/{key}", entry["iter"])] == pytest.approx(entry[key])
    for entry in val_lines:
        assert got[("val/miou", entry["iter"])] == pytest.approx(entry["val"]["miou"])
        assert got[("val/macc", entry["iter"])] == pytest.approx(entry["val"]["macc"])
        for name, iou in entry["val"]["per_class_iou"].items():
            assert (f"val/iou/{name}", entry["iter"]) in got or iou is None
    assert not any("confusion" in tag for tag, _, _ in writer.scalars)  # matrices are not scalars
    assert writer.closed


def test_off_by_default_and_missing_package_is_one_line(tmp_path, tiny_cfg, monkeypatch):
    assert tensorboard_hooks(tiny_cfg(tmp_path).train, RunDir(tmp_path).tensorboard_dir, True) == []
    cfg = tiny_cfg(tmp_path, "train.tensorboard=true")
    if importlib.util.find_spec("tensorboard") is not None:
        hooks = tensorboard_hooks(cfg.train, RunDir(tmp_path).tensorboard_dir, True)
        assert len(hooks) == 1 and (tmp_path / "tensorboard").is_dir()
        hooks[0].close()
        monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[tensorboard\]"') as err:
        tensorboard_hooks(cfg.train, RunDir(tmp_path).tensorboard_dir, True)
    assert "\n" not in str(err.value)

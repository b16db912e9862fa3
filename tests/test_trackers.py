"""MLflow and W&B against the real packages, offline, in a temporary folder: a tiny run's log.jsonl lines and
config arrive in an MLflow file store and in an offline W&B run; a missing package is a one-line error.
Each test skips (with the install command) where its package is not installed, and fails instead under
``BENCH_TRACKERS=1`` (CI installs the extras)."""

from __future__ import annotations

import glob
import json
import struct
import sys
from pathlib import Path

import pytest
from helpers import require_tracker

from bench.config import ConfigError
from bench.engine.trackers import tracker_hooks
from bench.run import rundir
from bench.run.execute import train_and_evaluate
from bench.run.rundir import RunDir

SETTINGS = ("train.iters=2", "train.log_every=1", "eval.temporal_consistency=false")


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / rundir.LOG).read_text().splitlines()]


def test_mlflow_gets_every_log_line_and_the_config(tmp_path, tiny_cfg):
    mlflow = require_tracker("mlflow", "mlflow")
    run_dir = tmp_path / "run"
    cfg = tiny_cfg(run_dir, *SETTINGS, "train.mlflow=true")
    train_and_evaluate(cfg, run_dir)
    client = mlflow.tracking.MlflowClient(tracking_uri=RunDir(run_dir).mlflow_dir.resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("vss-bench").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["bench.run_id"] == run_dir.name
    assert run.data.params["train.iters"] == "2" and run.data.params["model.backbone"] == "resnet18"
    lines = [e for e in _log(run_dir) if "val" not in e]
    history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train/loss")}
    assert history == pytest.approx({e["iter"]: e["loss"] for e in lines}) and sorted(history) == [1, 2]
    assert 0.0 <= run.data.metrics["val/miou"] <= 1.0


def _wandb_records(path: str) -> list[bytes]:
    """The records of a ``.wandb`` file: a 7-byte header, then LevelDB-log blocks of 32 KiB whose chunks have a
    7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    raw, block, pos, pending, records = Path(path).read_bytes(), 32768, 7, b"", []
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        pending, pos = pending + raw[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            records.append(pending)
            pending = b""
    return records


def test_wandb_offline_run_gets_every_log_line_and_the_config(tmp_path, tiny_cfg):
    require_tracker("wandb", "wandb")
    from wandb.proto import wandb_internal_pb2

    run_dir = tmp_path / "run"
    cfg = tiny_cfg(run_dir, *SETTINGS, "train.wandb=true")
    train_and_evaluate(cfg, run_dir)
    (path,) = glob.glob(str(RunDir(run_dir).wandb_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    history, config = {}, {}
    for data in _wandb_records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            history.setdefault(record.history.step.num, {}).update(items)
        elif record.WhichOneof("record_type") == "run":
            config.update({item.key: item.value_json for item in record.run.config.update})
    lines = [e for e in _log(run_dir) if "val" not in e]
    assert {step: h["train/loss"] for step, h in history.items() if "train/loss" in h} == pytest.approx(
        {e["iter"]: e["loss"] for e in lines}
    )
    assert any("val/miou" in h for h in history.values())
    assert json.loads(config["train.iters"]) == 2 and json.loads(config["model.backbone"]) == "resnet18"


def test_off_by_default_and_a_missing_package_is_one_line(tmp_path, tiny_cfg, monkeypatch):
    assert tracker_hooks(tiny_cfg(tmp_path), RunDir(tmp_path).train_paths(), True) == []
    for key in ("mlflow", "wandb"):
        monkeypatch.setitem(sys.modules, key, None)  # as if it were not installed
        with pytest.raises(ConfigError, match=rf'train.{key}=true needs .* pip install -e "\.\[{key}\]"') as err:
            tracker_hooks(
                tiny_cfg(tmp_path, f"train.{key}=true"), RunDir(tmp_path).train_paths(), False
            )  # every rank checks
        assert "\n" not in str(err.value)

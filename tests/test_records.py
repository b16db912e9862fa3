"""Atomic JSON writes, environment information and the record fields (reading records: test_lifecycle.py)."""

from __future__ import annotations

import json
import math

import pytest

from bench.atomic import default_file_mode, write_json_atomic
from bench.config import load_config, to_dict
from bench.run.identity import config_hash, run_id
from bench.run.records import RunStamp, environment_info, make_record


def test_write_json_atomic_replaces_nan_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "deep" / "record.json"
    write_json_atomic(path, {"a": math.nan, "b": [1.5, math.inf], "c": (1, 2), "d": tmp_path})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": [1, 2], "d": str(tmp_path)}
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["record.json"]
    assert path.stat().st_mode & 0o777 == default_file_mode()  # readable like any new file, not mkstemp's 0600


def test_write_json_atomic_keeps_the_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "record.json"
    write_json_atomic(path, {"ok": True})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": True}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_environment_info_and_record_fields():
    env = environment_info()
    assert {"git_commit", "git_dirty", "versions", "hostname", "cpu_count", "cpu_model"} <= set(env)
    assert env["git_dirty"] in (True, False, None) and isinstance(env["cpu_model"], str) and env["cpu_model"]
    assert env["git_commit"] is None or len(env["git_commit"]) == 40
    assert {"torch", "torchvision", "timm", "python", "bench"} <= set(env["versions"])
    assert all(env["versions"][k] for k in ("torch", "torchvision", "timm", "python", "bench"))

    cfg = load_config(None, ["model.name=per_frame", "train.seed=3", "name=demo"])
    metrics = {"miou": 0.5, "pixel_acc": 0.9, "per_class_iou": {"a": 0.5}, "tc": None, "num_images": 4}
    record = make_record(
        RunStamp.of(cfg),
        metrics=metrics,
        device="cpu",
        wall_time_s=1.23456,
        iters=7,
        checkpoint="x/checkpoint.pt",
        batch_size=cfg.train.batch_size,
    )
    for key in (
        "schema",
        "run_id",
        "name",
        "status",
        "model",
        "dataset",
        "seed",
        "config",
        "config_hash",
        "git_commit",
        "versions",
        "device",
        "wall_time_s",
        "iters",
        "metrics",
        "checkpoint",
    ):
        assert key in record, key
    assert record["run_id"] == run_id(cfg) and record["config_hash"] == config_hash(cfg)
    assert record["config"] == to_dict(cfg) and record["status"] == "done" and record["seed"] == 3
    assert (record["model"], record["dataset"], record["name"], record["iters"]) == (
        "per_frame",
        "synthetic",
        "demo",
        7,
    )
    json.dumps(record, allow_nan=False)  # JSON-ready as it is

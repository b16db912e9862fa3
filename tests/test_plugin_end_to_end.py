"""The plugin path: a user's method, registered from an external module, runs through the same grid,
launcher and trainer as the built-ins and lands in the same report table."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import yaml
from helpers import TINY

from bench.cli import main
from bench.grid.spec import build_grid

REPO = Path(__file__).resolve().parent.parent
PLUGIN_TINY = {**TINY, "train.iters": 2, "train.batch_size": 2, "output_root": "out/runs"}


def test_plugin_method_is_swept_trained_and_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # the local launcher runs each run in a subprocess: the plugin must be importable there too
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "examples"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    monkeypatch.chdir(tmp_path)
    spec = yaml.safe_load((REPO / "examples" / "temporal_mean_methods.yaml").read_text())
    spec["base"] = str(REPO / "configs" / "synthetic_tmanet.yaml")
    spec["overrides"].update(PLUGIN_TINY)
    spec["grid"] = [{"product": {"model.name": ["per_frame", "temporal_mean"]}}]
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(spec))

    assert main(["sweep", str(path), "--launcher", "local"]) == 0
    runs = {run.config.model.name: run for run in build_grid(path).runs}
    record = json.loads((runs["temporal_mean"].run_dir / "record.json").read_text())
    assert record["model"] == "temporal_mean" and record["config"]["plugins"] == ["temporal_mean"]
    assert 0.0 <= record["metrics"]["miou"] <= 1.0

    assert main(["report", str(path), "--out", str(tmp_path / "reports")]) == 0
    rows = list(csv.DictReader((tmp_path / "reports" / "tables" / "temporal_mean_methods.csv").open()))
    methods = {next(iter(row.values())) for row in rows}
    assert {"per_frame", "temporal_mean"} <= methods

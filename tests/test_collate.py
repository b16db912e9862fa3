"""Report tables from fabricated run records: rows, mean/std/n against numpy, paper numbers and deltas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.report.collate import (MISSING, build_report, load_paper_reference, load_source, paper_number, reading,
                           summarise)
from bench.config import to_dict
from bench.grid.spec import expand_grid, load_spec


def write_spec(tmp: Path, name: str, ablation: str, factor: str, grid: list, base: dict, seeds: list[int]) -> Path:
    """A base config and a grid spec in ``tmp``; runs go to ``tmp/runs``."""
    base = {**base, "output_root": str(tmp / "runs")}
    (tmp / f"{name}_base.yaml").write_text(yaml.safe_dump(base))
    spec = {"name": name, "ablation": ablation, "factor": factor, "base": f"{name}_base.yaml", "grid": grid,
            "seeds": seeds}
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def fabricate(spec_path: Path, miou_of, skip=lambda run: False, latency_of=None) -> dict[str, list[float]]:
    """Write a done record.json for every run of the spec; returns the mIoU fractions per factor value."""
    spec = load_spec(spec_path)
    values: dict = {}
    for run in expand_grid(spec):
        if skip(run):
            continue
        miou = miou_of(run)
        factor_value = run.varied.get(spec.factor, run.config.model.name)
        values.setdefault(factor_value, []).append(miou)
        record = {"schema": 1, "run_id": run.run_id, "name": run.run_id, "status": "done",
                  "model": run.config.model.name, "dataset": run.config.data.dataset, "seed": run.seed,
                  "config": to_dict(run.config), "metrics": {"miou": miou, "tc": 0.9 + 0.01 * run.seed,
                  "per_class_iou": {"background": miou + 0.05, "disc": miou - 0.05}}}
        if latency_of is not None:
            record["latency"] = {"modes": {"streaming": {"median_ms": latency_of(run)},
                                           "recompute": {"median_ms": 2 * latency_of(run)}}}
        run_dir = run.config.resolved_run_dir()
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "record.json").write_text(json.dumps(record))
    return values


SYNTHETIC = {"name": "tiny", "model": {"name": "tmanet", "backbone": "resnet18"}, "data": {"dataset": "synthetic"}}
CITYSCAPES = {"model": {"name": "tmanet", "backbone": "resnet50c", "memory_length": 2},
              "data": {"dataset": "cityscapes", "root": "data/cityscapes"}}


def test_memory_length_table_means_stds_and_missing_paper(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "syn_mem", "memory_length", "model.memory_length",
                      [{"product": {"model.memory_length": [1, 2, 4]}}], SYNTHETIC, seeds=[0, 1, 2])
    # seed 2 of T=4 has not finished: n must be 2 there, and the note must say so
    values = fabricate(spec, lambda r: 0.5 + 0.03 * r.config.model.memory_length + 0.011 * r.seed ** 2,
                       skip=lambda r: r.config.model.memory_length == 4 and r.seed == 2)
    result = build_report([str(spec)], tmp_path / "reports", figures=False)
    (table, paths), = result["tables"]
    csv = pd.read_csv(paths["csv"])
    assert list(csv["memory_length"]) == [1, 2, 4]
    for _, row in csv.iterrows():
        got = np.array(values[row["memory_length"]]) * 100
        assert row["miou_mean"] == pytest.approx(got.mean(), abs=1e-4)
        assert row["miou_std"] == pytest.approx(got.std(ddof=1), abs=1e-4)
        assert row["n"] == len(got)
        assert math.isnan(row["paper_miou"]) and math.isnan(row["delta"])
    assert list(csv["n"]) == [3, 3, 2]
    assert csv["tc_mean"].iloc[0] == pytest.approx(100 * np.mean([0.90, 0.91, 0.92]))
    md = paths["md"].read_text()
    assert "| memory_length" in md and MISSING in md and "synthetic data: no paper number" in md
    assert "1 of 9 runs of the spec have no finished record" in md
    tex = paths["tex"].read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "memory\\_length" in tex
    assert reading(table).startswith("best memory_length: 4 ")
    index = (tmp_path / "reports" / "index.md").read_text()
    assert "tables/syn_mem.md" in index and "best memory_length: 4" in index


def test_cityscapes_memory_length_gets_main_result_only_at_the_paper_setting(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "cs_mem", "memory_length", "model.memory_length",
                      [{"product": {"model.memory_length": [1, 2, 4]}}], CITYSCAPES, seeds=[0, 1])
    values = fabricate(spec, lambda r: 0.78 + 0.004 * r.config.model.memory_length + 0.002 * r.seed)
    table = summarise(load_source(spec), load_paper_reference())
    frame = table.frame.set_index("memory_length")
    mean2 = np.mean(values[2]) * 100
    assert frame.loc[2, "paper_miou"] == pytest.approx(80.3)
    assert frame.loc[2, "delta"] == pytest.approx(mean2 - 80.3)
    assert "paper main result at this setting" in frame.loc[2, "paper_note"]
    for t in (1, 4):  # the ablation table itself was not recovered
        assert math.isnan(frame.loc[t, "paper_miou"]) and math.isnan(frame.loc[t, "delta"])
        assert frame.loc[t, "paper_note"].startswith("missing:") and "could not be recovered" in frame.loc[t, "paper_note"]


def test_methods_table_paper_rows_and_deltas(tmp_path: Path) -> None:
    base = {"model": {"name": "tmanet", "backbone": "resnet50c", "memory_length": 4},
            "data": {"dataset": "camvid", "root": "data/camvid"}}
    spec = write_spec(tmp_path, "cv_methods", "methods", "model.name",
                      [{"product": {"model.name": ["tmanet", "per_frame"]}},
                       {"zip": {"model.name": ["flow_warp"], "model.memory_length": [1]}}], base, seeds=[0, 1])
    mious = {"tmanet": 0.75, "per_frame": 0.70, "flow_warp": 0.72}
    values = fabricate(spec, lambda r: mious[r.config.model.name] + 0.01 * r.seed,
                       latency_of=lambda r: {"tmanet": 30.0, "per_frame": 10.0, "flow_warp": 50.0}[r.config.model.name])
    result = build_report([str(spec)], tmp_path / "reports", figures=False)
    (table, paths), = result["tables"]
    frame = table.frame.set_index("method")
    assert list(table.frame["method"]) == ["tmanet", "per_frame", "flow_warp"]  # spec order
    assert frame.loc["tmanet", "paper_miou"] == pytest.approx(76.5)
    assert frame.loc["tmanet", "delta"] == pytest.approx(np.mean(values["tmanet"]) * 100 - 76.5)
    assert frame.loc["flow_warp", "paper_miou"] == pytest.approx(67.1)  # NetWarp, with its caveat
    assert "indicative only" in frame.loc["flow_warp", "paper_note"]
    assert math.isnan(frame.loc["per_frame", "paper_miou"])  # the paper has no FCN-50 CamVid number
    assert frame.loc["per_frame", "latency_ms"] == pytest.approx(10.0)
    md = paths["md"].read_text()
    assert "76.5" in md and f"{np.mean(values['tmanet']) * 100 - 76.5:+.2f}" in md


def test_folder_source_groups_by_varying_config(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "syn_agg", "aggregation", "model.aggregation",
                      [{"product": {"model.aggregation": ["concat", "sum"]}}], SYNTHETIC, seeds=[0, 1])
    fabricate(spec, lambda r: 0.6 if r.config.model.aggregation == "concat" else 0.5)
    table = summarise(load_source(tmp_path / "runs"), load_paper_reference())
    assert table.ablation == "runs" and table.factor_label == "aggregation"
    assert sorted(table.frame["aggregation"]) == ["concat", "sum"]
    assert list(table.frame["n"]) == [2, 2]


def test_paper_reference_has_the_recovered_numbers_only() -> None:
    ref = load_paper_reference()
    numbers = {(e["dataset"], e["method"]): e["miou"] for e in ref["entries"]}
    assert numbers[("cityscapes", "TMANet-50 (Ours-50)")] == 80.3
    assert numbers[("camvid", "TMANet-50 (Ours-50)")] == 76.5
    assert numbers[("camvid", "NetWarp")] == 67.1
    assert numbers[("cityscapes", "PSPNet-50")] == 78.1 and numbers[("camvid", "PSPNet-101")] == 76.2
    missing = {m["ablation"] for m in ref["missing"]}
    assert {"memory_length", "aggregation", "encoding"} <= missing
    value, note = paper_number(ref, "cityscapes", {"model.name": "tmanet", "model.backbone": "resnet50c",
                                                    "model.memory_length": 2, "model.aggregation": "sum",
                                                    "model.encoding": "1x1+3x3"}, "aggregation")
    assert value is None and note.startswith("missing:")


def test_report_without_finished_runs_returns_1(tmp_path: Path) -> None:
    from bench.report.collate import report_command

    spec = write_spec(tmp_path, "empty", "memory_length", "model.memory_length",
                      [{"product": {"model.memory_length": [1]}}], SYNTHETIC, seeds=[0])
    assert report_command([str(spec)], str(tmp_path / "reports")) == 1


def test_a_second_varying_key_gets_its_own_column(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "syn_methods", "methods", "model.name",
                      [{"product": {"model.name": ["tmanet"]}},
                       {"product": {"model.name": ["flow_warp"], "model.flow.source": ["raft", "ground_truth"]}}],
                      SYNTHETIC, seeds=[0])
    fabricate(spec, lambda r: 0.6 if r.config.model.flow.source == "raft" else 0.7)
    table = summarise(load_source(spec), load_paper_reference())
    assert table.key_columns == ["method", "flow.source"]
    rows = {(r["method"], r["flow.source"]): r["miou_mean"] for _, r in table.frame.iterrows()}
    assert rows == {("tmanet", "raft"): pytest.approx(60.0), ("flow_warp", "raft"): pytest.approx(60.0),
                    ("flow_warp", "ground_truth"): pytest.approx(70.0)}

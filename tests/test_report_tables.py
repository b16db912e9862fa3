"""Report tables from fabricated run records: rows, mean/std/n against numpy, paper numbers and deltas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPORT_BASE, fabricate_records, per_image_fabricator, write_report_spec

from bench.cli import main
from bench.grid.spec import build_grid
from bench.report.build import build_report, report_command
from bench.report.paper import load_paper_reference, paper_number
from bench.report.readings import reading
from bench.report.sources import ReportError, load_source, validate_record
from bench.report.stats import compare, counts_from_record
from bench.report.table_files import display_frame
from bench.report.table_model import MISSING, key_text
from bench.report.tables import summarise

CITYSCAPES = {
    "model": {"name": "tmanet", "backbone": "resnet50c", "memory_length": 2},
    "data": {"dataset": "cityscapes", "root": "data/cityscapes"},
}


def test_memory_length_table_means_stds_and_missing_paper(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2, 4]}}],
        REPORT_BASE,
        seeds=[0, 1, 2],
    )
    # seed 2 of T=4 has not finished: n must be 2 there, and the note must say so
    values = fabricate_records(
        spec,
        lambda r: 0.5 + 0.03 * r.config.model.memory_length + 0.011 * r.seed**2,
        skip=lambda r: r.config.model.memory_length == 4 and r.seed == 2,
    )
    result = build_report([str(spec)], tmp_path / "reports", figures=False)
    ((table, paths),) = result["tables"]
    csv = pd.read_csv(paths["csv"])
    assert list(csv["memory_length"]) == [1, 2, 4]
    for _, row in csv.iterrows():
        got = np.array(values[row["memory_length"]]) * 100
        assert row["miou_mean"] == pytest.approx(got.mean(), abs=1e-4)
        assert row["miou_std"] == pytest.approx(got.std(ddof=1), abs=1e-4)
        assert row["n"] == len(got)
        assert math.isnan(row["paper_miou"]) and math.isnan(row["delta_paper"])
    assert list(csv["n"]) == [3, 3, 2]
    assert csv["pixel_agreement_mean"].iloc[0] == pytest.approx(100 * np.mean([0.90, 0.91, 0.92]))  # legacy "tc"
    md = paths["md"].read_text()
    assert "| memory_length" in md and MISSING in md and "synthetic data: no paper number" in md
    assert "1 of 9 runs of the spec have no finished record" in md
    tex = paths["tex"].read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "memory\\_length" in tex
    # no per-image counts: the seed-level values; Welch t-tests between every pair, Holm-adjusted over 3
    assert "Welch t-test on seed-level mIoU" in md and "Holm-adjusted over the table's 3 tested" in md
    assert "95% CI |" in md and "Δ ref |" in md
    assert list(csv["delta_ref"].isna()) == [False, True, False]  # T=2 (the config default) is the reference
    assert csv.loc[0, "delta_ref"] == pytest.approx(csv.loc[0, "miou_mean"] - csv.loc[1, "miou_mean"])
    assert csv.loc[2, "delta_ref"] == pytest.approx(csv.loc[2, "miou_mean"] - csv.loc[1, "miou_mean"])
    assert list(csv["ci_method"]) == ["t over seeds"] * 3 and (csv["p_ref"] >= csv["p_ref_raw"]).sum() == 2
    text = reading(table)
    assert text.startswith("memory_length (Welch t-test over seeds, Holm-adjusted over 3 tests, α = 0.05): 2 vs 1")
    assert "no single row is significantly better than every other" in text
    # T=4 vs T=1 is significant before Holm only: said so, next to its own delta and CI
    assert "4 vs 1: no significant difference, +7.7 [+2.7, +12.7], Holm p = 0.054 (raw p = 0.018)" in text
    index = (tmp_path / "reports" / "index.md").read_text()
    assert "tables/syn_mem.md" in index and "no significant difference" in index and "best " not in index


def test_cityscapes_memory_length_gets_main_result_only_at_the_paper_setting(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "cs_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2, 4]}}],
        CITYSCAPES,
        seeds=[0, 1],
    )
    values = fabricate_records(spec, lambda r: 0.78 + 0.004 * r.config.model.memory_length + 0.002 * r.seed)
    table = summarise(load_source(spec), load_paper_reference())
    frame = table.frame.set_index("memory_length")
    mean2 = np.mean(values[2]) * 100
    assert frame.loc[2, "paper_miou"] == pytest.approx(80.3)
    assert frame.loc[2, "delta_paper"] == pytest.approx(mean2 - 80.3)
    assert "paper main result at this setting" in frame.loc[2, "paper_note"]
    for t in (1, 4):  # the ablation table itself was not recovered
        assert math.isnan(frame.loc[t, "paper_miou"]) and math.isnan(frame.loc[t, "delta_paper"])
        assert (
            frame.loc[t, "paper_note"].startswith("missing:") and "could not be recovered" in frame.loc[t, "paper_note"]
        )


def test_methods_table_paper_rows_and_deltas(tmp_path: Path) -> None:
    base = {
        "model": {"name": "tmanet", "backbone": "resnet50c", "memory_length": 4},
        "data": {"dataset": "camvid", "root": "data/camvid"},
    }
    spec = write_report_spec(
        tmp_path,
        "cv_methods",
        "methods",
        "model.name",
        [
            {"product": {"model.name": ["tmanet", "per_frame"]}},
            {"zip": {"model.name": ["flow_warp"], "model.memory_length": [1]}},
        ],
        base,
        seeds=[0, 1],
    )
    mious = {"tmanet": 0.75, "per_frame": 0.70, "flow_warp": 0.72}
    values = fabricate_records(
        spec,
        lambda r: mious[r.config.model.name] + 0.01 * r.seed,
        latency_of=lambda r: {"tmanet": 30.0, "per_frame": 10.0, "flow_warp": 50.0}[r.config.model.name],
    )
    result = build_report([str(spec)], tmp_path / "reports", figures=False)
    ((table, paths),) = result["tables"]
    frame = table.frame.set_index("method")
    assert list(table.frame["method"]) == ["tmanet", "per_frame", "flow_warp"]  # spec order
    assert frame.loc["tmanet", "paper_miou"] == pytest.approx(76.5)
    assert frame.loc["tmanet", "delta_paper"] == pytest.approx(np.mean(values["tmanet"]) * 100 - 76.5)
    assert table.reference == 1 and math.isnan(frame.loc["per_frame", "delta_ref"])  # methods: vs per_frame
    assert frame.loc["tmanet", "delta_ref"] == pytest.approx(100 * (np.mean(values["tmanet"]) - 0.705))
    assert frame.loc["flow_warp", "paper_miou"] == pytest.approx(67.1)  # NetWarp, with its caveat
    assert "indicative only" in frame.loc["flow_warp", "paper_note"]
    assert math.isnan(frame.loc["per_frame", "paper_miou"])  # the paper has no FCN-50 CamVid number
    assert frame.loc["per_frame", "latency_ms"] == pytest.approx(10.0)
    md = paths["md"].read_text()
    assert "76.5" in md and f"{np.mean(values['tmanet']) * 100 - 76.5:+.2f}" in md


def test_folder_source_groups_by_varying_config(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "syn_agg",
        "aggregation",
        "model.aggregation",
        [{"product": {"model.aggregation": ["concat", "sum"]}}],
        REPORT_BASE,
        seeds=[0, 1],
    )
    fabricate_records(spec, lambda r: 0.6 if r.config.model.aggregation == "concat" else 0.5)
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
    value, note = paper_number(
        ref,
        "cityscapes",
        {
            "model.name": "tmanet",
            "model.backbone": "resnet50c",
            "model.memory_length": 2,
            "model.aggregation": "sum",
            "model.encoding": "1x1+3x3",
        },
        "aggregation",
    )
    assert value is None and note.startswith("missing:")


def test_every_paper_counterpart_names_its_backbone() -> None:
    """A reduced run (tiny backbone, real data) must not get a Δ paper against a full-size published model."""
    ref = load_paper_reference()
    matched = [e for e in ref["entries"] if e.get("match")]
    assert matched and all("model.backbone" in e["match"] for e in matched), [
        e["method"] for e in matched if "model.backbone" not in e["match"]
    ]
    reduced = {"model.name": "flow_warp", "model.backbone": "resnet10t", "model.flow.source": "dis"}
    assert paper_number(ref, "camvid", reduced, "methods") == (None, "no paper number for this setting")
    assert paper_number(ref, "camvid", {**reduced, "model.backbone": "resnet50c"}, "methods")[0] == 67.1


def test_a_key_the_model_does_not_take_never_makes_a_column(tmp_path: Path) -> None:
    """DFF takes no update branch: its model.update_backbone (resnet10t here, resnet18 for flow_warp) cannot tell
    rows apart, as its run id leaves it out; Accel's would."""
    spec = write_report_spec(
        tmp_path,
        "syn_flow",
        "other",
        "model.flow.source",
        [
            {"product": {"model.name": ["flow_warp"], "model.flow.source": ["ground_truth", "dis"]}},
            {
                "product": {
                    "model.name": ["dff"],
                    "model.flow.source": ["ground_truth", "dis"],
                    "model.update_backbone": ["resnet10t"],
                }
            },
        ],
        {**REPORT_BASE, "model": {**REPORT_BASE["model"], "memory_length": 1}},
        seeds=[0],
    )
    fabricate_records(spec, lambda r: 0.5)
    table = summarise(load_source(spec), load_paper_reference())
    assert table.key_columns == ["flow.source", "method"]
    assert "cfg:model.update_backbone" in table.runs and table.runs["cfg:model.update_backbone"].isna().all()


def test_report_without_finished_runs_returns_1(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "empty",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1]}}],
        REPORT_BASE,
        seeds=[0],
    )
    assert report_command([str(spec)], str(tmp_path / "reports")) == 1


def test_a_second_varying_key_gets_its_own_column(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "syn_methods",
        "methods",
        "model.name",
        [
            {"product": {"model.name": ["tmanet"]}},
            {"product": {"model.name": ["flow_warp"], "model.flow.source": ["raft", "ground_truth"]}},
        ],
        REPORT_BASE,
        seeds=[0],
    )
    fabricate_records(spec, lambda r: 0.6 if r.config.model.flow.source == "raft" else 0.7)
    table = summarise(load_source(spec), load_paper_reference())
    assert table.key_columns == ["method", "flow.source"]
    rows = {(r["method"], key_text(r["flow.source"])): r["miou_mean"] for _, r in table.frame.iterrows()}
    # TMANet takes no flow: its flow.source is blank, not "raft" (it cannot change a TMANet run)
    assert rows == {
        ("tmanet", "—"): pytest.approx(60.0),
        ("flow_warp", "raft"): pytest.approx(60.0),
        ("flow_warp", "ground_truth"): pytest.approx(70.0),
    }
    shown = display_frame(table)
    assert list(shown.loc[shown["method"] == "tmanet", "flow.source"]) == ["—"]
    assert "tmanet vs" in reading(table) and "flow.source=None" not in reading(table)


def test_per_image_table_has_ci_delta_and_calls_best_only_when_significant(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "syn_agg",
        "aggregation",
        "model.aggregation",
        [{"product": {"model.aggregation": ["sum", "concat"]}}],
        REPORT_BASE,
        seeds=[0, 1, 2],
    )
    fabricate_records(
        spec, None, per_image_of=per_image_fabricator(lambda r: 0.08 * (r.config.model.aggregation == "concat"))
    )
    result = build_report([str(spec)], tmp_path / "reports", figures=False)
    ((table, paths),) = result["tables"]
    csv = pd.read_csv(paths["csv"]).set_index("aggregation")
    assert table.reference == 1 and math.isnan(csv.loc["concat", "delta_ref"])  # the config default: concat
    records = {r["run_id"]: r for r in load_source(spec).records}
    rows = {v: [counts_from_record(records[i]) for i in csv.loc[v, "run_ids"].split()] for v in ("sum", "concat")}
    expected = compare(rows["sum"], rows["concat"])
    assert csv.loc["sum", "delta_ref"] == pytest.approx(100 * expected.delta, abs=1e-4)
    assert csv.loc["sum", "delta_ref_low"] == pytest.approx(100 * expected.ci_low, abs=1e-4)
    assert csv.loc["sum", "delta_ref"] == pytest.approx(
        csv.loc["sum", "miou_mean"] - csv.loc["concat", "miou_mean"], abs=1e-3
    )
    assert csv.loc["sum", "delta_ref_high"] < 0 and csv.loc["sum", "p_ref"] < 0.01
    assert list(csv["ci_method"]) == ["t over seeds"] * 2 and list(csv["n"]) == [3, 3]
    assert (csv["ci_low"] < csv["miou_mean"]).all() and (csv["miou_mean"] < csv["ci_high"]).all()
    md = paths["md"].read_text()
    assert " ref |" in md and "**" in md and "`*` p < 0.05, `**` p < 0.01" in md and "chance level" in md
    assert reading(table).startswith("best aggregation: concat (")
    assert "best aggregation: concat" in (tmp_path / "reports" / "index.md").read_text()


def test_per_image_table_without_a_real_difference_names_no_best(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "syn_enc",
        "encoding",
        "model.encoding",
        [{"product": {"model.encoding": ["1x1", "3x3", "1x1+3x3"]}}],
        REPORT_BASE,
        seeds=[0, 1],
    )
    fabricate_records(spec, None, per_image_of=per_image_fabricator(lambda r: 0.0))
    table = summarise(load_source(spec), load_paper_reference())
    assert table.reference == 2 and not table.best.found
    assert reading(table).startswith("encoding (Welch t-test over seeds, Holm-adjusted over 3 tests")
    assert "no single row is significantly better than every other" in reading(table)
    assert not table.frame["sig_ref"].str.contains(r"\*").any()


def test_rows_scored_on_different_images_are_reported_not_compared(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "syn_agg",
        "aggregation",
        "model.aggregation",
        [{"product": {"model.aggregation": ["concat", "sum"]}}],
        REPORT_BASE,
        seeds=[0],
    )
    same = per_image_fabricator(lambda r: 0.0, n_images=10)

    def per_image_of(run) -> dict:
        counts = same(run)
        if run.config.model.aggregation == "sum":  # e.g. evaluated on another validation split
            counts["names"] = [f"other-{i}" for i in range(10)]
        return counts

    fabricate_records(spec, None, per_image_of=per_image_of)
    result = build_report([str(spec)], tmp_path / "reports", figures=False)
    ((table, paths),) = result["tables"]
    assert table.frame["delta_ref"].isna().all() and not table.best.found
    assert "not compared: concat vs sum: evaluated on different images" in paths["md"].read_text()


# --------------------------------------------------------------------------------------------------
# invalid records, sweep overrides and the runs a table used (issue 12)

FOREIGN = {
    "list": "[1, 2]",
    "null": "null",
    "half": '{"status": "do',
    "status_only": '{"status": "done"}',
    "high": json.dumps(
        {"status": "done", "run_id": "x", "metrics": {"miou": "high"}, "config": {"model": {"name": "tmanet"}}}
    ),
}


def _folder_with_foreign_records(tmp: Path) -> Path:
    """Four valid runs (memory_length 1 and 2, two seeds) under tmp/runs plus one record of each FOREIGN kind."""
    spec = write_report_spec(
        tmp,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2]}}],
        REPORT_BASE,
        seeds=[0, 1],
    )
    fabricate_records(spec, lambda r: 0.5 + 0.1 * r.config.model.memory_length)
    for name, text in FOREIGN.items():
        (tmp / "runs" / "foreign" / name).mkdir(parents=True)
        (tmp / "runs" / "foreign" / name / "record.json").write_text(text)
    return tmp / "runs"


def test_validate_record_names_what_is_wrong() -> None:
    good = {"status": "done", "run_id": "a", "metrics": {"miou": 0.5}, "config": {"model": {"name": "tmanet"}}}
    assert validate_record(good) is None
    assert validate_record([1]) == "expected a JSON object (a run record), got list"
    assert validate_record(None) == "expected a JSON object (a run record), got null"
    assert "metrics.miou must be a finite number in [0, 1], got nan" == validate_record(
        {**good, "metrics": {"miou": float("nan")}}
    )
    assert "got 1.5" in validate_record({**good, "metrics": {"miou": 1.5}})
    assert "got True" in validate_record({**good, "metrics": {"miou": True}})
    assert "metrics.tc" in validate_record({**good, "metrics": {"miou": 0.5, "tc": "x"}})
    assert "status is 'running'" in validate_record({**good, "status": "running"})
    assert "config must be an object with model.name" in validate_record({**good, "config": {}})
    absent = {"miou": 0.5, "per_class_iou": {"road": 0.4, "bus": None}}  # None: a class absent from labels and preds
    assert validate_record({**good, "metrics": absent}) is None
    assert "per_class_iou must map" in validate_record({**good, "metrics": {"miou": 0.5, "per_class_iou": {"a": "x"}}})
    assert "metrics.per_image is malformed" in validate_record(
        {**good, "metrics": {"miou": 0.5, "per_image": {"names": ["a"], "intersection": [["x"]]}}}
    )


def test_invalid_records_are_skipped_with_a_warning_listing_them(tmp_path: Path, capsys) -> None:
    runs = _folder_with_foreign_records(tmp_path)
    assert report_command([str(runs)], str(tmp_path / "reports")) == 0
    out, err = capsys.readouterr()
    assert err.startswith("warning: skipped 5 invalid run records (pass --strict to stop at the first instead):")
    reasons = {
        "list": " holds a JSON array, not a record",
        "null": " holds null, not a record",
        "half": " is unreadable (not valid JSON",
        "status_only": ": metrics must be an object holding miou, got None",
        "high": ": metrics.miou must be a finite number in [0, 1], got 'high'",
    }
    lines = err.splitlines()[1:]
    for name, reason in reasons.items():
        assert any(f"foreign/{name}/record.json{reason}" in line for line in lines), (name, err)
    md = (tmp_path / "reports" / "tables" / "runs.md").read_text()
    assert "skipped 5 invalid records: " in md and "foreign/high/record.json" in md
    assert "runs used (4 records under" in out


def test_strict_mode_aborts_at_the_first_invalid_record(tmp_path: Path) -> None:
    runs = _folder_with_foreign_records(tmp_path)
    with pytest.raises(ReportError, match=r"foreign/half/record.json is unreadable \(not valid JSON.*drop --strict"):
        build_report([str(runs)], tmp_path / "reports", figures=False, strict=True)


def test_factor_column_keeps_its_dtype_despite_foreign_records(tmp_path: Path) -> None:
    runs = _folder_with_foreign_records(tmp_path)
    result = build_report([str(runs)], tmp_path / "reports", figures=False)
    ((table, paths),) = result["tables"]
    assert table.factor_label == "memory_length" and list(table.frame["n"]) == [2, 2]
    assert table.frame["memory_length"].dtype.kind == "i"
    assert list(pd.read_csv(paths["csv"])["memory_length"]) == [1, 2]
    assert len(result["invalid"]) == 5


def _pretend_sweep(spec: Path, overrides: tuple[str, ...]) -> list[str]:
    """Records and manifest lines as ``bench sweep SPEC OVERRIDES`` leaves them; returns the run ids."""
    grid = build_grid(spec, overrides)
    runs = grid.runs
    fabricate_records(spec, lambda r: 0.4 + 0.1 * r.config.model.memory_length, overrides=overrides)
    manifest = grid.manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with manifest.open("a") as f:
        for run in runs:
            f.write(json.dumps({"event": "submit", "run_id": run.run_id, "launcher": "local"}) + "\n")
    return [run.run_id for run in runs]


def test_report_of_a_grid_swept_with_overrides(tmp_path: Path, capsys) -> None:
    spec = write_report_spec(
        tmp_path,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2]}}],
        REPORT_BASE,
        seeds=[0],
    )
    ids = _pretend_sweep(spec, ("train.iters=10",))
    # without the overrides: no table, and the reason
    assert main(["report", str(spec), "--out", str(tmp_path / "r0")]) == 1
    out = capsys.readouterr().out
    assert "0 of 2 records found" in out
    assert "the last sweep of this grid ran with different overrides: pass the same overrides to bench report" in out
    # with them (after an option, as bench sweep takes them): the swept runs, named
    assert main(["report", str(spec), "--out", str(tmp_path / "r1"), "train.iters=10"]) == 0
    out = capsys.readouterr().out
    assert f"runs of the spec with overrides train.iters=10: 2 of 2 records found; used: {', '.join(ids)}." in out
    csv = pd.read_csv(tmp_path / "r1" / "tables" / "syn_mem.csv")
    assert list(csv["miou_mean"]) == [pytest.approx(50.0), pytest.approx(60.0)] and set(csv["run_ids"]) == set(ids)
    assert "different overrides" not in out


def test_older_runs_of_a_grid_come_with_a_note_about_the_newer_sweep(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2]}}],
        REPORT_BASE,
        seeds=[0],
    )
    old = _pretend_sweep(spec, ())
    _pretend_sweep(spec, ("train.iters=10",))
    result = build_report([str(spec)], tmp_path / "reports", figures=False)
    ((table, _),) = result["tables"]
    assert set(table.frame["run_ids"]) == set(old)
    note = next(n for n in table.notes if "different overrides" in n)
    assert "this expansion has 2 finished records (of an earlier sweep)" in note


def test_an_invalid_record_of_a_spec_run_counts_as_missing(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2]}}],
        REPORT_BASE,
        seeds=[0, 1],
    )
    fabricate_records(spec, lambda r: 0.5)
    broken = next(r for r in build_grid(spec).runs if r.config.model.memory_length == 2)
    (broken.run_dir / "record.json").write_text('{"status": "done", "metrics": {"miou": 2.0}}')
    source = load_source(spec)
    assert source.not_done == [broken.run_id] and len(source.records) == 3
    assert source.invalid == [
        f"{broken.run_dir / 'record.json'}: metrics.miou must be a finite number in [0, 1], got 2.0"
    ]
    with pytest.raises(ReportError, match=broken.run_id):
        load_source(spec, strict=True)


def test_records_made_by_other_code_are_skipped_unless_accepted(tmp_path):
    """Issue 18: a report never shows a number that other code made without saying so."""
    from helpers import fake_eval_record

    from bench.run.rundir import RunDir

    made_now = fake_eval_record("tmanet-now", 0, miou=0.5, config={"model": {"name": "tmanet"}})
    old = {
        **fake_eval_record("tmanet-old", 1, miou=0.9, config={"model": {"name": "tmanet"}}),
        "code": {**made_now["code"], "suite": "0" * 40, "commit": "abcdef1234567"},
    }
    for record in (made_now, old):
        (tmp_path / record["run_id"]).mkdir()
        RunDir(tmp_path / record["run_id"]).write_record(record)
    source = load_source(tmp_path)
    assert [r["run_id"] for r in source.records] == ["tmanet-now"]
    assert (
        len(source.invalid) == 1
        and "stale: code changed (suite sources (made at commit abcdef1234" in source.invalid[0]
    )
    assert "--accept-stale" in source.invalid[0]
    assert sorted(r["run_id"] for r in load_source(tmp_path, accept_stale=True).records) == ["tmanet-now", "tmanet-old"]

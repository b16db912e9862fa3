"""The VSPW commands: bench prepare-vspw, bench score (with CIs over videos), bench eval of whole videos into the
record (what make demo does for mVC), and the report's mVC columns."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import tiny_config
from helpers.vspw_tree import frame_name, mask_of, write_vspw_tree

from bench.cli import main
from bench.data.catalog import default_palette
from bench.data.submission import submission_file, write_prediction
from bench.data.vspw import vspw_lut
from bench.demo import video_metrics
from bench.report.notes import table_notes
from bench.report.paper import load_paper_reference
from bench.report.sources import load_source
from bench.report.stats import counts_from_record, row_stats, run_miou
from bench.report.table_files import display_frame
from bench.report.tables import summarise
from bench.run.eval_run import add_missing_video_metrics
from bench.run.execute import execute
from bench.run.rundir import RunDir

VIDEOS = {"3_ccc": 10, "5_eee": 12}


def test_prepare_vspw_prints_the_counts_and_fails_on_a_damaged_tree(tmp_path, capsys):
    root = write_vspw_tree(tmp_path, {"train": {"1_a": 3}, "val": VIDEOS})
    assert main(["prepare-vspw", "--root", str(root), "--splits", "train", "val"]) == 0
    out = capsys.readouterr().out
    assert "  val: 2/2 videos (paper: 343), 22 frames, 22 masks, 0 problems" in out and out.rstrip().endswith("OK")
    (root / "data" / "3_ccc" / "origin" / f"{frame_name(2)}.jpg").write_bytes(b"")
    assert main(["prepare-vspw", "--root", str(root), "--splits", "val", "--no-decode"]) == 1
    assert f"{frame_name(2)}.jpg: 0 bytes" in capsys.readouterr().out


def test_score_prints_miou_and_mvc_with_video_bootstrap_cis(tmp_path, capsys):
    root = write_vspw_tree(tmp_path, {"val": VIDEOS})
    rng = np.random.default_rng(0)
    for video, frames in VIDEOS.items():
        for k in range(frames):
            pred = np.where(vspw_lut()[mask_of(k)] == 255, 0, vspw_lut()[mask_of(k)])
            pred[rng.random(pred.shape) < 0.1] = 5
            write_prediction(submission_file(tmp_path / "out", video, frame_name(k)), pred, default_palette(124))
    report = tmp_path / "score.json"
    argv = ["score", str(tmp_path / "out"), "--root", str(root), "--windows", "8", "--json", str(report)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "scored 2 videos, 22 frames" in out
    assert "mIoU (nonzero_union): " in out and "mIoU (present_in_gt): " in out
    line = next(x for x in out.splitlines() if x.startswith("mVC_8 (official): "))
    assert "[" in line and "(2 videos, 0 skipped, 6 windows)" in line
    assert "mVC_8 (cffm): — (0 videos, 2 skipped, 0 windows)" in out  # both videos have <= 16 frames
    stored = json.loads(report.read_text())
    assert stored["per_video"]["names"] == list(VIDEOS) and stored["split"] == "val"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[object, object]:
    """A tiny synthetic run, trained once for this module (clip evaluation, as make demo's runs)."""
    folder = tmp_path_factory.mktemp("runs")
    cfg = tiny_config(f"output_root={folder}", "train.iters=2", settings={"model.memory_length": 1})
    execute(cfg)
    return cfg, folder


def test_the_demo_skips_a_run_whole_videos_cannot_evaluate_and_goes_on(tmp_path, capsys):
    """DFF on ground-truth flow at k = 3 reads flow from t-2, which the synthetic videos do not carry."""
    dff, plain = (
        tiny_config(f"output_root={tmp_path}", "train.iters=1", settings=settings)
        for settings in (
            {"model.name": "dff", "model.keyframe_interval": 3, "model.flow.source": "ground_truth"},
            {"model.memory_length": 1},
        )
    )
    for cfg in (dff, plain):
        execute(cfg)
    grid = SimpleNamespace(runs=[SimpleNamespace(run_id="dff", config=dff), SimpleNamespace(run_id="r", config=plain)])
    assert video_metrics([grid]) == 1
    assert "dff: no whole-video metrics: whole videos carry ground-truth flow to the previous frame only" in (
        capsys.readouterr().out
    )
    assert "videos" not in RunDir.of(dff).read_record().record
    assert "videos" in RunDir.of(plain).read_record().record  # the stage went on to the next run


def test_whole_video_metrics_join_a_finished_runs_record_and_its_report_table(finished):
    cfg, folder = finished
    grid = SimpleNamespace(runs=[SimpleNamespace(run_id="r", config=cfg)] * 2)  # one run in two grids
    assert video_metrics([grid]) == 1  # make demo's stage: bench eval RUN eval.whole_videos=true --record
    record = RunDir.of(cfg).read_record().record
    videos = record["videos"]
    assert videos["whole_videos"] and videos["num_videos"] == 4 and 0 <= videos["mvc_8"] <= 1
    assert videos["mvc"]["official"]["counts"]["8"]["windows"] == 4 * 4  # range(12 - 8) per video (DEMO_VIDEOS)
    assert add_missing_video_metrics(cfg) is None and video_metrics([grid]) == 0  # measured once
    source = load_source(folder)
    table = summarise(source, load_paper_reference())
    shown = display_frame(table)
    constant = "†" if table.frame["constant_runs"].iloc[0] else ""  # a constant prediction's mVC is marked
    assert shown["mVC_8 (%)"].iloc[0] == f"{100 * videos['mvc_8']:.2f}{constant}" and "mVC_16 (%)" not in shown
    notes = " ".join(table_notes(source, table, load_paper_reference()))
    assert "VSPW's video consistency" in notes and "computation: official" in notes


def test_a_whole_video_record_gets_a_bootstrap_over_videos_under_its_convention(finished):
    cfg, _ = finished
    videos = RunDir.of(cfg).read_record().record.get("videos") or add_missing_video_metrics(cfg)
    metrics = {**videos, "miou": videos["miou_present_in_gt"], "miou_convention": "present_in_gt"}
    counts = counts_from_record({"run_id": "r", "seed": 0, "metrics": metrics})
    assert counts.unit == "videos" and counts.names == tuple(videos["per_video"]["names"])
    assert run_miou(counts) == pytest.approx(metrics["miou"], abs=1e-12)  # recomputed under its own convention
    stats = row_stats([counts])
    assert stats.ci_method == "videos, n = 1" and stats.ci_low <= stats.mean <= stats.ci_high


def test_eval_record_needs_whole_videos(finished, capsys):
    cfg, _ = finished
    assert main(["eval", str(RunDir.of(cfg).path), "--record"]) != 0
    assert "--record adds whole-video metrics to a run's record: add eval.whole_videos=true" in capsys.readouterr().err


def test_the_published_vspw_rows_carry_their_source_and_match_only_their_backbone():
    from bench.report.paper import paper_number

    reference = load_paper_reference()
    rows = {e["method"]: e for e in reference["entries"] if e["dataset"] == "vspw"}
    assert len(rows) == 14 and all(e["source"] == "Ashesham/TV3S README.md @4951815" for e in rows.values())
    cffm = rows["CFFM MiT-B1"]
    assert (cffm["miou"], cffm["mvc_8"], cffm["mvc_16"]) == (38.5, 88.6, 84.1)
    assert rows["TV3S MiT-B2"]["mvc_16"] == 88.35
    value, note = paper_number(reference, "vspw", {"model.name": "cffm", "model.backbone": "mit_b1"}, "methods")
    assert value == 38.5 and "source: Ashesham/TV3S" in note
    resnet = {"model.name": "tmanet", "model.backbone": "resnet50c", "model.memory_length": 3}
    assert paper_number(reference, "vspw", resnet, "methods") == (None, "no paper number for this setting")

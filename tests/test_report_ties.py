"""Reports claim nothing among ties: a Pareto front, a best or a lowest row only when the calibrated test separates
it; rows at chance and constant predictions are marked (their 100% temporal consistency is flagged); a CI is never
printed narrower than its digits ([13.16, 13.21], not [13.2, 13.2]) nor computed from identical runs; oracle labels
survive the paper layout; the HTML table is readable at 1400 px (in headless Chromium where it is installed)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import REPORT_BASE, fake_eval_record, write_report_spec

from bench.config import to_dict
from bench.grid.spec import build_grid
from bench.report.build import build_report
from bench.report.table_model import fmt_ci
from bench.run.identity import RunIdentity

CLASSES = 4
LABELS = np.array([[600, 200, 150, 50]] * 20)  # (images, classes): class 0 is the majority
CHANCE = 100 * 600 / 1000 / 4  # 15.0: the majority class everywhere


def _constant_counts() -> tuple[dict, list[list[int]]]:
    """Per-image counts and the confusion matrix of a model predicting class 0 on every pixel."""
    union = LABELS.copy()
    union[:, 0] = LABELS.sum(1)
    intersection = np.zeros_like(LABELS)
    intersection[:, 0] = LABELS[:, 0]
    matrix = np.zeros((CLASSES, CLASSES), dtype=int)
    matrix[:, 0] = LABELS.sum(0)
    names = [f"synthetic-val-{i:04d}" for i in range(len(LABELS))]
    per_image = {"names": names, "intersection": intersection.tolist(), "union": union.tolist()}
    return {**per_image, "label_pixels": LABELS.tolist()}, matrix.tolist()


def _write(spec: Path, metrics_of, latency_of) -> None:
    """A finished record per run: ``metrics_of(run)`` -> metrics; latency ``latency_of(run)`` ms over 5 passes."""
    for run in build_grid(spec).runs:
        ms = latency_of(run)
        passes = [ms * f for f in (0.98, 0.99, 1.0, 1.01, 1.02)]
        latency = {"modes": {"streaming": {"median_ms": ms, "pass_medians_ms": passes}}}
        record = fake_eval_record(
            run.run_id, run.seed, miou=0.0, plugins=RunIdentity.of(run.config).plugins, name=run.run_id,
            model=run.config.model.name, dataset="synthetic", config=to_dict(run.config), latency=latency,
        )  # fmt: skip
        record["metrics"] = metrics_of(run)
        (run.run_dir).mkdir(parents=True, exist_ok=True)
        (run.run_dir / "record.json").write_text(json.dumps(record))


def _methods(tmp: Path, seeds: list[int], ablation: str = "methods") -> Path:
    grid = [
        {"product": {"model.name": ["tmanet", "per_frame"]}},
        {"zip": {"model.name": ["flow_warp"], "model.memory_length": [1], "model.flow.source": ["ground_truth"]}},
    ]
    base = {**REPORT_BASE, "data": {"dataset": "synthetic", "synthetic": {"num_classes": CLASSES}}}
    return write_report_spec(tmp, f"ties_{ablation}", ablation, "model.name", grid, base, seeds)


def test_rows_at_chance_and_constant_predictions_are_marked_and_nothing_is_called_best(tmp_path):
    """The issue's report: every row predicts the majority class everywhere (13.18-style chance level, exact
    ties), latencies 10 and 10.1 ms: no best, no lowest, no front; every row at chance and constant, its 100%
    pixel agreement flagged; identical runs get no CI."""
    per_image, matrix = _constant_counts()
    chance_metrics = {
        "miou": CHANCE / 100, "per_image": per_image, "confusion_matrix": matrix, "pixel_agreement": 1.0,
        "etc_tc": 1.0, "pixel_acc": 0.6,
    }  # fmt: skip
    spec = _methods(tmp_path, [0, 1, 2])
    _write(spec, lambda run: chance_metrics, lambda run: 10.0 + 0.1 * (run.config.model.name == "tmanet"))
    result = build_report([str(spec)], tmp_path / "reports")
    text = (tmp_path / "reports" / "tables" / "ties_methods.md").read_text()
    index = (tmp_path / "reports" / "index.md").read_text()
    assert "best method" not in text and "lowest" not in index and "best" not in index.split("## Figures")[0]
    assert "| tmanet (at chance) (constant prediction) " in text
    assert "| flow_warp (oracle: ground-truth flow) (at chance) (constant prediction) " in text
    assert "100.00†" in text and "† constant prediction (" in text and "trivially 100%" in text
    assert "no CI (tmanet (at chance) (constant prediction)" in text and "every seed gave the same mIoU" in text
    rows = list(csv.DictReader((tmp_path / "reports" / "tables" / "ties_methods.csv").open()))
    assert all(row["ci_low"] == "" and row["at_chance"] == "True" and row["constant_runs"] == "3" for row in rows)
    front = next(f for f in result["figures"] if f.name == "accuracy_vs_latency").reading
    assert front.startswith("no Pareto front (oracles excluded): no row is separated from another")


def test_a_front_best_and_lowest_are_named_only_when_the_test_separates_them(tmp_path):
    """tmanet 13.20 vs per_frame 13.18 (std 0.02) at the same latency: no front, no best, no lowest, and the CI
    prints its width; with tmanet 10 points up and per_frame separably faster, both are named."""

    def metrics(shift: dict[str, float]):
        return lambda run: {"miou": (13.18 + shift.get(run.config.model.name, 0.0) + 0.02 * run.seed) / 100}

    spec = _methods(tmp_path, [0, 1, 2, 3, 4])
    _write(spec, metrics({"tmanet": 0.02, "flow_warp": 0.01}), lambda run: 10.0)
    result = build_report([str(spec)], tmp_path / "tied")
    table = (tmp_path / "tied" / "tables" / "ties_methods.md").read_text()
    assert "| [13.20, 13.28] |" in table and "[13.2, 13.3]" not in table and "best method" not in table
    reading = result["tables"][0][0]
    assert "lowest" not in (tmp_path / "tied" / "index.md").read_text()
    front = next(f for f in result["figures"] if f.name == "accuracy_vs_latency").reading
    assert front.startswith("no Pareto front") and reading.best is not None and not reading.best.found

    (tmp_path / "apart").mkdir()
    spec = _methods(tmp_path / "apart", [0, 1, 2], ablation="sota")
    _write(
        spec,
        metrics({"tmanet": 10.0, "per_frame": -5.0}),
        lambda run: 30.0 if run.config.model.name == "tmanet" else 10.0,
    )
    result = build_report([str(spec)], tmp_path / "apart_reports")
    front = next(f for f in result["figures"] if f.name == "accuracy_vs_latency").reading
    assert front.startswith("Pareto front (oracles excluded): per_frame (10.0 ms, 8.2), tmanet (30.0 ms, 23.2)")
    index = (tmp_path / "apart_reports" / "index.md").read_text()
    assert "best method: tmanet" in index and "lowest: per_frame (8.2 mIoU" in index


def test_oracle_labels_survive_the_paper_layout(tmp_path):
    spec = _methods(tmp_path, [0, 1], ablation="sota")
    _write(spec, lambda run: {"miou": 0.5 + 0.01 * run.seed}, lambda run: 10.0)
    build_report([str(spec)], tmp_path / "reports")
    paper = (tmp_path / "reports" / "tables" / "synthetic_sota_paper.md").read_text()
    assert "| flow_warp (oracle: ground-truth flow) |" in paper and "| tmanet                                |" in paper


def test_a_ci_prints_as_many_digits_as_its_width_needs():
    assert fmt_ci(13.16, 13.21) == "[13.16, 13.21]" and fmt_ci(1.2, 3.4) == "[1.2, 3.4]"
    assert fmt_ci(-0.02, 0.02, signed=True) == "[-0.02, +0.02]" and fmt_ci(13.18, 13.18) == "[13.2, 13.2]"
    assert fmt_ci(5.0001, 5.0002) == "[5.0001, 5.0002]"


def _chromium() -> str:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("headless Chromium not found; install it to run the browser checks: apt-get install chromium")


LAYOUT_PROBE = """<script>
window.addEventListener("load", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  var links = Array.prototype.map.call(document.querySelectorAll("#summary td.runs a"), function (a) {
    return a.getClientRects().length;
  });
  var rows = Array.prototype.map.call(document.querySelectorAll("#summary tbody tr"), function (tr) {
    return tr.getBoundingClientRect().height;
  });
  var key = document.querySelector("#summary td.key").getBoundingClientRect();
  document.body.setAttribute("data-layout", JSON.stringify({links: links, rows: rows, key: key.width}));
});
</script></body>"""


def test_the_html_table_is_readable_at_1400_px(tmp_path):
    """Eight methods, three seeds each: every run id on one line, rows a few lines high, the method column wide."""
    grid = [
        {"product": {"model.name": ["tmanet", "per_frame", "fcn", "pspnet"]}},
        {"zip": {"model.name": ["local_tmanet"], "model.window_size": [3]}},
        {"zip": {"model.name": ["flow_warp"], "model.memory_length": [1], "model.flow.source": ["ground_truth"]}},
        {"zip": {"model.name": ["dff", "accel"], "model.keyframe_interval": [5, 5], "model.flow.source": ["dis"] * 2}},
    ]
    spec = write_report_spec(tmp_path, "wide", "sota", "model.name", grid, REPORT_BASE, [0, 1, 2])
    _write(spec, lambda run: {"miou": 0.1318 + 0.0002 * run.seed}, lambda run: 10.0)
    build_report([str(spec)], tmp_path / "reports")
    page = tmp_path / "reports" / "html" / "wide.html"
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", LAYOUT_PROBE))
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"]
    done = subprocess.run([*command, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    layout = json.loads(done.stdout.split('data-layout="', 1)[1].split('"', 1)[0].replace("&quot;", '"'))
    assert len(layout["links"]) == 24 and set(layout["links"]) == {1}  # no run id breaks across lines
    assert max(layout["rows"]) < 100 and layout["key"] > 100  # three ids stacked at most; the method readable

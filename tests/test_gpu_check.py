"""``make gpu-check`` in CPU smoke mode: every part runs at tiny sizes and lands in report.json / report.md; a part
past its budget is killed and reported as skipped; the JUnit parser reads pytest's outcomes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.perf import gpu_check
from bench.perf.gpu_parts import latency_plan, parse_junit


def test_smoke_run_writes_every_part_to_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_check, "_cuda_available", lambda: False)
    # budgets far above the smoke sizes' need, so a loaded machine cannot turn "done" into "partial"
    monkeypatch.setattr(gpu_check, "SMOKE_BUDGETS_S", {k: 10 * v for k, v in gpu_check.SMOKE_BUDGETS_S.items()})
    code = gpu_check.main(["--smoke", "--inline", "--out", str(tmp_path), "--max-seconds", "3000"])
    report = json.loads((tmp_path / "report.json").read_text())
    parts = report["parts"]
    assert code == 0 and report["smoke"] and list(parts) == list(gpu_check.BUDGETS_S)
    assert {name: p["status"] for name, p in parts.items()} == {
        "environment": "done",
        "cuda_tests": "skipped",
        "attention": "done",
        "latency": "done",
        "fps": "done",
        "train_step": "done",
    }
    fps_rows = {(r["model"], r["mode"]) for r in parts["fps"]["rows"]}
    assert {("cffm MiT-B1", "streaming"), ("cffm MiT-B1", "recompute"), ("segformer MiT-B1", "streaming")} <= fps_rows
    assert all(r["size"] == "32x32" and r["gmacs"] > 0 and r["params_m"] > 0 for r in parts["fps"]["rows"])
    assert parts["environment"]["rows"][0]["torch"]
    assert {(r["impl"], r["dtype"]) for r in parts["attention"]["rows"]} == {
        ("sdpa", "float32"),
        ("reference", "float32"),
    }
    measured = {(r["model"], r["T"], r["mode"]) for r in parts["latency"]["rows"]}
    assert {("tmanet", 1, "streaming"), ("tmanet", 1, "recompute"), ("per_frame", 0, "streaming")} <= measured
    assert {m for m, _ in latency_plan(True)} == {m for m, _, _ in measured}  # every registered model
    phases = {r["phase"]: r["median_ms"] for r in parts["train_step"]["rows"]}
    assert set(phases) == {"data", "forward", "backward", "optimizer", "step"} and phases["step"] > 0
    assert any("projected 80000 iterations" in n for n in parts["train_step"]["notes"])
    md = (tmp_path / "report.md").read_text()
    assert md.index("## Environment") < md.index("## 1. CUDA tests") < md.index("## 4. One training step")
    assert "CPU SMOKE MODE" in md and "status: **skipped**" in md and "reference / fused" in md


def test_a_part_past_its_budget_is_killed_and_the_next_one_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(gpu_check, "GRACE_S", 0.0)
    budgets = {**gpu_check.SMOKE_BUDGETS_S, "environment": 0.05, "cuda_tests": 60.0}
    monkeypatch.setattr(gpu_check, "SMOKE_BUDGETS_S", budgets)
    parts = gpu_check.run_parts(["environment", "cuda_tests"], tmp_path, smoke=True, max_seconds=600, inline=False)
    assert parts[0]["status"] == "skipped" and "killed at its budget" in parts[0]["notes"][-1]
    assert parts[1]["status"] == "skipped" and "no CUDA here" in parts[1]["notes"][0]  # it ran, after the kill


def test_parts_left_when_the_total_budget_is_spent_are_skipped_with_a_line(tmp_path: Path):
    parts = gpu_check.run_parts(["environment"], tmp_path, smoke=True, max_seconds=0.5, inline=True)
    assert parts[0]["status"] == "skipped" and "total budget" in parts[0]["notes"][0]
    md = gpu_check.render_markdown(parts, smoke=True, total_s=0.5)
    assert "skipped: the total budget of 0 s ran out" in md


def test_junit_outcomes(tmp_path: Path) -> None:
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite><testcase name="a" time="0.5"/><testcase name="b" time="1">'
        '<failure message="boom">trace</failure></testcase><testcase name="c" time="0">'
        '<skipped message="needs CUDA"/></testcase></testsuite></testsuites>'
    )
    assert [(r["test"], r["outcome"], r["message"]) for r in parse_junit(xml)] == [
        ("a", "passed", ""),
        ("b", "failed", "boom"),
        ("c", "skipped", "needs CUDA"),
    ]


def test_the_makefile_target_runs_the_script() -> None:
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert "gpu-check: $(STAMP)\n\t$(PY) -m bench.perf.gpu_check --out gpu-check" in makefile
    assert "gpu-check/" in (Path(__file__).resolve().parent.parent / ".gitignore").read_text().split()
    assert sys.executable

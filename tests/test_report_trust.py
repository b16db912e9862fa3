"""Reports that can be trusted (issue 18): summaries that say what the table says, numbers recomputed from the
records' own counts, one run id counted once, invalid stored configs skipped, provenance in every output,
run links that exist in a fresh clone."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
from helpers import REPORT_BASE, fabricate_records, per_image_fabricator, write_report_spec

from bench.grid.spec import build_grid
from bench.report.build import build_report
from bench.report.readings import reading
from bench.report.sources import load_source
from bench.run.fingerprint import code_fingerprint
from bench.run.rundir import RunDir

METHODS = [{"product": {"model.name": ["tmanet", "per_frame", "flow_warp"]}}]


def _methods_report(tmp_path: Path, shift: dict[str, float], seeds=(0, 1, 2)):
    spec = write_report_spec(tmp_path, "syn_methods", "methods", "model.name", METHODS, REPORT_BASE, seeds=list(seeds))
    # per-seed spread of ~2 points on top of each method's level (the seed is the unit that varies)
    fabricate_records(
        spec,
        None,
        per_image_of=per_image_fabricator(lambda r: shift[r.config.model.name] + 0.02 * ((r.seed * 7) % 3 - 1)),
    )
    return spec, build_report([str(spec)], tmp_path / "reports", figures=False)


def test_every_significant_difference_is_stated_and_never_called_no_difference(tmp_path: Path) -> None:
    _, result = _methods_report(tmp_path, {"tmanet": 0.25, "per_frame": 0.0, "flow_warp": 0.24})
    ((table, paths),) = result["tables"]
    text = reading(table)
    frame = table.frame.set_index("method")
    assert frame.loc["tmanet", "sig_ref"] == "**" and frame.loc["flow_warp", "sig_ref"] == "**"
    for (i, j), comparison in table.pairs.items():
        a, b = table.frame.loc[i, "method"], table.frame.loc[j, "method"]
        high, low = (a, b) if comparison.delta > 0 else (b, a)
        if comparison.significant:
            assert re.search(rf"{high} > {low}: \+\d+\.\d \[\+\d+\.\d, \+\d+\.\d\], Holm p", text), text
            assert f"{high} vs {low}: no significant difference" not in text
        else:
            assert f"{high} vs {low}: no significant difference" in text
    assert "tmanet > per_frame" in text and "flow_warp > per_frame" in text
    assert "tmanet vs flow_warp: no significant difference, +1.3 [-3.6, +6.2], Holm p = 0.496" in text
    assert text.startswith(
        "method (Welch t-test over seeds, Holm-adjusted over 3 tests, α = 0.05): tmanet > per_frame: +"
    )
    assert "no single row is significantly better than every other" in text
    md = paths["md"].read_text()
    assert "statistics (docs/statistics.md): the seed (training run) is the unit" in md
    assert "Holm-adjusted over the table's 3 tested pairwise comparisons" in md


def test_rows_of_one_seed_get_no_significance_claim(tmp_path: Path) -> None:
    _, result = _methods_report(tmp_path, {"tmanet": 0.25, "per_frame": 0.0, "flow_warp": 0.1}, seeds=(0,))
    ((table, paths),) = result["tables"]
    text = reading(table)
    assert "n < 2: no test" in text and ">" not in text.split(":", 1)[1].replace("(Δ", "")
    assert table.frame["p_ref"].isna().all() and (table.frame["sig_ref"] == "").all()
    assert set(table.frame["ci_method"]) == {"images, n = 1"}
    md = paths["md"].read_text()
    assert "a within-run interval that ignores the seed-to-seed spread" in md
    assert "no comparison tested (every pair has a row with n < 2)" in md and "one comparison tested" not in md


def _record_path(spec: Path, model: str, seed: int) -> Path:
    run = next(r for r in build_grid(spec).runs if r.config.model.name == model and r.seed == seed)
    return RunDir(RunDir.of(run.config).path).record_file


def test_a_headline_that_disagrees_with_its_counts_is_skipped_with_a_note(tmp_path: Path) -> None:
    spec, _ = _methods_report(tmp_path, {"tmanet": 0.1, "per_frame": 0.0, "flow_warp": 0.05})
    path = _record_path(spec, "tmanet", 1)
    record = json.loads(path.read_text())
    record["metrics"]["miou"] = 0.583  # the counts say otherwise
    path.write_text(json.dumps(record))
    result = build_report([str(spec)], tmp_path / "reports2", figures=False)
    ((table, paths),) = result["tables"]
    assert int(table.frame.set_index("method").loc["tmanet", "n"]) == 2
    assert record["run_id"] not in table.frame.set_index("method").loc["tmanet", "run_ids"]
    md = paths["md"].read_text()
    assert "skipped 1 invalid records" in md and "metrics.miou 58.30 disagrees with its own per-image counts" in md


def test_one_run_id_counts_once_across_folders(tmp_path: Path) -> None:
    spec, _ = _methods_report(tmp_path, {"tmanet": 0.1, "per_frame": 0.0, "flow_warp": 0.05}, seeds=(0,))
    original = _record_path(spec, "tmanet", 0).parent
    shutil.copytree(original, tmp_path / "runs" / "copy" / original.name)
    source = load_source(tmp_path / "runs")
    ids = [r["run_id"] for r in source.records]
    assert len(ids) == len(set(ids)) == 3 and len(source.duplicates) == 1
    result = build_report([str(tmp_path / "runs")], tmp_path / "reports2", figures=False)
    ((table, paths),) = result["tables"]
    assert list(table.frame["n"]) == [1, 1, 1]
    assert "counted once: 1 duplicate records of a run id already used" in paths["md"].read_text()


def test_a_record_whose_stored_config_no_longer_validates_is_skipped(tmp_path: Path) -> None:
    spec, _ = _methods_report(tmp_path, {"tmanet": 0.1, "per_frame": 0.0, "flow_warp": 0.05})
    path = _record_path(spec, "per_frame", 2)
    record = json.loads(path.read_text())
    record["config"]["model"]["no_such_key"] = 1
    path.write_text(json.dumps(record))
    result = build_report([str(spec)], tmp_path / "reports2", figures=False)
    ((table, paths),) = result["tables"]
    assert int(table.frame.set_index("method").loc["per_frame", "n"]) == 2
    assert any("stored config does not validate (unknown key model.no_such_key" in p for p in result["invalid"])


def _stamp(path: Path, **fields) -> None:
    record = json.loads(path.read_text())
    record.update(fields)
    path.write_text(json.dumps(record))


def test_every_output_states_its_provenance_and_flags_mixed_environments(tmp_path: Path) -> None:
    spec, _ = _methods_report(tmp_path, {"tmanet": 0.1, "per_frame": 0.0, "flow_warp": 0.05}, seeds=(0,))
    env = {
        "git_commit": "abcdef1234567890",
        "versions": {"torch": "2.14.1", "timm": "1.0.9", "numpy": "2.4.6"},
        "device": "cpu",
        "environment": {"cpu_model": "Test CPU 9000", "git_dirty": False},
    }
    for model in ("tmanet", "per_frame", "flow_warp"):  # a clean tree, whatever the tree running the test is
        _stamp(_record_path(spec, model, 0), code={**code_fingerprint(), "dirty": False}, **env)
    result = build_report([str(spec)], tmp_path / "same", figures=False)
    ((table, paths),) = result["tables"]
    line = (
        "provenance: commit abcdef1234 (uncommitted changes: no), torch 2.14.1, timm 1.0.9, numpy 2.4.6, "
        "device cpu (Test CPU 9000; CPU flags unknown; unknown torch threads)"
    )
    html = (tmp_path / "same" / "html" / "syn_methods.html").read_text()
    for text in (paths["md"].read_text(), paths["tex"].read_text(), html):
        assert line in text and "MIXED" not in text
    csv = pd.read_csv(paths["csv"])
    assert set(csv["torch"].astype(str)) == {"2.14.1"} and set(csv["hardware"]) == {"Test CPU 9000"}
    _stamp(
        _record_path(spec, "per_frame", 0),
        versions={**env["versions"], "torch": "2.5.1"},
        code={**code_fingerprint(), "dirty": True},
    )
    ((table, paths),) = build_report([str(spec)], tmp_path / "mixed", figures=False)["tables"]
    md = paths["md"].read_text()
    assert "MIXED ENVIRONMENTS: the runs of this table differ in dirty, torch" in md
    assert "torch 2.14.1 | 2.5.1" in md
    assert pd.read_csv(paths["csv"]).set_index("method").loc["per_frame", "dirty"] == "yes"


def test_provenance_names_opencv_where_the_records_store_it() -> None:
    from bench.report.provenance import provenance_note
    from bench.run.records import package_versions

    assert package_versions()["opencv"]  # a dependency: classical flow (DIS, Farneback) depends on its version
    base = {"git_commit": "abcdef1234567890", "versions": {"torch": "2.14.1", "timm": "1.0.9", "numpy": "2.4.6"}}
    assert "opencv" not in provenance_note([base])
    with_cv = {**base, "versions": {**base["versions"], "opencv": "5.1.0"}}
    assert provenance_note([with_cv, base]).endswith(
        "numpy 2.4.6, device unknown (unknown; CPU flags unknown; unknown torch threads), opencv 5.1.0"
    )


def test_commits_with_the_same_computing_code_are_not_called_mixed_environments() -> None:
    from bench.report.provenance import provenance_note

    def record(commit: str, suite: str) -> dict:
        return {
            "git_commit": commit,
            "code": {"suite": suite, "plugins": {}, "dirty": False},
            "versions": {"torch": "2.14.1", "timm": "1.0.9", "numpy": "2.4.6"},
        }

    same = provenance_note([record("a" * 40, "s1"), record("b" * 40, "s1")])
    assert "MIXED" not in same and "2 commits with the same computing code" in same
    assert "aaaaaaaaaa | bbbbbbbbbb" in same
    assert provenance_note([record("a" * 40, "s1"), record("b" * 40, "s2")]).startswith("MIXED ENVIRONMENTS")


def test_html_run_links_exist_in_a_fresh_clone_or_say_not_committed(tmp_path: Path) -> None:
    spec, _ = _methods_report(tmp_path, {"tmanet": 0.1, "per_frame": 0.0, "flow_warp": 0.05}, seeds=(0,))
    committed = _record_path(spec, "tmanet", 0)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", str(committed)], check=True)
    subprocess.run([*git, "commit", "-qm", "one run"], check=True)
    build_report([str(spec)], tmp_path / "reports2", figures=False)
    html = (tmp_path / "reports2" / "html" / "syn_methods.html").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<tr id="run-([^"]+)">(.*?)</tr>', html)}
    tmanet = json.loads(committed.read_text())["run_id"]
    assert "run not committed" not in rows[tmanet] and "record.json" in rows[tmanet]
    others = [row for run_id, row in rows.items() if run_id != tmanet]
    assert len(others) == 2 and all("run not committed (local copy: " in row for row in others)


def test_a_keyframe_models_latency_is_its_cycle_mean():
    """DFF's streaming median is a non-key frame's time; the table shows the mean over a keyframe cycle."""
    from bench.report.frames import latency_ms

    modes = {
        "streaming": {
            "median_ms": 2.0,
            "frame_types": {"key": {"median_ms": 10.0}, "non_key": {"median_ms": 2.0}, "cycle_mean_ms": 3.6},
        }
    }
    assert latency_ms({"latency": {"modes": modes}}) == 3.6
    assert latency_ms({"latency": {"modes": {"streaming": {"median_ms": 2.0}}}}) == 2.0

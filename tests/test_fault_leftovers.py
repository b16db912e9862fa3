"""The fault matrix of issue 34, part 2: disagreements and leftovers. Each test fails on the code before issue 34
(commit 9654cc8) and passes after. Part 1 (double trainings, wrong results, loss, escape, tracebacks):
test_fault_matrix.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import TINY, as_overrides, fabricate_records, fake_slurm, one_line_error, per_image_fabricator, tiny_config

from bench.cli import main
from bench.config import load_config
from bench.grid.spec import SweepError, build_grid
from bench.grid.status import RunState, run_statuses
from bench.grid.sweep import sweep_command
from bench.report.publish import report_lock, staging_dir
from bench.report.stats import RunCounts, row_stats
from bench.run import fingerprint, git
from bench.run.identity import run_id
from bench.run.records import RunStamp, make_record
from bench.run.rundir import RunDir

# --------------------------------------------------------------------------------------------------
# one validity check: bench status / sweep show as done only what bench report accepts


def test_status_sweep_and_report_agree_on_an_edited_headline_and_a_newer_schema(tmp_path, write_spec, capsys):
    spec = write_spec(seeds=[0])
    fabricate_records(spec, miou_of=None, per_image_of=per_image_fabricator(lambda run: 0.0))
    grid = build_grid(spec)
    edited, newer = (RunDir(run.run_dir) for run in grid.runs)
    record = edited.read_record().record
    record["metrics"]["miou"] += 0.1  # a headline edited by hand: its per-image counts say otherwise
    edited.write_record(record)
    record = newer.read_record().record
    newer.write_record({**record, "schema": 2})  # written by a later version: this one cannot read it
    states = run_statuses(grid.runs, grid.manifest)
    assert [s.state for s in states] == [RunState.CORRUPT, RunState.CORRUPT]
    assert "disagrees with its own per-image counts" in states[0].reason
    assert "newer version of the suite" in states[1].reason
    assert sweep_command(str(spec), launcher="local", dry_run=True) == 0
    assert "0 done" in capsys.readouterr().out
    assert main(["report", str(spec), "--out", str(tmp_path / "reports")]) == 1  # no usable record left
    err = capsys.readouterr().err
    assert "disagrees with its own per-image counts" in err and "newer version of the suite" in err


# --------------------------------------------------------------------------------------------------
# leftovers: staging folders, checkpoint .tmp files, a refused sbatch, SLURM job files


def test_a_killed_reports_staging_folder_is_removed_by_the_next_report(tmp_path):
    left = tmp_path / ".staging.abc123.tmp"
    (left / "tables").mkdir(parents=True)
    (left / "tables" / "x.md").write_text("half a report")
    with report_lock(tmp_path):
        stage = staging_dir(tmp_path)
    assert not left.exists() and stage.is_dir()


@pytest.fixture
def gone_writer():
    """(pid, start ticks) of a process that has ended: its temporary files are leftovers."""
    from bench import process  # new in issue 34 (imported here: on older code only this test fails)

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    ticks = process.start_ticks(child.pid)
    child.kill()
    child.wait()
    return child.pid, ticks


def test_a_sweep_removes_the_checkpoint_tmp_a_killed_run_left(tmp_path, write_spec, gone_writer, capsys):
    from bench import process  # new in issue 34 (imported here: on older code only this test fails)

    spec = write_spec(seeds=[0])
    fabricate_records(spec, miou_of=lambda run: 0.5)
    first, second = (RunDir(run.run_dir) for run in build_grid(spec).runs)
    pid, ticks = gone_writer
    left = first.path / f".checkpoint.pt.~{process.host_hash()}~{pid}~{ticks}~~a1b2c3.tmp"
    left.write_bytes(b"\0" * 1000)
    live = second.path / f".checkpoint.pt.~{process.host_hash()}~{os.getpid()}~{process.start_ticks()}~~d4.tmp"
    live.write_bytes(b"\0" * 10)  # a writer at work (this process): kept
    untagged = first.path / ".notes.tmp"  # names no writer: not known to be a leftover, kept
    untagged.write_text("mine")
    assert sweep_command(str(spec), launcher="local") == 0
    assert not left.exists() and live.exists() and untagged.exists()
    assert "removed 1 temporary file(s)" in capsys.readouterr().out
    assert not first.claim_file.exists() and not second.claim_file.exists()


def _cluster(tmp_path, monkeypatch, sbatch: str) -> None:
    fake_slurm(
        tmp_path / "bin",
        monkeypatch,
        squeue="exit 0",
        sacct="exit 0",
        sbatch=sbatch,
        scontrol="echo 'Slurmctld(primary) at head is UP'",
        srun="exit 0",
    )


def test_a_refused_sbatch_leaves_nothing_behind(tmp_path, monkeypatch, write_spec, capsys):
    _cluster(tmp_path, monkeypatch, "echo 'sbatch: error: Batch job submission failed: Invalid partition' >&2; exit 1")
    spec = write_spec()
    monkeypatch.chdir(tmp_path)
    assert sweep_command(str(spec), launcher="slurm") == 2
    assert "Invalid partition" in capsys.readouterr().err
    left = [p for p in tmp_path.rglob("*") if p.is_file() and "bin" not in p.relative_to(tmp_path).parts]
    assert left == [spec]


def test_slurm_job_files_go_under_the_grids_bookkeeping_folder(tmp_path, monkeypatch, write_spec):
    _cluster(tmp_path, monkeypatch, "echo 'Submitted batch job 4242'")
    spec = write_spec()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    assert sweep_command(str(spec), launcher="slurm") == 0
    assert not (tmp_path / "cwd" / "results").exists()
    assert any((tmp_path / "sweeps" / "t" / "slurm").rglob("*.pkl"))


# --------------------------------------------------------------------------------------------------
# run ids, seeds, statistics, divergence, provenance


def test_data_keys_the_dataset_ignores_leave_the_run_id():
    synthetic = tiny_config()
    assert run_id(tiny_config("data.root=/data/somewhere")) == run_id(synthetic)
    assert run_id(tiny_config("data.camvid_protocol=full11")) == run_id(synthetic)
    cityscapes = load_config(None, ["data.dataset=cityscapes", "data.root=/c"])
    assert run_id(load_config(None, ["data.dataset=cityscapes", "data.root=/c", "data.camvid_protocol=full11"])) == (
        run_id(cityscapes)
    )
    assert run_id(load_config(None, ["data.dataset=cityscapes", "data.root=/c", "data.synthetic.seed=4"])) == (
        run_id(cityscapes)
    )
    # where the dataset reads them they stay part of the run
    camvid = ["data.dataset=camvid", "data.root=/v"]
    assert run_id(load_config(None, camvid)) != run_id(load_config(None, [*camvid, "data.camvid_protocol=full11"]))
    assert run_id(load_config(None, [*camvid, "data.root=/w"])) != run_id(load_config(None, camvid))


def test_repeated_seeds_are_an_error(write_spec):
    with pytest.raises(SweepError, match="lists 0 more than once"):
        build_grid(write_spec(seeds=[0, 0]))


def test_a_one_run_rows_interval_does_not_put_the_estimate_at_its_edge():
    # 40 images; class 2 appears in one image only and scores 0 there: replicates without that image drop the
    # class and score higher, so the plain percentile interval starts at the estimate
    n = 40
    intersection = np.zeros((n, 3), dtype=np.int64)
    union = np.zeros((n, 3), dtype=np.int64)
    intersection[:, 0], union[:, 0] = 90, 100
    intersection[:, 1], union[:, 1] = 80, 100
    union[0, 2] = 100
    run = RunCounts("r", 0, 0.0, tuple(f"i{k}" for k in range(n)), intersection, union, union)
    stats = row_stats([run])
    assert stats.ci_method == "images, n = 1"
    assert stats.ci_low < stats.mean - 0.01 and stats.ci_high > stats.mean + 0.01


def test_a_diverged_run_is_not_recorded_done(tmp_path, capsys):
    run_dir = tmp_path / "run"
    settings = {**TINY, "train.iters": 8, "train.batch_size": 2, "model.memory_length": 1, "train.lr": 30.0}
    assert main(["train", *as_overrides(settings), f"run_dir={run_dir}"]) == 2
    err = one_line_error(capsys, "training diverged", "Lower train.lr")
    assert not RunDir(run_dir).record_file.exists() and "diverged" in RunDir(run_dir).read_error()["message"]
    assert main(["train", *as_overrides(settings), f"run_dir={run_dir}"]) == 2  # resumed at its end: still no
    assert one_line_error(capsys, "training diverged") == err and not RunDir(run_dir).record_file.exists()


@pytest.fixture
def fresh_git_state():
    fingerprint.git_state.cache_clear()
    yield
    fingerprint.git_state.cache_clear()


def test_the_record_states_one_dirty_flag(monkeypatch, fresh_git_state):
    # an edit outside the computing sources (a report module, a doc): the whole tree is dirty, the sources not
    monkeypatch.setattr(git, "dirty", lambda paths=None, untracked=True: paths is None)
    record = make_record(
        RunStamp.of(tiny_config()),
        metrics={"miou": 0.5},
        device="cpu",
        wall_time_s=1.0,
        iters=1,
        checkpoint=None,
        batch_size=2,
    )
    assert record["environment"]["git_dirty"] == record["code"]["dirty"]
    assert json.dumps(record)  # plain JSON

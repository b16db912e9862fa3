"""The fault matrix of issue 34 on a real SLURM cluster: a requeued job that finds a checkpoint saved by other code
(a ``git pull`` between the attempts) refuses it, and a submission sbatch refuses leaves nothing behind.

Needs a running cluster with accounting (``bash .ci/slurm-up.sh`` as root); with ``BENCH_SLURM=1`` an unreachable
cluster is a failure, not a skip. About 20 s: one job that starts Python and stops at its checkpoint check (it may
queue behind tests/test_slurm.py's array on the 2-CPU CI node first, hence the budget).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers import TINY, require_slurm

from bench.cli import main
from bench.config import to_dict
from bench.grid.slurm import submit_slurm
from bench.grid.spec import build_grid
from bench.run.fingerprint import code_fingerprint
from bench.run.identity import RunIdentity
from bench.run.liveness import Liveness, query_slurm_jobs
from bench.run.rundir import RunDir

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parent.parent
BUDGET_S = 360  # queueing behind another test's jobs included


def _spec(tmp_path: Path, **launch) -> Path:
    spec = {
        "name": "fault_slurm",
        "base": str(REPO / "configs" / "synthetic_tmanet.yaml"),
        "overrides": {**TINY, "train.iters": 2, "train.batch_size": 2, "output_root": "out/runs"},
        "grid": [{"product": {"train.seed": [0]}}],
        "launch": {"cpus_per_task": 1, "mem_gb": 1, "time_min": 60, **launch},
    }
    path = tmp_path / "fault_slurm.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_requeued_job_refuses_a_checkpoint_saved_by_other_code(tmp_path, monkeypatch):
    require_slurm()
    monkeypatch.chdir(tmp_path)
    grid = build_grid(_spec(tmp_path), launch={"launcher": "slurm"})
    (run,) = grid.runs
    # what a requeued task finds after a `git pull`: its config and a checkpoint stamped by the code before
    ident = RunIdentity.of(run.config)
    run.run_dir.mkdir(parents=True)
    stamp = {"config": to_dict(run.config), "config_hash": ident.config_hash, "run_id": ident.run_id}
    torch.save(
        {"iteration": 1, **stamp, "code": {**code_fingerprint(), "suite": "0" * 40}}, run.run_dir / "checkpoint.pt"
    )
    before = (run.run_dir / "checkpoint.pt").read_bytes()
    (job,) = submit_slurm([run], grid.launch, grid.sweep_dir, grid.name, grid.manifest)
    job_id = str(job.job_id)
    deadline = time.time() + BUDGET_S
    while query_slurm_jobs([job_id])[job_id].liveness is not Liveness.DEAD:
        assert time.time() < deadline, f"job {job_id} did not end within {BUDGET_S}s"
        time.sleep(1.0)
    error = RunDir(run.run_dir).read_error()
    assert error is not None and "stale checkpoint" in error["message"] and error["job_id"] == job_id
    assert (run.run_dir / "checkpoint.pt").read_bytes() == before  # never resumed, never overwritten
    assert not (run.run_dir / "record.json").exists() and not (run.run_dir / "claim.json").exists()
    # submitit's files sit in the grid's bookkeeping folder, not in the submit folder's results/slurm
    assert any((grid.sweep_dir / "slurm").rglob("*.pkl")) and not (tmp_path / "results").exists()


def test_a_submission_the_cluster_refuses_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    require_slurm()
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path, partition="no_such_partition")
    assert main(["sweep", str(spec), "--launcher", "slurm"]) == 2
    assert "launch error: SLURM submission failed" in capsys.readouterr().err
    left = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert left == [spec]

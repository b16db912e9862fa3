"""Real SLURM: a tiny synthetic grid as one job array; one task is preempted and resumes, one is cancelled.

Needs a running cluster with accounting (``bash .ci/slurm-up.sh`` as root, about 15 s). With
``BENCH_SLURM=1`` (set by .ci/run) an unreachable cluster is a failure, not a skip. Takes about 1-2 minutes:
the requeue after a preemption waits ``cred_expire`` (10 s in the CI cluster), a cancelled task ``KillWait``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import TINY, require_slurm

from bench.cli import main
from bench.config import to_dict
from bench.grid.manifest import latest_submissions
from bench.grid.spec import build_grid
from bench.run.liveness import query_slurm_jobs

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parent.parent
SLURM_TINY = {**TINY, "train.batch_size": 2, "train.log_every": 1, "train.checkpoint_every": 1000}
BUDGET_S = 170


def wait_for(what: str, predicate, deadline: float, poll: float = 0.2):
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out waiting for {what}")


def log_lines(run_dir: Path) -> int:
    path = run_dir / "log.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_slurm_array_preempt_resume_cancel_and_status(tmp_path, monkeypatch, capsys):
    require_slurm()
    start = time.time()
    deadline = start + BUDGET_S
    monkeypatch.chdir(tmp_path)
    spec = {
        "name": "tiny_slurm",
        "ablation": "other",
        "base": str(REPO / "configs" / "synthetic_tmanet.yaml"),
        "overrides": {**SLURM_TINY, "output_root": "out/runs"},
        # quick / preempted and resumed / cancelled while training
        "grid": [{"zip": {"train.iters": [2, 120, 2000]}}],
        "seeds": [0],
        "launch": {
            "launcher": "local",
            "cpus_per_task": 1,
            "mem_gb": 1,
            "time_min": 60,  # >= 11: preemption
            "array_parallelism": 3,
            "folder": str(tmp_path / "slurm"),
        },
    }
    path = tmp_path / "tiny_slurm.yaml"
    path.write_text(yaml.safe_dump(spec))
    quick, preempted, cancelled = build_grid(path).runs

    assert main(["sweep", str(path), "--launcher", "slurm"]) == 0
    assert "submitted 3 runs as SLURM array" in capsys.readouterr().out
    jobs = {
        rid: row["job_id"] for rid, row in latest_submissions(tmp_path / "out/sweeps/tiny_slurm/manifest.jsonl").items()
    }
    assert len({j.split("_")[0] for j in jobs.values()}) == 1  # one array

    # preempt the long run while it trains: submitit's USR2 -> checkpoint() -> scontrol requeue
    wait_for("the run to be preempted to start training", lambda: log_lines(preempted.run_dir) >= 2, deadline)
    job_b = jobs[preempted.run_id]
    from submitit.slurm.slurm import SlurmJob

    SlurmJob(folder=tmp_path / "slurm" / "tiny_slurm" / "%j", job_id=job_b)._interrupt()

    # meanwhile, the same config trained locally without interruption is the reference
    ref_data = to_dict(preempted.config)
    ref_data["output_root"] = "ref/runs"
    ref_cfg = tmp_path / "reference.yaml"
    ref_cfg.write_text(yaml.safe_dump(ref_data))
    reference = subprocess.Popen(
        [sys.executable, "-m", "bench", "train", str(ref_cfg)],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1", "BENCH_LAUNCHER": "local"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    # cancel the third run once it trains (it starts when the quick one has finished)
    wait_for("the run to be cancelled to start training", lambda: log_lines(cancelled.run_dir) >= 1, deadline)
    subprocess.run(["scancel", jobs[cancelled.run_id]], check=True)

    wait_for("the preempted run to finish", lambda: (preempted.run_dir / "record.json").is_file(), deadline, 1.0)
    wait_for(
        "the cancelled job to end",
        lambda: query_slurm_jobs([jobs[cancelled.run_id]])[jobs[cancelled.run_id]].state.startswith("CANCELLED"),
        deadline,
        1.0,
    )
    out, _ = reference.communicate(timeout=max(1.0, deadline - time.time()))
    assert reference.returncode == 0, out

    # it was requeued once and resumed from its checkpoint: same metrics and same final loss as uninterrupted
    history = subprocess.run(
        ["sacct", "-D", "-X", "-n", "-P", "-o", "JobID,State", "-j", job_b], capture_output=True, text=True
    ).stdout
    assert "REQUEUED" in history or "PREEMPTED" in history, history
    stdout = Path(latest_submissions(tmp_path / "out/sweeps/tiny_slurm/manifest.jsonl")[preempted.run_id]["log"])
    assert "this job is preempted" in stdout.read_text()  # submitit logs to .out, the trainer to .err
    assert "SIGUSR2 received" in stdout.with_suffix(".err").read_text()
    record = json.loads((preempted.run_dir / "record.json").read_text())
    ref_dir = tmp_path / "ref" / "runs" / preempted.run_id
    ref_record = json.loads((ref_dir / "record.json").read_text())
    assert record["metrics"] == ref_record["metrics"]
    assert record["iters"] == ref_record["iters"] == 120
    last = [json.loads(x) for x in (preempted.run_dir / "log.jsonl").read_text().splitlines() if '"loss"' in x][-1]
    ref_last = [json.loads(x) for x in (ref_dir / "log.jsonl").read_text().splitlines() if '"loss"' in x][-1]
    assert last["iter"] == ref_last["iter"] == 120 and last["loss"] == ref_last["loss"]
    assert json.loads((quick.run_dir / "record.json").read_text())["status"] == "done"

    assert main(["status", str(path)]) == 0
    status = capsys.readouterr().out
    assert "2 done, 0 running, 0 queued, 1 failed, 0 corrupt, 0 pending, 0 unknown" in status
    row = next(line for line in status.splitlines() if line.startswith(cancelled.run_id))
    assert "CANCELLED" in row and "failed" in row
    assert time.time() - start < BUDGET_S + 10

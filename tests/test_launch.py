"""Claims (race, refusal, take-over), typed SLURM answers, the SLURM Job callable, SLURM parameters."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import fake_eval_record, fake_slurm, slurm_gate

import bench.run.claims as claims
import bench.run.execute as trainer
import bench.run.liveness as liveness
from bench.config import LaunchConfig, to_dict
from bench.grid.slurm import Job, slurm_parameters
from bench.grid.spec import build_grid
from bench.grid.sweep import sweep_command
from bench.run.liveness import JobStatus, Liveness
from bench.run.rundir import RunDir


def _claim_worker(run_dir: str, start, done, results) -> None:
    start.wait()
    results.put(RunDir(Path(run_dir)).acquire_claim().ok)
    done.wait()  # stay alive so that the winner's claim is live while the others try


def test_concurrent_claims_have_exactly_one_winner(tmp_path):
    ctx = mp.get_context("spawn")
    start, done, results = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claim_worker, args=(str(tmp_path / "run"), start, done, results)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    outcomes = [results.get(timeout=60) for _ in procs]
    done.set()
    for p in procs:
        p.join(timeout=60)
    assert sorted(outcomes) == [False, False, False, True]
    claim = json.loads((tmp_path / "run" / "claim.json").read_text())
    assert set(claim) >= {"host", "pid", "job_id", "time"}
    assert not list((tmp_path / "run").glob(".*.tmp"))  # the claims' temporary files are gone


def test_live_claim_refuses_and_release_frees(tmp_path):
    got = RunDir(tmp_path).acquire_claim()
    assert got.ok and got.claim.pid == os.getpid()
    code = (
        "import sys; from pathlib import Path; from bench.run.rundir import RunDir; "
        f"got = RunDir(Path({str(tmp_path)!r})).acquire_claim(); "
        f"sys.exit(0 if not got.ok and got.claim.pid == {os.getpid()} "
        f"and got.check.liveness.value == 'alive' else 1)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0  # refused: this test process is alive
    RunDir(tmp_path).release_claim()
    assert not (tmp_path / "claim.json").exists()


def test_stale_local_claim_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "claim.json").write_text(
        json.dumps({"host": socket.gethostname(), "pid": dead.pid, "job_id": None, "time": 0})
    )
    got = RunDir(tmp_path).acquire_claim()
    assert got.ok and got.claim.pid == os.getpid()
    assert not list(tmp_path.glob(".claim.stale.*"))


def test_slurm_claims_follow_the_job_state(tmp_path, monkeypatch):
    (tmp_path / "claim.json").write_text(json.dumps({"host": "node7", "pid": 1, "job_id": "12_3", "time": 0}))
    answer = {"12_3": JobStatus("12_3", Liveness.ALIVE, "REQUEUED", "SLURM job 12_3 REQUEUED")}
    monkeypatch.setattr(claims, "query_slurm_jobs", lambda ids: answer)
    assert RunDir(tmp_path).acquire_claim().ok is False  # requeued job still owns its run
    assert RunDir(tmp_path).acquire_claim(job_id="12_3").ok is True  # ...and gets it back when it restarts
    answer["12_3"] = JobStatus("12_3", Liveness.DEAD, "CANCELLED", "SLURM job 12_3 CANCELLED")
    got = RunDir(tmp_path).acquire_claim(job_id="13_0")
    assert got.ok and got.claim.job_id == "13_0"


def test_expand_array_job_ids():
    assert liveness.expand_job_ids("12_[0-2,5%2]") == ["12_0", "12_1", "12_2", "12_5"]
    assert liveness.expand_job_ids("12_4") == ["12_4"]


def test_slurm_answers_are_typed(tmp_path, monkeypatch):
    fake_slurm(tmp_path / "bin", monkeypatch, "echo '7_[0-1]|PENDING'; echo '8|RUNNING'", "echo '9|CANCELLED by 0'")
    jobs = liveness.query_slurm_jobs(["7_1", "8", "9", "10"])
    assert {k: (j.liveness, j.state) for k, j in jobs.items()} == {
        "7_1": (Liveness.ALIVE, "PENDING"),
        "8": (Liveness.ALIVE, "RUNNING"),
        "9": (Liveness.DEAD, "CANCELLED"),
        "10": (Liveness.DEAD, ""),
    }
    # squeue's answer for a job that left the queue is an answer, not a failure
    fake_slurm(tmp_path / "bin", monkeypatch, "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1")
    assert liveness.query_slurm_jobs(["11"])["11"].liveness is Liveness.DEAD


def test_a_short_slurm_time_limit_warns(tmp_path, monkeypatch, capsys, write_spec):
    path = write_spec(launch={"launcher": "slurm", "time_min": 5})
    monkeypatch.setattr("bench.grid.sweep.slurm_reachable", lambda: (True, ""))
    monkeypatch.setattr("bench.grid.slurm.submit_slurm", lambda todo, *a, **k: [])
    assert sweep_command(str(path)) == 0
    assert "launch.time_min=5 < 11" in capsys.readouterr().err


def test_a_slurm_time_limit_too_short_to_requeue_is_refused(tmp_path, monkeypatch, capsys, write_spec):
    from bench.grid.slurm import MIN_REQUEUE_TIME_MIN

    path = write_spec(launch={"launcher": "slurm", "time_min": MIN_REQUEUE_TIME_MIN - 1})
    monkeypatch.setattr("bench.grid.sweep.slurm_reachable", lambda: (True, ""))
    monkeypatch.setattr("bench.grid.slurm.submit_slurm", lambda *a, **k: pytest.fail("must not submit"))
    assert sweep_command(str(path)) == 2
    err = capsys.readouterr().err
    assert f"launch.time_min={MIN_REQUEUE_TIME_MIN - 1} is below {MIN_REQUEUE_TIME_MIN} minutes" in err
    assert "killed instead of requeued" in err and MIN_REQUEUE_TIME_MIN == 4


# --------------------------------------------------------------------------------------------------
# the SLURM Job with a stand-in trainer


def _stored_run(tmp_path: Path, write_spec) -> tuple[Path, Path]:
    """(run dir, submit dir) of a one-run grid whose config.yaml is stored as at submission."""
    run = build_grid(write_spec(grid=[{"product": {"model.memory_length": [1]}}])).runs[0]
    RunDir(run.run_dir).write_config(run.config)
    return run.run_dir, tmp_path


def test_job_trains_under_a_claim_and_releases_it(tmp_path, monkeypatch, write_spec):
    seen = []

    def train(cfg, run_dir, **kwargs):
        seen.append(json.loads((run_dir / "claim.json").read_text())["pid"])
        return fake_eval_record(run_dir.name, 0, miou=0.5, config=to_dict(cfg))

    monkeypatch.setattr(trainer, "train_and_evaluate", train)
    run_dir, cwd = _stored_run(tmp_path, write_spec)
    result = Job(str(run_dir), str(cwd))()
    assert result["status"] == "done" and result["metrics"] == {"miou": 0.5}
    assert seen == [os.getpid()] and not (run_dir / "claim.json").exists()
    assert RunDir(run_dir).read_record().done


def test_job_refuses_a_run_claimed_by_a_live_process(tmp_path, monkeypatch, write_spec):
    run_dir, cwd = _stored_run(tmp_path, write_spec)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / "claim.json").write_text(
            json.dumps(
                {
                    "host": socket.gethostname(),
                    "pid": holder.pid,
                    "pid_start": liveness.process_start_time(holder.pid),
                    "job_id": None,
                    "time": 0,
                }
            )
        )
        monkeypatch.setattr(trainer, "train_and_evaluate", lambda *a, **k: pytest.fail("must not train a claimed run"))
        result = Job(str(run_dir), str(cwd))()
        assert result["status"] == "busy" and str(holder.pid) in result["reason"]
    finally:
        holder.kill()
        holder.wait()


def test_preempted_job_keeps_its_claim_and_requeues_a_fresh_job(tmp_path, monkeypatch, write_spec):
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    run_dir, cwd = _stored_run(tmp_path, write_spec)
    job = Job(str(run_dir), str(cwd))

    def train(cfg, run_dir, **kwargs):  # what submitit's USR2 handler does inside the trainer
        delayed = job.checkpoint()
        assert type(delayed.function) is Job and delayed.function.run_dir == job.run_dir
        raise SystemExit(-1)

    monkeypatch.setattr(trainer, "train_and_evaluate", train)
    with pytest.raises(SystemExit):
        job()
    assert json.loads((run_dir / "claim.json").read_text())["job_id"] == "41"
    assert not (run_dir / "error.json").exists()


# --------------------------------------------------------------------------------------------------
# SLURM parameters and an unreachable SLURM


@pytest.mark.slurm(tools=("srun",))  # submitit.AutoExecutor(cluster="slurm") looks for srun
def test_slurm_parameters_from_launch_config():
    cfg = LaunchConfig(
        launcher="slurm",
        partition="gpu",
        account="lab",
        qos="high",
        time_min=120,
        nodes=2,
        gpus_per_node=4,
        cpus_per_task=8,
        mem_gb=64,
        constraint="a100",
        sbatch_extra={"exclude": "node3"},
        array_parallelism=5,
    )
    params = slurm_parameters(cfg, "bench-x")
    assert params == {
        "name": "bench-x",
        "timeout_min": 120,
        "nodes": 2,
        "tasks_per_node": 4,
        "cpus_per_task": 8,
        "mem_gb": 64,
        "slurm_array_parallelism": 5,
        "gpus_per_node": 4,
        "slurm_partition": "gpu",
        "slurm_account": "lab",
        "slurm_qos": "high",
        "slurm_constraint": "a100",
        "slurm_additional_parameters": {"exclude": "node3"},
    }
    import submitit

    executor = submitit.AutoExecutor(folder="/tmp/unused-%j", cluster="slurm")
    executor.update_parameters(**params)  # submitit accepts every key


def test_slurm_tests_skip_without_srun_but_fail_in_ci(tmp_path, monkeypatch):
    marks = {m.name: m for m in test_slurm_parameters_from_launch_config.pytestmark}
    assert marks["slurm"].kwargs["tools"] == ("srun",)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("BENCH_SLURM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="srun not on PATH"):
        slurm_gate(("srun",))
    monkeypatch.setenv("BENCH_SLURM", "1")
    with pytest.raises(pytest.fail.Exception, match="BENCH_SLURM is set"):
        slurm_gate(("srun",))


def test_unreachable_slurm_fails_before_submitting(tmp_path, monkeypatch, capsys, write_spec):
    path = write_spec()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert sweep_command(str(path), launcher="slurm") == 2
    assert "sbatch is not on PATH" in capsys.readouterr().err
    assert not (tmp_path / "sweeps" / "t" / "manifest.jsonl").exists() and not (tmp_path / "runs").exists()

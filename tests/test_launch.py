"""Launchers: run claims, the Job callable (with a stand-in trainer), unreachable SLURM, SLURM parameters."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

import bench.grid.launch as launch
from bench.config import LaunchConfig, to_dict
from bench.grid.launch import Job, acquire_claim, release_claim, slurm_parameters
from bench.grid.sweep import expand_spec, sweep_command

REPO = Path(__file__).resolve().parent.parent


def _claim_worker(run_dir: str, start, done, results) -> None:
    start.wait()
    ok, _ = acquire_claim(Path(run_dir))
    results.put(ok)
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


def test_live_claim_refuses_and_release_frees(tmp_path):
    ok, mine = acquire_claim(tmp_path)
    assert ok and mine["pid"] == os.getpid()
    code = ("import sys; from pathlib import Path; from bench.grid.launch import acquire_claim; "
            f"ok, held = acquire_claim(Path({str(tmp_path)!r})); sys.exit(0 if not ok and held['pid'] == {os.getpid()} else 1)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0  # refused: this test process is alive
    release_claim(tmp_path)
    assert not (tmp_path / "claim.json").exists()


def test_stale_local_claim_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "claim.json").write_text(json.dumps({"host": launch.socket.gethostname(), "pid": dead.pid,
                                                     "job_id": None, "time": 0}))
    ok, claim = acquire_claim(tmp_path)
    assert ok and claim["pid"] == os.getpid()
    assert not list(tmp_path.glob(".claim.stale.*"))


def test_slurm_claims_follow_the_job_state(tmp_path, monkeypatch):
    (tmp_path / "claim.json").write_text(json.dumps({"host": "node7", "pid": 1, "job_id": "12_3", "time": 0}))
    monkeypatch.setattr(launch.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(launch, "slurm_job_states", lambda ids: {"12_3": "REQUEUED"})
    assert acquire_claim(tmp_path)[0] is False                  # requeued job still owns its run
    assert acquire_claim(tmp_path, job_id="12_3")[0] is True    # ...and gets it back when it restarts
    monkeypatch.setattr(launch, "slurm_job_states", lambda ids: {"12_3": "CANCELLED"})
    ok, claim = acquire_claim(tmp_path, job_id="13_0")
    assert ok and claim["job_id"] == "13_0"


def test_expand_array_job_ids():
    assert launch._expand_job_ids("12_[0-2,5%2]") == ["12_0", "12_1", "12_2", "12_5"]
    assert launch._expand_job_ids("12_4") == ["12_4"]


# --------------------------------------------------------------------------------------------------
# Job with a stand-in trainer


def _config(tmp_path: Path) -> dict:
    spec = {"name": "t", "base": str(REPO / "configs" / "synthetic_tmanet.yaml"),
            "overrides": {"output_root": str(tmp_path / "runs")}, "grid": [{"product": {"model.memory_length": [1]}}]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return to_dict(expand_spec(tmp_path / "spec.yaml")[0].config)


def _stand_in_trainer(monkeypatch, behaviour):
    module = types.ModuleType("bench.run.trainer")
    module.train_and_evaluate = behaviour
    monkeypatch.setitem(sys.modules, "bench.run.trainer", module)


def test_job_trains_under_a_claim_and_releases_it(tmp_path, monkeypatch):
    seen = []

    def train(cfg):
        run_dir = cfg.resolved_run_dir()
        seen.append(json.loads((run_dir / "claim.json").read_text())["pid"])
        record = {"run_id": run_dir.name, "status": "done", "metrics": {"miou": 0.5}}
        (run_dir / "record.json").write_text(json.dumps(record))
        return record

    _stand_in_trainer(monkeypatch, train)
    config = _config(tmp_path)
    result = Job(config, str(tmp_path))()
    assert result["status"] == "done" and result["metrics"] == {"miou": 0.5}
    assert seen == [os.getpid()]
    run_dir = tmp_path / "runs" / result["run_id"]
    assert not (run_dir / "claim.json").exists()
    _stand_in_trainer(monkeypatch, lambda cfg: pytest.fail("a finished run must not be trained again"))
    assert Job(config, str(tmp_path))()["status"] == "done"


def test_job_failure_writes_error_json_and_frees_the_run(tmp_path, monkeypatch):
    def train(cfg):
        raise ValueError("boom at iteration 3")

    _stand_in_trainer(monkeypatch, train)
    with pytest.raises(ValueError):
        Job(_config(tmp_path), str(tmp_path))()
    (run_dir,) = (tmp_path / "runs").iterdir()
    error = json.loads((run_dir / "error.json").read_text())
    assert error["last_line"] == "ValueError: boom at iteration 3" and "Traceback" in error["traceback"]
    assert not (run_dir / "claim.json").exists()


def test_job_refuses_a_run_claimed_by_a_live_process(tmp_path, monkeypatch):
    config = _config(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_dir = Path(config["output_root"]) / expand_spec(tmp_path / "spec.yaml")[0].run_id
        run_dir.mkdir(parents=True)
        import psutil

        (run_dir / "claim.json").write_text(json.dumps({
            "host": launch.socket.gethostname(), "pid": holder.pid,
            "pid_start": psutil.Process(holder.pid).create_time(), "job_id": None, "time": 0}))
        _stand_in_trainer(monkeypatch, lambda cfg: pytest.fail("must not train a claimed run"))
        result = Job(config, str(tmp_path))()
        assert result["status"] == "claimed" and str(holder.pid) in result["reason"]
    finally:
        holder.kill()
        holder.wait()


def test_preempted_job_keeps_its_claim_and_requeues_a_fresh_job(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    job = Job(_config(tmp_path), str(tmp_path))

    def train(cfg):  # what submitit's USR2 handler does inside the trainer: checkpoint() then sys.exit
        delayed = job.checkpoint()
        assert type(delayed.function) is Job and delayed.function.config == job.config
        raise SystemExit(-1)

    _stand_in_trainer(monkeypatch, train)
    with pytest.raises(SystemExit):
        job()
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "claim.json").read_text())["job_id"] == "41"
    assert not (run_dir / "error.json").exists()


# --------------------------------------------------------------------------------------------------
# SLURM parameters and an unreachable SLURM


def test_slurm_parameters_from_launch_config():
    cfg = LaunchConfig(launcher="slurm", partition="gpu", account="lab", qos="high", time_min=120, nodes=2,
                       gpus_per_node=4, cpus_per_task=8, mem_gb=64, constraint="a100",
                       sbatch_extra={"exclude": "node3"}, array_parallelism=5)
    params = slurm_parameters(cfg, "bench-x")
    assert params == {"name": "bench-x", "timeout_min": 120, "nodes": 2, "tasks_per_node": 4, "cpus_per_task": 8,
                      "mem_gb": 64, "slurm_array_parallelism": 5, "gpus_per_node": 4, "slurm_partition": "gpu",
                      "slurm_account": "lab", "slurm_qos": "high", "slurm_constraint": "a100",
                      "slurm_additional_parameters": {"exclude": "node3"}}
    import submitit

    executor = submitit.AutoExecutor(folder="/tmp/unused-%j", cluster="slurm")
    executor.update_parameters(**params)  # submitit accepts every key


def test_unreachable_slurm_fails_before_submitting(tmp_path, monkeypatch, capsys):
    spec = {"name": "t", "base": str(REPO / "configs" / "synthetic_tmanet.yaml"),
            "overrides": {"output_root": str(tmp_path / "runs")}, "grid": [{"product": {"model.memory_length": [1, 2]}}]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert sweep_command(str(tmp_path / "spec.yaml"), launcher="slurm") == 2
    assert "sbatch is not on PATH" in capsys.readouterr().err
    assert not (tmp_path / "sweeps" / "t" / "manifest.jsonl").exists() and not (tmp_path / "runs").exists()

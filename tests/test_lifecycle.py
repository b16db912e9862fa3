"""The run lifecycle's failure cases (issue 9): each test fails on the code before bench/run/rundir.py and
bench/run/execute.py existed.

1 a run dir holding another config; 2 SLURM queries that fail; 3 `bench train` next to a sweep's job;
4 an empty claim; 5 temporary files of a killed write; 6 a corrupt record in `bench status`;
8 a failure after training (latency). Plus: one definition of "done", refused record merges, `bench eval`.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from helpers import TINY, as_overrides, fake_eval_record, fake_slurm

import bench.run.execute as trainer
import bench.run.liveness as liveness
from bench.cli import main
from bench.config import load_config, to_dict
from bench.grid.spec import SweepError, build_grid
from bench.grid.status import RunState, run_statuses
from bench.run import rundir
from bench.run.claims import ClaimState
from bench.run.eval_run import evaluate_command
from bench.run.execute import Outcome, RunBusyError, execute
from bench.run.liveness import Liveness
from bench.run.rundir import RunDir


def fake_record(cfg, **fields) -> dict:
    return fake_eval_record(RunDir.of(cfg).path.name, cfg.train.seed, miou=0.25, config=to_dict(cfg), **fields)


def no_training(*args, **kwargs):
    pytest.fail("this run must not be trained")


def holder_claim(run_dir: Path, proc) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "claim.json").write_text(
        json.dumps(
            {
                "host": socket.gethostname(),
                "pid": proc.pid,
                "pid_start": liveness.process_start_time(proc.pid),
                "job_id": None,
                "time": 0,
            }
        )
    )


# --------------------------------------------------------------------------------------------------
# 1: a run dir is reused only by the run it holds


def test_train_into_a_run_dir_of_another_config_is_refused(tmp_path, tiny_cfg, monkeypatch, capsys):
    run_dir = tmp_path / "X"
    old = tiny_cfg(run_dir, "model.memory_length=1")
    RunDir(run_dir).write_record(fake_record(old))
    monkeypatch.setattr(trainer, "train_and_evaluate", no_training)
    overrides = as_overrides({**TINY, "train.iters": 2, "train.batch_size": 2}) + [f"run_dir={run_dir}"]
    assert main(["train", "model.memory_length=2", *overrides]) == 2
    err = capsys.readouterr().err
    assert "RunMismatchError" in err and "model.args.memory_length: stored 1, now 2" in err
    assert "use another run_dir" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "model.memory_length=1", *overrides]) == 0  # the same run: its record, no training
    assert json.loads(capsys.readouterr().out)["metrics"] == {"miou": 0.25}


@pytest.mark.parametrize("stored", ["config.yaml", "checkpoint.pt"])
def test_a_stored_config_or_checkpoint_of_another_run_is_refused(tmp_path, tiny_cfg, monkeypatch, stored):
    import torch

    old, new = tiny_cfg(tmp_path, "train.lr=0.5"), tiny_cfg(tmp_path, "train.lr=0.1")
    if stored == "config.yaml":
        RunDir(tmp_path).write_config(old)
    else:
        torch.save({"iteration": 1, "config": to_dict(old)}, tmp_path / "checkpoint.pt")
    monkeypatch.setattr(trainer, "train_and_evaluate", no_training)
    with pytest.raises(rundir.RunMismatchError, match=f"{stored}: train.lr: stored 0.5, now 0.1"):
        execute(new)


def test_a_grid_whose_base_sets_run_dir_is_an_error(write_spec, tmp_path):
    path = write_spec(overrides={"output_root": str(tmp_path / "runs"), "run_dir": str(tmp_path / "one")})
    with pytest.raises(SweepError, match="both resolve to run_dir"):
        build_grid(path)


def test_a_run_stored_under_an_older_id_is_not_trained_again(tmp_path, monkeypatch):
    cfg = load_config(None, as_overrides(TINY) + [f"output_root={tmp_path}"])
    old = tmp_path / f"{cfg.model.name}-0123456789"  # the same run, named by an older id scheme
    RunDir(old).write_config(cfg)
    monkeypatch.setattr(trainer, "train_and_evaluate", no_training)
    with pytest.raises(rundir.RunMismatchError, match=f"mv {old} {RunDir.of(cfg).path}"):
        execute(cfg)
    assert not RunDir.of(cfg).path.exists()


# --------------------------------------------------------------------------------------------------
# 2: a failed SLURM query is UNKNOWN, never "dead"


def fake_failing_slurm(folder: Path, monkeypatch, body: str = "echo 'Unable to contact slurm controller' >&2; exit 1"):
    fake_slurm(folder, monkeypatch, squeue=body, sacct=body)


def test_a_live_slurm_claim_is_left_alone_when_slurm_does_not_answer(tmp_path, monkeypatch, write_spec, capsys):
    fake_failing_slurm(tmp_path / "bin", monkeypatch)
    path = write_spec(grid=[{"product": {"model.memory_length": [1]}}])
    (run,) = build_grid(path).runs
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "claim.json").write_text(json.dumps({"host": "node7", "pid": 1, "job_id": "77", "time": 0}))
    got = RunDir(run.run_dir).acquire_claim()
    assert not got.ok and got.check.liveness is Liveness.UNKNOWN
    assert "exited with 1: Unable to contact slurm controller" in got.busy_message(run.run_dir)
    assert "--take-over" in got.busy_message(run.run_dir)
    launched = []
    monkeypatch.setattr("bench.grid.local.run_local", lambda todo, *a, **k: launched.append(todo) or [])
    assert main(["sweep", str(path), "--launcher", "local"]) == 0
    assert launched == [] and "unknown" in capsys.readouterr().out
    assert main(["sweep", str(path), "--launcher", "local", "--take-over"]) == 0
    assert [r.run_id for r in launched[0]] == [run.run_id]
    assert RunDir(run.run_dir).acquire_claim(take_over=True).ok  # taken over only on purpose


def test_a_slurm_query_that_times_out_is_unknown(tmp_path, monkeypatch):
    fake_failing_slurm(tmp_path / "bin", monkeypatch, body="sleep 5")
    monkeypatch.setattr(liveness, "QUERY_TIMEOUT_S", 0.5)
    job = liveness.query_slurm_jobs(["12_3"])["12_3"]
    assert job.liveness is Liveness.UNKNOWN and "timed out" in job.reason


# --------------------------------------------------------------------------------------------------
# 3, 4, 5: claims and temporary files


def test_bench_train_refuses_a_run_a_sweep_job_trains(tmp_path, tiny_cfg, live_process, monkeypatch, capsys):
    holder_claim(tmp_path, live_process)
    monkeypatch.setattr(trainer, "train_and_evaluate", no_training)
    overrides = as_overrides({**TINY, "train.iters": 2}) + [f"run_dir={tmp_path}"]
    assert main(["train", *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: RunBusyError:") and f"pid {live_process.pid}" in err and len(err.splitlines()) == 1


def test_bench_eval_refuses_a_run_another_process_trains(tmp_path, tiny_cfg, live_process):
    cfg = tiny_cfg(tmp_path, f"checkpoint={tmp_path / 'checkpoint.pt'}")
    RunDir(tmp_path).write_config(cfg)
    holder_claim(tmp_path, live_process)
    with pytest.raises(RunBusyError, match=f"pid {live_process.pid}"):
        evaluate_command([f"checkpoint={tmp_path / 'checkpoint.pt'}", f"run_dir={tmp_path}"])


@pytest.mark.parametrize("content", [b"", b'{"host": "n', b"[]"])
def test_an_empty_or_corrupt_claim_is_taken_over_with_a_warning(tmp_path, content):
    (tmp_path / "claim.json").write_bytes(content)
    assert RunDir(tmp_path).read_claim().state is ClaimState.CORRUPT
    with pytest.warns(RuntimeWarning, match="taking the run over"):
        got = RunDir(tmp_path).acquire_claim()
    assert got.ok and RunDir(tmp_path).read_claim().claim.pid == os.getpid()


def test_temporary_files_of_a_killed_save_are_removed_by_the_next_owner(tmp_path, tiny_cfg, monkeypatch):
    leftovers = [tmp_path / ".checkpoint.pt.abc123.tmp", tmp_path / ".record.json.x.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    with pytest.raises(rundir.RunDirError, match="claim"):
        RunDir(tmp_path).remove_temp_files()  # only the claim's holder cleans up
    assert all(p.exists() for p in leftovers)
    cfg = tiny_cfg(tmp_path)
    monkeypatch.setattr(trainer, "train_and_evaluate", lambda cfg, run_dir, **k: fake_record(cfg))
    assert execute(cfg).outcome is Outcome.DONE
    assert not any(p.exists() for p in leftovers) and not list(tmp_path.glob(".*.tmp"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "record.json"]


# --------------------------------------------------------------------------------------------------
# 6: corrupt and unfinished records; one definition of "done"


def test_read_record_states(tmp_path):
    assert RunDir(tmp_path).read_record().state is rundir.RecordState.MISSING
    (tmp_path / "record.json").write_text("{broken")
    read = RunDir(tmp_path).read_record()
    assert read.state is rundir.RecordState.CORRUPT and "record.json is unreadable" in read.reason
    for record in (
        {"metrics": {"miou": 0.5}},
        {"status": "done"},
        {"status": "done", "metrics": {}},
        {"status": "failed", "metrics": {"miou": 0.5}},
    ):
        RunDir(tmp_path).write_record(record)
        assert RunDir(tmp_path).read_record().state is rundir.RecordState.NOT_DONE, record
    RunDir(tmp_path).write_record({"status": "done", "metrics": {"miou": 0.5}})  # done, but no config: invalid
    read = RunDir(tmp_path).read_record()
    assert read.state is rundir.RecordState.CORRUPT and "config must be an object" in read.reason
    RunDir(tmp_path).write_record(fake_record(load_config(None, [])))
    assert RunDir(tmp_path).read_record().done


def test_status_shows_a_corrupt_record_as_corrupt(write_spec, tmp_path, capsys):
    path = write_spec(grid=[{"product": {"model.memory_length": [1, 2, 4]}}])
    corrupt, unfinished, foreign = runs = build_grid(path).runs
    for run in runs:
        run.run_dir.mkdir(parents=True)
    (corrupt.run_dir / "record.json").write_text("")
    RunDir(unfinished.run_dir).write_record({"metrics": {"miou": 0.5}})  # no status: not done
    RunDir(foreign.run_dir).write_record(fake_record(corrupt.config))  # another run's record
    states = run_statuses(runs, tmp_path / "manifest.jsonl")
    assert [s.state for s in states] == [RunState.CORRUPT, RunState.PENDING, RunState.CORRUPT]
    assert "record.json is unreadable" in states[0].reason and "delete it" in states[0].reason
    assert "model.args.memory_length" in states[2].reason
    assert main(["status", str(path)]) == 0
    assert "0 done, 0 running, 0 queued, 0 failed, 2 corrupt, 1 pending, 0 unknown" in capsys.readouterr().out


def test_merge_into_record_refuses_to_replace_a_section(tmp_path):
    RunDir(tmp_path).write_record(fake_record(load_config(None, []), latency={"ms": 1}))
    with pytest.raises(rundir.RunDirError, match="already has 'latency'"):
        RunDir(tmp_path).merge_into_record("latency", {"ms": 2})
    with pytest.raises(rundir.RunDirError, match="cannot be replaced"):
        RunDir(tmp_path).merge_into_record("metrics", {}, overwrite=True)
    assert RunDir(tmp_path).merge_into_record("latency", {"ms": 2}, overwrite=True)["latency"] == {"ms": 2}
    assert RunDir(tmp_path).read_record().record["latency"] == {"ms": 2}
    with pytest.raises(rundir.RunDirError, match="has not finished"):
        RunDir(tmp_path / "nothing").merge_into_record("latency", {})


# --------------------------------------------------------------------------------------------------
# 8: any failure after training writes error.json and frees the run


def test_a_failure_after_training_writes_error_json_and_releases_the_claim(tmp_path, tiny_cfg, monkeypatch):
    real = trainer.train_and_evaluate

    def train_then_fail_latency(cfg, run_dir, **kwargs):
        real(cfg, run_dir, **kwargs)
        raise RuntimeError("latency: CUDA out of memory")

    monkeypatch.setattr(trainer, "train_and_evaluate", train_then_fail_latency)
    cfg = tiny_cfg(tmp_path)  # the failure stands in for a latency measurement that fails
    with pytest.raises(RuntimeError, match="latency"):
        execute(cfg)
    error = json.loads((tmp_path / "error.json").read_text())
    assert error["last_line"] == "RuntimeError: latency: CUDA out of memory"
    assert (tmp_path / "checkpoint.pt").is_file() and not (tmp_path / "claim.json").exists()
    assert not (tmp_path / "record.json").exists()
    monkeypatch.setattr(trainer, "train_and_evaluate", real)
    assert execute(cfg).record["iters"] == 2  # the next attempt resumes and finishes
    assert not (tmp_path / "error.json").exists()

"""End to end: the local launcher runs a 4-run synthetic grid with the real trainer (tiny settings).

One run is broken on purpose (a CamVid root that does not exist): the sweep goes on, reports it as failed
with the error's last line, and a second sweep skips the finished runs and retries only the failed one.
Ctrl-C (SIGINT) on a sweep and on ``bench train`` saves checkpoints and prints one line saying how to resume.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from helpers import TINY, as_overrides

from bench.cli import main
from bench.grid.spec import build_grid

REPO = Path(__file__).resolve().parent.parent
LOCAL_TINY = {**TINY, "train.iters": 3, "train.batch_size": 2, "train.log_every": 1}


def test_local_sweep_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two runs at once on a small shared machine
    monkeypatch.chdir(tmp_path)
    spec = {
        "name": "tiny_local",
        "ablation": "memory_length",
        "factor": "model.memory_length",
        "base": str(REPO / "configs" / "synthetic_tmanet.yaml"),
        "overrides": {**LOCAL_TINY, "output_root": "out/runs"},
        "grid": [
            {"product": {"model.memory_length": [1, 2]}},
            {"zip": {"model.name": ["per_frame"]}},
            {"zip": {"data.dataset": ["camvid"], "data.root": [str(tmp_path / "no-camvid")]}},
        ],
        "seeds": [0],
        "launch": {"launcher": "local", "max_parallel": 2},
    }
    path = tmp_path / "tiny_local.yaml"
    path.write_text(yaml.safe_dump(spec))
    runs = build_grid(path).runs
    assert len(runs) == 4

    # one run fails, the others finish (--no-check: the preflight would refuse the missing CamVid up front)
    assert main(["sweep", str(path), "--launcher", "local", "--no-check"]) == 1
    out = capsys.readouterr().out
    assert "3 ok, 1 not ok" in out
    for run in runs[:3]:
        record = json.loads((run.run_dir / "record.json").read_text())
        assert record["status"] == "done" and record["run_id"] == run.run_id and record["iters"] == 3
        assert 0.0 <= record["metrics"]["miou"] <= 1.0
        assert not (run.run_dir / "claim.json").exists()
    broken = runs[3]
    assert not (broken.run_dir / "record.json").exists()
    error = json.loads((broken.run_dir / "error.json").read_text())
    manifest = [
        json.loads(line) for line in (tmp_path / "out/sweeps/tiny_local/manifest.jsonl").read_text().splitlines()
    ]
    assert sorted(m["event"] for m in manifest) == ["end"] * 4 + ["signatures"] + ["submit"] * 4
    assert not (tmp_path / "out/sweeps/tiny_local/configs").exists()  # the run dir's config.yaml is the only copy
    assert all((run.run_dir / "config.yaml").is_file() for run in runs)

    assert main(["status", str(path)]) == 0
    status = capsys.readouterr().out
    assert "3 done, 0 running, 0 queued, 1 failed, 0 corrupt, 0 pending, 0 unknown" in status
    assert error["last_line"] in status

    # a second sweep trains nothing that is done and retries only the failed run
    assert main(["sweep", str(path), "--no-check"]) == 1
    again = capsys.readouterr().out
    assert "running 1 runs locally" in again and "0 ok, 1 not ok" in again
    assert (
        sum(
            1
            for m in (tmp_path / "out/sweeps/tiny_local/manifest.jsonl").read_text().splitlines()
            if json.loads(m)["event"] == "submit"
        )
        == 5
    )


def _start_and_interrupt(command: list[str], cwd: Path, started: Callable[[], bool]) -> subprocess.CompletedProcess:
    """Run ``command`` (stdout to a file), send it SIGINT once ``started()`` is true, return how it ended."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = cwd / "stdout.txt"
    with open(out, "w") as handle:
        # a shell starts background jobs with SIGINT ignored (and Ctrl-C then does nothing): undo that
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            start_new_session=True,
        )
        try:
            deadline = time.time() + 240
            while not started() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.2)
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:  # never leave a 100000-iteration run (or a sweep's child) behind
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return subprocess.CompletedProcess(command, proc.returncode, out.read_text(), err)


def _logged_an_iteration(path: Path) -> Callable[[], bool]:
    return lambda: path.is_file() and '"iter"' in path.read_text()


LONG = as_overrides({**LOCAL_TINY, "train.iters": 100000, "train.checkpoint_every": 100000})


def test_ctrl_c_on_a_local_sweep_stops_the_runs_and_says_how_to_resume(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = {
        "name": "tiny_stop",
        "base": str(REPO / "configs" / "synthetic_tmanet.yaml"),
        "overrides": {**LOCAL_TINY, "train.iters": 100000, "train.checkpoint_every": 100000, "output_root": "out/runs"},
        "grid": [{"product": {"model.memory_length": [1, 2]}}],
        "launch": {"launcher": "local", "max_parallel": 1},
    }
    (tmp_path / "stop.yaml").write_text(yaml.safe_dump(spec))
    first = build_grid(tmp_path / "stop.yaml").runs[0]
    log = tmp_path / "out/sweeps/tiny_stop/logs" / f"{first.run_id}.log"
    command = [sys.executable, "-m", "bench.cli", "sweep", "stop.yaml", "--launcher", "local"]
    result = _start_and_interrupt(command, tmp_path, _logged_an_iteration(tmp_path / first.run_dir / "log.jsonl"))
    assert result.returncode == 130, result.stderr[-2000:]
    said = [line for line in result.stderr.splitlines() if " INFO bench.progress: " not in line]  # progress log
    assert said == [
        "bench: interrupted (Ctrl-C); stopped 1 running run (a run in training saved its checkpoint), 1 not started; "
        "resume with: bench sweep stop.yaml --launcher local"
    ]
    assert "SIGTERM received; checkpoint" in log.read_text()
    assert torch.load(tmp_path / first.run_dir / "checkpoint.pt", weights_only=True)["iteration"] >= 1


def test_ctrl_c_on_bench_train_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    command = [sys.executable, "-m", "bench.cli", "train", "run_dir=run", *LONG]
    result = _start_and_interrupt(command, tmp_path, _logged_an_iteration(tmp_path / "run" / "log.jsonl"))
    assert result.returncode == -signal.SIGINT, result.stderr[-2000:]  # a shell shows 130
    iteration = torch.load(tmp_path / "run/checkpoint.pt", weights_only=True)["iteration"]
    lines = [line for line in result.stderr.splitlines() if line.strip() and " INFO bench.progress: " not in line]
    assert lines == [
        f"bench: SIGINT received; checkpoint run/checkpoint.pt saved at iteration {iteration}; to resume "
        f"rerun {shlex.join(['bench', *command[3:]])} (or let the launcher requeue)"
    ], result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run/error.json").exists()

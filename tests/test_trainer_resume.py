"""Kill-and-resume: a run interrupted mid-way and resumed ends bit-identical to an uninterrupted run on CPU."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import TINY, as_overrides, tiny_builder

from bench.engine.checkpoint import load_checkpoint
from bench.engine.trainer import TrainHook, TrainingInterrupted
from bench.run.execute import train_and_evaluate

# TMANet (dropout on, so the global RNG matters) with random crops / flips / photometric distortion
SETTINGS = {
    "model.memory_length": 1,
    "data.synthetic.size": [40, 40],
    "data.synthetic.train_clips": 6,
    "data.synthetic.val_clips": 2,
    "data.synthetic.num_classes": 4,
    "train.batch_size": 2,
    "train.iters": 8,
    "train.checkpoint_every": 3,
    "train.log_every": 2,
}
RESUME_TINY = as_overrides({**TINY, **SETTINGS})
tiny_config = tiny_builder(SETTINGS, "run_dir")


class StopAfter(TrainHook):
    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def on_step_end(self, state) -> None:
        if state.iteration == self.iteration:
            state.request_stop("StopAfter")


class SignalAt(TrainHook):
    """Sends ``signum`` to this process at the end of step ``iteration`` (as a preemption would, any time)."""

    def __init__(self, iteration: int, signum: int) -> None:
        self.iteration, self.signum = iteration, signum

    def on_step_end(self, state) -> None:
        if state.iteration == self.iteration:
            os.kill(os.getpid(), self.signum)


def assert_same_final_state(a: Path, b: Path) -> None:
    first, second = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert first["iteration"] == second["iteration"] == 8
    assert first["model"].keys() == second["model"].keys()
    for key, value in first["model"].items():
        assert torch.equal(value, second["model"][key]), key
    for slot, state in first["optimizer"]["state"].items():
        assert torch.equal(state["momentum_buffer"], second["optimizer"]["state"][slot]["momentum_buffer"])
    assert first["data"] == second["data"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    return run_dir, train_and_evaluate(tiny_config(run_dir), run_dir)


def test_stopped_and_resumed_run_equals_uninterrupted_run(uninterrupted, tmp_path):
    reference_dir, reference = uninterrupted
    with pytest.raises(TrainingInterrupted, match="after iteration 5"):
        train_and_evaluate(tiny_config(tmp_path), tmp_path, hooks=[StopAfter(5)])  # between checkpoints 3 and 6
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 5
    record = train_and_evaluate(tiny_config(tmp_path), tmp_path)
    assert_same_final_state(reference_dir, tmp_path)
    assert record["metrics"] == reference["metrics"]
    assert record["iters"] == 8
    # the log has every interval exactly once, as if never interrupted
    iters = [line for line in (tmp_path / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert len(iters) == 4


def test_preemption_signal_saves_then_hands_over_to_the_launcher(uninterrupted, tmp_path):
    """SIGUSR2 during training: checkpoint at the iteration boundary, then the previous handler (here a stand-in
    for submitit's requeue handler) runs; resuming gives the uninterrupted result."""
    reference_dir, reference = uninterrupted

    class Requeued(Exception):
        pass

    def launcher_handler(signum, frame):
        raise Requeued(signum)

    previous = signal.signal(signal.SIGUSR2, launcher_handler)
    try:
        with pytest.raises(Requeued):
            train_and_evaluate(tiny_config(tmp_path), tmp_path, hooks=[SignalAt(4, signal.SIGUSR2)])
        assert signal.getsignal(signal.SIGUSR2) is launcher_handler  # the trainer restored the handler
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 4
    record = train_and_evaluate(tiny_config(tmp_path), tmp_path)
    assert_same_final_state(reference_dir, tmp_path)
    assert record["metrics"] == reference["metrics"]


def test_sigterm_with_default_handler_saves_and_ends_the_process(tmp_path):
    """Without a launcher handler the process saves a checkpoint and then dies of the signal."""
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from bench.config import load_config
        from bench.engine.trainer import TrainHook
        from bench.run.execute import train_and_evaluate
        class SignalAt(TrainHook):
            def on_step_end(self, state):
                if state.iteration == 2:
                    os.kill(os.getpid(), signal.SIGTERM)
        train_and_evaluate(load_config(None, {RESUME_TINY!r}), Path({str(tmp_path)!r}), hooks=[SignalAt()])
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == -signal.SIGTERM, result.stderr[-2000:]
    assert "SIGTERM received" in result.stderr
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 2

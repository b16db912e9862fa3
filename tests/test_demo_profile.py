"""The demo profile script runs one run of a grid and splits its CPU time into phases (no timing asserted)."""

from __future__ import annotations

from helpers import TINY, write_grid_spec

from bench.perf.demo_profile import main


def test_demo_profile_prints_every_phase(tmp_path, capsys):
    settings = {**TINY, "train.iters": 2, "train.batch_size": 2, "launch.latency_frames": 1}
    spec = write_grid_spec(
        tmp_path, overrides={**settings, "output_root": str(tmp_path / "runs"), "launch.latency_repeats": 1}, seeds=[0]
    )
    main([str(spec), "--run", "1", "--latency"])
    out = capsys.readouterr().out
    assert "CPU-s" in out
    for phase in ("imports", "data", "forward/backward", "evaluation", "latency", "checkpoints", "rest"):
        assert f"  {phase} " in out, phase

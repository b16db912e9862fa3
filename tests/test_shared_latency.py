"""Latency once per architecture after training (bench.run.latency_run.share_latency), and the one local queue over
several grids, longest runs first (bench.grid.sweep.sweep_grids_locally)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TINY, tiny_builder, write_grid_spec

from bench.grid import local
from bench.grid.forked import RunStarter
from bench.grid.spec import build_grid
from bench.grid.sweep import sweep_grids_locally
from bench.run import latency_run
from bench.run.execute import execute
from bench.run.identity import RunIdentity
from bench.run.latency_run import latency_key, share_latency
from bench.run.rundir import RunDir

SETTINGS = {
    "train.iters": 1,
    "train.batch_size": 2,
    "data.synthetic.val_clips": 2,
    "eval.temporal_consistency": False,
    "launch.latency": True,
    "launch.latency_frames": 1,
    "launch.latency_repeats": 1,
}
build = tiny_builder(SETTINGS, "output_root")


def test_runs_of_one_architecture_share_one_measurement(tmp_path, monkeypatch):
    seeds = [build(tmp_path, f"train.seed={seed}") for seed in (0, 1)]
    other = build(tmp_path, "model.memory_length=1")
    for cfg in [*seeds, other]:
        record = execute(cfg, defer_latency=True).record
        assert record is not None and "latency" not in record  # left to the launcher
    lines: list[str] = []
    shared = share_latency([*seeds, other, seeds[0]], say=lines.append)  # a run listed twice counts once
    assert len(shared) == 2 and len(lines) == 2
    records = [RunDir.of(cfg).read_record().record for cfg in [*seeds, other]]
    first, second, third = (record["latency"] for record in records)
    assert first == second and first["measured_run"] == RunIdentity.of(seeds[0]).run_id
    assert third["architecture"] != first["architecture"] and third["measured_run"] == RunIdentity.of(other).run_id
    assert (RunDir.of(seeds[0]).path / "latency.json").is_file()  # the measured run keeps the measurement
    assert not (RunDir.of(seeds[1]).path / "latency.json").exists()

    def no_measurement(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(latency_run, "latency_command", no_measurement)
    assert share_latency([*seeds, other]) == {}  # every record has its latency
    late = build(tmp_path, "train.seed=2")
    execute(late, defer_latency=True)
    assert share_latency([*seeds, late]) and RunDir.of(late).read_record().record["latency"] == first  # passed on


def test_latency_key_ignores_seed_training_and_content_not_the_network():
    base = RunIdentity.of(build(Path("x")))
    for override in ("train.seed=3", "train.iters=7", "data.synthetic.current_cue=visible", "eval.batch_size=4"):
        assert latency_key(RunIdentity.of(build(Path("x"), override))) == latency_key(base), override
    for override in ("model.memory_length=3", "data.synthetic.size=[48,48]", "threads=2", "model.name=per_frame"):
        assert latency_key(RunIdentity.of(build(Path("x"), override))) != latency_key(base), override


def test_one_queue_over_grids_trains_shared_runs_once_longest_first(tmp_path, monkeypatch):
    overrides = {**TINY, **SETTINGS, "output_root": str(tmp_path / "runs")}
    first = write_grid_spec(tmp_path, "a.yaml", overrides=overrides, seeds=[0])
    second = write_grid_spec(
        tmp_path,
        "b.yaml",
        overrides=overrides,
        seeds=[0],
        grid=[{"product": {"model.memory_length": [1, 4]}}, {"zip": {"model.name": ["per_frame"]}}],
    )
    for path, name in ((first, "a"), (second, "b")):  # two grids, two bookkeeping folders
        path.write_text(path.read_text().replace("name: t\n", f"name: {name}\n"))
    grids = [build_grid(first), build_grid(second)]
    assert grids[0].sweep_dir != grids[1].sweep_dir
    calls: dict[str, object] = {}

    def fake_run_local(queue, max_parallel, folder, manifest=None, **kwargs):
        calls.update(queue=[run.run_id for run in queue], parallel=max_parallel, **kwargs)
        return []

    monkeypatch.setattr(local, "run_local", fake_run_local)
    monkeypatch.setattr(local, "share_latency_after", lambda runs, folder: calls.update(latency=len(runs)))
    assert sweep_grids_locally(grids, max_parallel=2) == 0
    t1, t2 = (run.run_id for run in grids[0].runs)
    t4, per_frame = grids[1].runs[1].run_id, grids[1].runs[2].run_id
    assert calls["queue"] == [t4, t2, t1, per_frame]  # T=1 of grid b is grid a's run: once, its home is grid a
    assert calls["defer_latency"] is True and calls["parallel"] == 2 and calls["latency"] == 4
    assert calls["homes"] == {t4: grids[1].sweep_dir, t2: grids[0].sweep_dir, t1: grids[0].sweep_dir,
                              per_frame: grids[1].sweep_dir}  # fmt: skip


@pytest.mark.parametrize("setting, forked", [("subprocess", False), ("forkserver", True)])
def test_runs_start_from_the_fork_server_unless_switched_off(setting, forked, monkeypatch):
    monkeypatch.setenv("BENCH_LOCAL_START", setting)
    assert RunStarter().forked is forked

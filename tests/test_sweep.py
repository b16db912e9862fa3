"""Grid specs: expansion (product, zip, union, seeds), stable ids, dedup, status, dry run, bad input."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from helpers import fake_eval_record, write_grid_spec

from bench.config import load_config, to_dict
from bench.grid.spec import SweepError, build_grid, expand_block, load_spec
from bench.grid.status import RunState, run_statuses
from bench.grid.sweep import status_command, sweep_command
from bench.run.fingerprint import code_fingerprint
from bench.run.identity import run_id
from bench.run.liveness import JobStatus, Liveness
from bench.run.rundir import RunDir

REPO = Path(__file__).resolve().parent.parent
SYNTHETIC_BASE = REPO / "configs" / "synthetic_tmanet.yaml"


def test_expand_block_product_times_zip():
    block = {"product": {"a": [1, 2]}, "zip": {"b": [3, 4], "c": ["x", "y"]}}
    assert expand_block(block) == [
        {"a": 1, "b": 3, "c": "x"},
        {"a": 1, "b": 4, "c": "y"},
        {"a": 2, "b": 3, "c": "x"},
        {"a": 2, "b": 4, "c": "y"},
    ]
    assert expand_block({"product": {"a": [1, 2], "b": [5, 6]}}) == [
        {"a": 1, "b": 5},
        {"a": 1, "b": 6},
        {"a": 2, "b": 5},
        {"a": 2, "b": 6},
    ]
    assert expand_block({"zip": {"a": [1, 2], "b": [5, 6]}}) == [{"a": 1, "b": 5}, {"a": 2, "b": 6}]


def test_union_of_blocks_and_seeds(tmp_path):
    path = write_grid_spec(
        tmp_path,
        grid=[
            {"product": {"model.memory_length": [1, 4]}},
            {"zip": {"model.name": ["per_frame", "flow_warp"], "model.flow.source": ["raft", "ground_truth"]}},
        ],
        seeds=[0, 3],
    )
    runs = build_grid(path).runs
    assert len(runs) == 8
    assert [r.seed for r in runs[:2]] == [0, 3]
    base_t = load_config(SYNTHETIC_BASE).model.memory_length  # rows that do not set it keep the base's
    assert [(r.config.model.name, r.config.model.memory_length, r.config.model.flow.source) for r in runs[::2]] == [
        ("tmanet", 1, "raft"),
        ("tmanet", 4, "raft"),
        ("per_frame", base_t, "raft"),
        ("flow_warp", base_t, "ground_truth"),
    ]
    assert all(r.config.train.seed == r.seed for r in runs)
    assert all(Path(r.run_dir) == tmp_path / "runs" / r.run_id for r in runs)
    assert len({r.run_id for r in runs}) == 8


def test_ids_are_stable_and_match_run_id_of_the_resolved_config(tmp_path):
    path = write_grid_spec(tmp_path, seeds=[1])
    first = [r.run_id for r in build_grid(path).runs]
    assert first == [r.run_id for r in build_grid(path).runs]
    direct = load_config(SYNTHETIC_BASE, ["model.memory_length=2", "train.seed=1", f"output_root={tmp_path}/runs"])
    assert first[1] == run_id(direct)
    # launch settings and the output folder do not change a run's id
    again = build_grid(path, [f"output_root={tmp_path}/elsewhere"], {"launcher": "slurm", "max_parallel": 3}).runs
    assert [r.run_id for r in again] == first
    assert again[0].config.launch.launcher == "slurm" and again[0].config.launch.max_parallel == 3


def test_identical_runs_are_deduplicated(tmp_path):
    # memory_length 2 is the base value, so the product's 2 and the empty-looking zip row are the same run
    path = write_grid_spec(
        tmp_path,
        grid=[
            {"product": {"model.memory_length": [2, 2, 4]}},
            {"zip": {"model.memory_length": [2], "model.name": ["tmanet"]}},
        ],
    )
    runs = build_grid(path).runs
    assert [r.config.model.memory_length for r in runs] == [2, 4]
    assert len(runs[0].also) == 2


def test_the_grid_has_its_own_launch_settings(tmp_path):
    # a grid entry cannot set launch.*; the grid's launch is base < spec launch < command line
    path = write_grid_spec(tmp_path, launch={"launcher": "local", "max_parallel": 3, "time_min": 30})
    grid = build_grid(path, ["launch.mem_gb=4"], {"launcher": "slurm"})
    assert (grid.launch.launcher, grid.launch.max_parallel, grid.launch.time_min, grid.launch.mem_gb) == (
        "slurm",
        3,
        30,
        4,
    )
    assert grid.sweep_dir == tmp_path / "sweeps" / "t" and len(grid.runs) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.runs[0].run_id = "x"  # runs are frozen


def test_shipped_synthetic_grids_share_the_default_tmanet_run():
    specs = ["synthetic_memory_length", "synthetic_aggregation", "synthetic_encoding", "synthetic_methods"]
    ids = {name: {r.run_id for r in build_grid(REPO / "ablations" / f"{name}.yaml").runs} for name in specs}
    shared = set.intersection(*ids.values())
    assert shared and all(i.startswith("tmanet-") for i in shared)
    methods = build_grid(REPO / "ablations" / "synthetic_methods.yaml").runs
    assert {r.config.model.name for r in methods} == {"tmanet", "per_frame", "flow_warp"}
    assert {r.config.model.flow.source for r in methods if r.config.model.name == "flow_warp"} == {"ground_truth"}
    mem = build_grid(REPO / "ablations" / "synthetic_memory_length.yaml").runs
    assert sorted({r.config.model.memory_length for r in mem}) == [1, 2, 4]


@pytest.mark.parametrize("dataset", ["cityscapes", "camvid"])
def test_shipped_full_scale_grids_expand(dataset):
    mem = build_grid(REPO / "ablations" / f"{dataset}_memory_length.yaml").runs
    assert [r.config.model.memory_length for r in mem] == [1, 2, 4, 6, 8]
    assert all(r.config.launch.launcher == "slurm" and r.config.launch.gpus_per_node == 4 for r in mem)
    assert all(r.config.train.iters == 80000 and r.config.data.dataset == dataset for r in mem)
    agg = build_grid(REPO / "ablations" / f"{dataset}_aggregation.yaml").runs
    assert [r.config.model.aggregation for r in agg] == ["concat", "sum"]
    enc = build_grid(REPO / "ablations" / f"{dataset}_encoding.yaml").runs
    assert [r.config.model.encoding for r in enc] == ["1x1", "3x3", "1x1+3x3"]
    methods = build_grid(REPO / "ablations" / f"{dataset}_methods.yaml").runs
    assert [r.config.model.name for r in methods] == ["tmanet", "per_frame", "flow_warp"]
    # the default TMANet run is shared by all four grids of a dataset
    shared = set.intersection(*({r.run_id for r in g} for g in (mem, agg, enc, methods)))
    assert len(shared) == 1


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"grid": [{"product": {"model.memory_lenght": [1, 2]}}]}, "model.memory_lenght"),
        ({"grid": [{"product": {"model.memory_length": [1, 99]}}]}, "model.memory_length"),
        ({"grid": []}, "'grid' must be a non-empty list"),
        ({"grid": [{"product": {"model.memory_length": []}}]}, "non-empty list of values"),
        ({"grid": [{"zip": {"model.memory_length": [1, 2], "model.name": ["tmanet"]}}]}, "equal lengths"),
        ({"grid": [{"cartesian": {"model.memory_length": [1]}}]}, "'product' and/or 'zip'"),
        ({"base": "no/such/config.yaml"}, "base config not found"),
        ({"seeds": []}, "'seeds' must be a non-empty list"),
        ({"launch": {"launcher": "kubernetes"}}, "launch.launcher"),
        ({"grid_": 1}, "unknown key 'grid_'"),
        ({"overrides": {"train.itrs": 5}}, "train.itrs"),
    ],
)
def test_bad_specs_give_clear_errors(tmp_path, fields, message):
    path = write_grid_spec(tmp_path, **fields)
    with pytest.raises(SweepError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        build_grid(path)


def test_unknown_model_name_is_caught_before_launch(tmp_path, capsys):
    path = write_grid_spec(tmp_path, grid=[{"product": {"model.name": ["tmanet", "tmanett"]}}])
    with pytest.raises(SweepError, match="unknown model 'tmanett'"):
        sweep_command(str(path), launcher="local")
    assert not (tmp_path / "sweeps").exists() and not (tmp_path / "runs").exists()


def test_missing_spec_file():
    with pytest.raises(SweepError, match="grid spec not found"):
        load_spec("ablations/no_such_grid.yaml")


def test_dry_run_prints_the_table_and_touches_nothing(tmp_path, capsys):
    path = write_grid_spec(tmp_path, seeds=[0, 1])
    assert sweep_command(str(path), dry_run=True) == 0
    out = capsys.readouterr().out
    runs = build_grid(path).runs
    for run in runs:
        assert run.run_id in out
    assert "model.memory_length=1" in out and "pending" in out and "4 runs" in out
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sweeps").exists()


def test_status_reads_records_errors_claims_and_manifest(tmp_path, capsys):
    path = write_grid_spec(tmp_path, grid=[{"product": {"model.memory_length": [1, 2, 3, 4]}}])
    runs = build_grid(path).runs
    done, failed, running, crashed = (r.run_dir for r in runs)
    for d in (done, failed, running, crashed):
        d.mkdir(parents=True)
    (done / "record.json").write_text(json.dumps(fake_eval_record("x", 0, miou=0.5, config=to_dict(runs[0].config))))
    (failed / "error.json").write_text(json.dumps({"last_line": "ValueError: boom", "job_id": None}))
    from bench.run.liveness import process_start_time

    (running / "claim.json").write_text(
        json.dumps(
            {
                "host": os.uname().nodename,
                "pid": os.getpid(),
                "pid_start": process_start_time(),
                "job_id": None,
                "time": 0,
            }
        )
    )
    manifest = tmp_path / "sweeps" / "t" / "manifest.jsonl"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        json.dumps({"event": "submit", "run_id": runs[3].run_id, "launcher": "local", "job_id": "local-1"})
        + "\n"
        + json.dumps(
            {"event": "end", "run_id": runs[3].run_id, "job_id": "local-1", "returncode": -9, "reason": "Killed"}
        )
        + "\n"
    )
    states = [(s.state, s.reason) for s in run_statuses(runs, manifest)]
    assert states[0] == (RunState.DONE, "mIoU 50.00")
    assert states[1] == (RunState.FAILED, "ValueError: boom")
    assert states[2][0] is RunState.RUNNING and str(os.getpid()) in states[2][1]
    assert states[3] == (RunState.FAILED, "exit code -9: Killed")
    assert status_command(str(path)) == 0
    out = capsys.readouterr().out
    assert "1 done, 1 running, 0 queued, 2 failed, 0 corrupt, 0 pending, 0 unknown" in out and "ValueError: boom" in out


def test_sweep_skips_finished_and_running_runs(tmp_path, capsys, monkeypatch):
    path = write_grid_spec(tmp_path, grid=[{"product": {"model.memory_length": [1, 2, 3]}}])
    runs = build_grid(path).runs
    runs[0].run_dir.mkdir(parents=True)
    (runs[0].run_dir / "record.json").write_text(
        json.dumps(fake_eval_record("x", 0, miou=0.1, config=to_dict(runs[0].config)))
    )
    runs[1].run_dir.mkdir(parents=True)
    (runs[1].run_dir / "claim.json").write_text(json.dumps({"host": os.uname().nodename, "pid": os.getpid()}))
    launched = []

    def fake_run_local(todo, max_parallel, folder, manifest, echo=True, take_over=False, **launch):
        launched.extend(r.run_id for r in todo)
        return []

    monkeypatch.setattr("bench.grid.local.run_local", fake_run_local)
    assert sweep_command(str(path), launcher="local") == 0
    assert launched == [runs[2].run_id]


def test_queued_slurm_runs_are_not_submitted_again(tmp_path, capsys, monkeypatch):
    path = write_grid_spec(tmp_path, grid=[{"product": {"model.memory_length": [1, 2]}}])
    runs = build_grid(path).runs
    manifest = tmp_path / "sweeps" / "t" / "manifest.jsonl"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(
        "".join(
            json.dumps({"event": "submit", "run_id": r.run_id, "launcher": "slurm", "job_id": f"7_{i}"}) + "\n"
            for i, r in enumerate(runs)
        )
    )
    answers = {
        "7_0": JobStatus("7_0", Liveness.ALIVE, "PENDING", "SLURM job 7_0 PENDING"),
        "7_1": JobStatus("7_1", Liveness.DEAD, "FAILED", "SLURM job 7_1 FAILED"),
    }
    monkeypatch.setattr("bench.grid.status.query_slurm_jobs", lambda ids: {i: answers[i] for i in ids})
    states = [(s.state, s.reason) for s in run_statuses(runs, manifest)]
    assert states == [(RunState.QUEUED, "SLURM job 7_0 PENDING"), (RunState.FAILED, "SLURM job 7_1 FAILED, no record")]
    submitted = []
    monkeypatch.setattr("bench.grid.sweep.slurm_reachable", lambda: (True, ""))
    monkeypatch.setattr("bench.grid.slurm.submit_slurm", lambda todo, *a, **k: submitted.extend(todo) or [])
    assert sweep_command(str(path), launcher="slurm") == 0
    assert [r.run_id for r in submitted] == [runs[1].run_id]


PLUGIN = """from baselines.per_frame import per_frame
from bench.models.registry import register_model


@register_model("stale_probe")
def stale_probe(num_classes, **head):
    return per_frame(num_classes, **head)
"""


def test_a_plugin_edit_makes_its_records_stale(tmp_path, capsys, monkeypatch):
    """Issue 18: a record made before the plugin's code changed is never reused silently."""
    module = tmp_path / "stale_probe_plugin.py"
    module.write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write_grid_spec(
        tmp_path,
        grid=[{"product": {"model.name": ["stale_probe"]}}],
        seeds=[0],
        overrides={"output_root": str(tmp_path / "runs"), "plugins": ["stale_probe_plugin"]},
    )
    run = build_grid(path).runs[0]
    run.run_dir.mkdir(parents=True)
    made_by = code_fingerprint(["stale_probe_plugin"])
    RunDir(run.run_dir).write_record(
        fake_eval_record(run.run_id, 0, miou=0.42, config=to_dict(run.config), code=made_by)
    )
    assert [s.state for s in run_statuses([run], tmp_path / "m.jsonl")] == [RunState.DONE]

    module.write_text(PLUGIN.replace("return per_frame", "head = dict(head)  # a new layer\n    return per_frame"))
    status = run_statuses([run], tmp_path / "m.jsonl")[0]
    assert (status.state, status.reason) == (RunState.STALE, "code changed (plugin stale_probe_plugin)")
    launched = []
    monkeypatch.setattr("bench.grid.local.run_local", lambda todo, *a, **k: launched.extend(todo) or [])
    capsys.readouterr()
    assert sweep_command(str(path), launcher="local") == 2 and not launched  # stops, names the way out
    err = capsys.readouterr().err
    assert "--rerun-stale" in err and "--accept-stale" in err and "plugin stale_probe_plugin" in err
    assert sweep_command(str(path), launcher="local", stale="accept") == 0 and not launched
    assert sweep_command(str(path), launcher="local", stale="rerun") == 0
    assert [r.run_id for r in launched] == [run.run_id]
    kept = run.run_dir.with_name(run.run_dir.name + ".stale-1")
    assert json.loads((kept / "record.json").read_text())["metrics"]["miou"] == 0.42 and not run.run_dir.exists()
    assert RunDir.below(tmp_path / "runs") == []  # a folder moved aside is no run of a report


def test_a_record_without_a_fingerprint_is_stale(tmp_path):
    path = write_grid_spec(tmp_path, seeds=[0])
    run = build_grid(path).runs[0]
    run.run_dir.mkdir(parents=True)
    old = fake_eval_record(run.run_id, 0, miou=0.3, config=to_dict(run.config))
    del old["code"]
    RunDir(run.run_dir).write_record(old)
    status = run_statuses([run], tmp_path / "m.jsonl")[0]
    assert status.state is RunState.STALE and "no code fingerprint" in status.reason


def test_every_run_module_the_trainer_and_evaluation_import_is_classified_for_the_fingerprint():
    """Every module of the engine and of evaluation, and every bench.run module they or the run's training path
    import, either computes a record (its edits make records stale) or is listed as one that never changes a
    metric; a new module must be put in one of the two."""
    import ast

    from bench.run.fingerprint import COMPUTING, NOT_COMPUTING_RUN

    repo = Path(__file__).resolve().parent.parent
    sources = sorted((repo / "bench" / "engine").glob("*.py")) + sorted((repo / "bench" / "evaluation").glob("*.py"))
    used = {path.relative_to(repo).as_posix() for path in sources}
    for source in [*sources, repo / "bench" / "run" / "execute.py"]:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench.run."):
                used.add(node.module.replace(".", "/") + ".py")
    used -= {"bench/run/execute.py", "bench/run/liveness.py"}  # the executor and claims: never a number
    unclassified = used - set(COMPUTING) - set(NOT_COMPUTING_RUN)
    assert not unclassified, f"add to COMPUTING or NOT_COMPUTING_RUN in bench/run/fingerprint.py: {unclassified}"
    assert "bench/engine/temporal_loss.py" in COMPUTING

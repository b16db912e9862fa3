"""Reliability cases of issue 19, each failing on the code before it: SLURM answers that are no evidence (F2),
claims whose owner cannot be verified (G2), degenerate input and one-line errors."""

from __future__ import annotations

import json
import socket
import time

import pytest
import yaml
from helpers import TINY, as_overrides, fake_slurm, one_line_error

import bench.run.liveness as liveness
from bench.cli import main
from bench.config import ConfigError, parse_yaml
from bench.grid.spec import SweepError, build_grid
from bench.grid.status import RunState, run_statuses
from bench.run import claims
from bench.run.claims import claim_liveness
from bench.run.liveness import Liveness
from bench.run.rundir import RunDir


def _claimed_run(write_spec, claim: dict):
    (run,) = build_grid(write_spec(grid=[{"product": {"model.memory_length": [1]}}])).runs
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "claim.json").write_text(json.dumps(claim))
    return run


# --------------------------------------------------------------------------------------------------
# F2: an empty or partial squeue answer is no evidence that a job is gone


def test_an_empty_squeue_answer_leaves_a_slurm_run_alone(tmp_path, monkeypatch, write_spec, capsys):
    fake_slurm(tmp_path / "bin", monkeypatch, squeue="exit 0", sacct="echo 'sacct: error' >&2; exit 1")
    run = _claimed_run(write_spec, {"host": "node7", "pid": 1, "job_id": "77", "time": 0})
    (status,) = run_statuses([run], tmp_path / "manifest.jsonl")
    assert status.state is RunState.UNKNOWN and "squeue answered nothing" in status.reason
    assert "--take-over" in status.reason
    got = RunDir(run.run_dir).acquire_claim()
    assert not got.ok and got.check.liveness is Liveness.UNKNOWN
    launched = []
    monkeypatch.setattr("bench.grid.local.run_local", lambda todo, *a, **k: launched.append(todo) or [])
    assert main(["sweep", str(run.run_dir.parent.parent / "spec.yaml"), "--launcher", "local"]) == 0
    assert launched == []


def test_a_job_missing_from_a_partial_answer_is_asked_again_after_the_grace_period(tmp_path, monkeypatch):
    # first answer lists another job only; the second (after the grace period) lists ours again
    count = tmp_path / "count"
    squeue = (
        f"n=$(cat {count} 2>/dev/null || echo 0); echo $((n+1)) > {count}; "
        "if [ $n -eq 0 ]; then echo '78|RUNNING'; else echo '77|RUNNING'; fi"
    )
    fake_slurm(tmp_path / "bin", monkeypatch, squeue=squeue, sacct="exit 1", grace_s=0.2)
    job = liveness.query_slurm_jobs(["77"])["77"]
    assert job.liveness is Liveness.ALIVE and job.state == "RUNNING" and count.read_text().strip() == "2"
    # still not listed by a controller that answers, and unknown to an accounting that answers: gone
    fake_slurm(tmp_path / "bin", monkeypatch, squeue="echo '78|RUNNING'", sacct="exit 0")
    assert liveness.query_slurm_jobs(["77"])["77"].liveness is Liveness.DEAD
    # (with sacct failing, a squeue listing only other jobs is no evidence: tests/test_fault_matrix.py)
    # a final state from sacct is evidence at once
    fake_slurm(tmp_path / "bin", monkeypatch, squeue="exit 0", sacct="echo '77|TIMEOUT'")
    assert liveness.query_slurm_jobs(["77"])["77"].liveness is Liveness.DEAD
    # an unreadable answer (no id|state line) is no answer
    fake_slurm(tmp_path / "bin", monkeypatch, squeue="echo 'federation view: nothing here'", sacct="exit 0")
    assert liveness.query_slurm_jobs(["77"])["77"].liveness is Liveness.UNKNOWN


# --------------------------------------------------------------------------------------------------
# G2: a claim whose owner cannot be verified is "unknown", with the way out, and --take-over takes it


def test_a_claim_without_a_start_time_is_unknown_and_can_be_taken_over(tmp_path, monkeypatch, capsys):
    import bench.run.execute as trainer

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    claim = {"host": socket.gethostname(), "pid": 1, "pid_start": None, "job_id": None, "time": 0}
    (run_dir / "claim.json").write_text(json.dumps(claim))
    check = claim_liveness(RunDir(run_dir).read_claim().claim)
    assert check.liveness is Liveness.UNKNOWN and "no start time" in check.reason
    trained = []
    monkeypatch.setattr(
        trainer,
        "train_and_evaluate",
        lambda cfg, run_dir, **k: (
            trained.append(run_dir) or {"run_id": run_dir.name, "status": "done", "metrics": {"miou": 0.5}}
        ),
    )
    overrides = as_overrides({**TINY, "train.iters": 2}) + [f"run_dir={run_dir}"]
    assert main(["train", *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no start time" in err and "--take-over" in err and trained == []
    assert main(["train", *overrides, "--take-over"]) == 0
    assert trained == [run_dir] and not (run_dir / "claim.json").exists()


# --------------------------------------------------------------------------------------------------
# G13: names that become paths are safe names, and the paths stay under their root


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs-name", "a/b", ".hidden"])
def test_a_grid_name_that_leaves_its_folder_is_refused(tmp_path, write_spec, capsys, name):
    path = write_spec()
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "name": name}))
    with pytest.raises(SweepError, match="not a safe name"):
        build_grid(path)
    before = set(tmp_path.parent.iterdir())
    assert main(["sweep", str(path), "--launcher", "local", "--dry-run"]) == 2
    assert main(["report", str(path), "--out", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err
    assert "not a safe name" in err and len(err.strip().splitlines()) == 2
    assert set(tmp_path.parent.iterdir()) == before and not (tmp_path / "sweeps").exists()


def test_a_model_name_that_leaves_output_root_is_refused():
    from bench.config import ConfigError, check_inside, load_config

    with pytest.raises(ConfigError, match="model.name '../x' is not a safe name"):
        load_config(None, ["model.name=../x"])
    with pytest.raises(ConfigError, match="outside"):
        check_inside("/a/b/../../c", "/a", "run dir")


# --------------------------------------------------------------------------------------------------
# A12: degenerate ranges and sizes, and a YAML alias bomb, are refused before any work


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.scale_range=[-1,0]", "data.scale_range: [-1.0, 0.0] must be two positive scales with low <= high"),
        ("data.scale_range=[2.0,0.5]", "low <= high"),
        ("data.synthetic.size=[1,1]", "data.synthetic.size: [1, 1] is too small for the network (output stride 8"),
        ("data.crop_size=[8,64]", "data.crop_size: [8, 64] is too small"),
        ("eval.crop_size=[4,4]", "eval.crop_size: [4, 4] is too small"),
    ],
)
def test_degenerate_ranges_and_sizes_are_refused(capsys, override, message):
    assert main(["config", override]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    assert main(["config", str(tmp_path / "bomb.yaml")]) == 2
    assert time.perf_counter() - start < 5
    assert "aliases expand this document past 100000 values" in capsys.readouterr().err
    many = "x: &x 1\ny: [" + ", ".join(["*x"] * 101) + "]\n"
    with pytest.raises(ConfigError, match="more than 100 aliases"):
        parse_yaml(many, "many.yaml")
    assert parse_yaml("x: &x {iters: 3}\ntrain:\n  <<: *x\n", "ok.yaml") == {"x": {"iters": 3}, "train": {"iters": 3}}


# --------------------------------------------------------------------------------------------------
# one line that says what to do, exit 2, nothing lost (C3, C5, G3, G9, memory_length=0, execute, log.jsonl)

TRAIN = as_overrides({**TINY, "train.iters": 2, "train.batch_size": 2, "model.memory_length": 1})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", *TRAIN, f"run_dir={run_dir}"]) == 0
    return run_dir


def test_a_finished_checkpoint_evaluated_again_logs_one_validation_line(trained):
    (trained / "record.json").unlink()
    assert main(["train", *TRAIN, f"run_dir={trained}"]) == 0
    entries = RunDir(trained).read_log().entries
    assert [e["iter"] for e in entries if "val" in e] == [2] and RunDir(trained).read_record().done


def test_save_preds_into_a_read_only_folder_is_one_line(trained, tmp_path, monkeypatch, capsys):
    import errno
    from pathlib import Path

    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert main(["eval", str(trained), "--save-preds", str(tmp_path / "ro" / "preds")]) == 2
    one_line_error(capsys, "Read-only file system", "choose a writable folder")


def test_a_foreign_checkpoint_is_refused_on_resume_and_kept(tmp_path, capsys):
    import torch

    other_model = {"iteration": 1, "model": {"a": torch.zeros(1)}, "optimizer": {}, "data": {}, "rng": {}}
    cases = (
        ({"foo": 1}, "is not a training checkpoint of bench train"),
        ({"model": {"a": torch.zeros(1)}}, "is not a training checkpoint of bench train"),
        (other_model, "cannot be resumed (RuntimeError: Error(s) in loading state_dict"),
    )
    for i, (foreign, message) in enumerate(cases):
        run_dir = tmp_path / f"run{i}"
        run_dir.mkdir()
        torch.save(foreign, run_dir / "checkpoint.pt")
        assert main(["train", *TRAIN, f"run_dir={run_dir}"]) == 2
        one_line_error(capsys, message, "move it aside")
        assert torch.load(run_dir / "checkpoint.pt", weights_only=True).keys() == foreign.keys()
        assert not (run_dir / "claim.json").exists()


@pytest.mark.parametrize(
    "code, text, hint",
    [(28, "No space left on device", "df -h"), (30, "Read-only file system", "choose a writable folder")],
)
def test_a_claim_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys, code, text, hint):
    def refuse(*args, **kwargs):
        raise OSError(code, text)

    monkeypatch.setattr(claims.tempfile, "mkstemp", refuse)
    assert main(["train", *TRAIN, f"run_dir={tmp_path / 'run'}"]) == 2
    one_line_error(capsys, text, hint, str(tmp_path / "run" / "claim.json"))
    assert not (tmp_path / "run" / "claim.json").exists()


def test_a_sweep_into_a_read_only_results_folder_is_one_line(tmp_path, monkeypatch, write_spec, capsys):
    import bench.atomic as atomic

    def refuse(*args, dir=None, **kwargs):
        raise OSError(30, "Read-only file system", str(dir))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    assert main(["sweep", str(write_spec()), "--launcher", "local"]) == 2
    one_line_error(capsys, "Read-only file system", "choose a writable folder")


def test_a_full_disk_checkpoint_message_does_not_invent_a_previous_checkpoint(tmp_path, monkeypatch):
    import bench.engine.checkpoint as checkpoint

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "atomic_file", full)
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint was saved yet") as first:
        checkpoint.save_checkpoint(tmp_path / "checkpoint.pt", {})
    assert "intact" not in str(first.value)
    (tmp_path / "checkpoint.pt").write_bytes(b"old")
    with pytest.raises(checkpoint.CheckpointError, match="the previous checkpoint there is intact"):
        checkpoint.save_checkpoint(tmp_path / "checkpoint.pt", {})


@pytest.mark.parametrize(
    "source, kind", [("raise RuntimeError('boom')\n", "RuntimeError: boom"), ("def broken(:\n", "SyntaxError")]
)
def test_a_plugin_that_fails_at_import_is_one_line(tmp_path, monkeypatch, capsys, source, kind):
    name = f"bench_test_bad_plugin_{abs(hash(source))}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["models", f"plugins=[{name}]"]) == 2
    one_line_error(capsys, f"plugin module {name!r} failed while being imported", f"{name}.py:1", kind)


def test_tmanet_without_memory_is_one_line(tmp_path, capsys):
    assert main(["train", *TRAIN, "model.memory_length=0", f"run_dir={tmp_path / 'run'}"]) == 2
    one_line_error(capsys, "tmanet needs model.memory_length in 1..8, got 0", "per_frame")


def test_execute_with_a_bad_stored_config_is_one_line(tmp_path, capsys):
    from bench.run.execute import main as execute_main

    (tmp_path / "config.yaml").write_text("model: {memory_length: 99}\n")
    assert execute_main([str(tmp_path)]) == 2
    one_line_error(capsys, f"{tmp_path / 'config.yaml'}: model.memory_length: value 99", "delete it and launch")
    (tmp_path / "config.yaml").write_text("model: [\n")
    assert execute_main([str(tmp_path)]) == 2
    one_line_error(capsys, "not valid YAML")


# --------------------------------------------------------------------------------------------------
# B1-2: the dataset is checked before any pretrained weights are looked for; offline weights are one line


def test_a_missing_dataset_is_reported_before_pretrained_weights(tmp_path, monkeypatch, capsys):
    import bench.models.backbone as backbone

    monkeypatch.setattr(backbone, "_create_from_hub", lambda *a: pytest.fail("weights looked for before the data"))
    args = [
        "train",
        "configs/cityscapes_tmanet.yaml",
        f"data.root={tmp_path / 'EMPTY'}",
        "device=cpu",
        f"output_root={tmp_path / 'runs'}",
    ]
    assert main(args) == 2
    one_line_error(capsys, "DatasetError", str(tmp_path / "EMPTY"))


def test_offline_pretrained_weights_are_one_line(tmp_path, monkeypatch, capsys):
    import bench.models.backbone as backbone

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(backbone, "hub_reachable", lambda *a: False)
    assert main(["train", *TRAIN, "model.pretrained=true", f"run_dir={tmp_path / 'run'}"]) == 2
    one_line_error(capsys, "PretrainedWeightsError", "cannot be reached", "model.pretrained_path=")

"""The fault matrix of issue 34, part 1: the two double trainings, the silent wrong results, the loss, the escape
and the tracebacks. Each test fails on the code before issue 34 (commit 9654cc8) and passes after; bad input ends
in one line that says what to do, and loses nothing. Part 2 (disagreements and leftovers): test_fault_leftovers.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket

import numpy as np
import pytest
import torch
from helpers import TINY, as_overrides, fake_slurm, one_line_error, tiny_config, write_frame
from PIL import Image

from bench.cli import main
from bench.config import to_dict
from bench.data import DatasetError, build_dataset
from bench.grid.spec import SweepError, build_grid
from bench.grid.status import RunState, run_statuses
from bench.run.claims import claim_liveness
from bench.run.execute import main as execute_main
from bench.run.fingerprint import code_fingerprint
from bench.run.identity import RunIdentity
from bench.run.liveness import Liveness, query_slurm_jobs
from bench.run.rundir import RunDir

SETTINGS = {**TINY, "train.iters": 2, "train.batch_size": 2, "model.memory_length": 1}
TRAIN = as_overrides(SETTINGS)


def _own_claim(run_dir, **changes) -> dict:
    from bench import process  # new in issue 34 (imported here: on older code only this test fails)

    claim = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_start": None,
        "job_id": None,
        "time": 0.0,
        "pid_ticks": process.start_ticks(),
        "boot_id": process.boot_id(),
        **changes,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "claim.json").write_text(json.dumps(claim))
    return claim


# --------------------------------------------------------------------------------------------------
# double training (clock skew): identity by start ticks, never by a wall-clock start


def test_a_live_owner_whose_wall_clock_start_moved_keeps_its_run(tmp_path, live_process, capsys):
    import psutil

    from bench import process  # new in issue 34 (imported here: on older code only this test fails)

    created = psutil.Process(live_process.pid).create_time()
    run_dir = tmp_path / "run"
    claim = _own_claim(
        run_dir, pid=live_process.pid, pid_start=created - 5.0, pid_ticks=process.start_ticks(live_process.pid)
    )
    check = claim_liveness(RunDir(run_dir).read_claim().claim)
    assert check.liveness is Liveness.ALIVE, check.reason  # an NTP step of 5 s is not a reused pid
    assert main(["train", *TRAIN, f"run_dir={run_dir}"]) == 2
    one_line_error(capsys, f"pid {live_process.pid}", "wait for it to finish")
    assert json.loads((run_dir / "claim.json").read_text()) == claim and not (run_dir / "checkpoint.pt").exists()
    # without start ticks (a claim of older code) a skewed start is unknown, never dead
    _own_claim(run_dir, pid=live_process.pid, pid_start=created - 5.0, pid_ticks=None)
    check = claim_liveness(RunDir(run_dir).read_claim().claim)
    assert check.liveness is Liveness.UNKNOWN and "clock step" in check.reason
    # other start ticks: the pid was reused by a later process
    _own_claim(run_dir, pid=live_process.pid, pid_ticks=process.start_ticks(live_process.pid) - 1)
    assert claim_liveness(RunDir(run_dir).read_claim().claim).liveness is Liveness.DEAD


# --------------------------------------------------------------------------------------------------
# double training (SLURM answering only for others): unknown, never dead; temp files of live writers stay


def test_a_squeue_that_lists_only_other_jobs_while_sacct_fails_is_no_evidence(tmp_path, monkeypatch, write_spec):
    fake_slurm(tmp_path / "bin", monkeypatch, squeue="echo '78|RUNNING'", sacct="echo 'sacct: error' >&2; exit 1")
    job = query_slurm_jobs(["77"])["77"]
    assert job.liveness is Liveness.UNKNOWN and "sacct cannot tell" in job.reason
    (run,) = build_grid(write_spec(grid=[{"product": {"model.memory_length": [1]}}])).runs
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "claim.json").write_text(json.dumps({"host": "node7", "pid": 1, "job_id": "77", "time": 0}))
    (status,) = run_statuses([run], tmp_path / "manifest.jsonl")
    assert status.state is RunState.UNKNOWN and "--take-over" in status.reason
    assert not RunDir(run.run_dir).acquire_claim().ok
    launched = []
    monkeypatch.setattr("bench.grid.local.run_local", lambda todo, *a, **k: launched.append(todo) or [])
    assert main(["sweep", str(tmp_path / "spec.yaml"), "--launcher", "local"]) == 0
    assert launched == [] and (run.run_dir / "claim.json").exists()


def test_the_claim_holder_removes_only_temporary_files_of_writers_that_are_gone(tmp_path, monkeypatch, live_process):
    from bench import process  # new in issue 34 (imported here: on older code only this test fails)

    fake_slurm(tmp_path / "bin", monkeypatch, squeue="echo '77|RUNNING'; echo '78|COMPLETED'", sacct="exit 1")
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    here = process.host_hash()
    live = run.path / f".checkpoint.pt.~{here}~{live_process.pid}~{process.start_ticks(live_process.pid)}~~ab.tmp"
    live_job = run.path / f".checkpoint.pt.~{process.host_hash('node7')}~12~34~77~cd.tmp"
    dead_job = run.path / f".checkpoint.pt.~{process.host_hash('node7')}~12~34~78~ef.tmp"
    dead_pid = run.path / f".checkpoint.pt.~{here}~{live_process.pid}~1~~gh.tmp"  # same pid, other start: gone
    untagged = run.path / ".record.json.xyz.tmp"  # written by older code
    for path in (live, live_job, dead_job, dead_pid, untagged):
        path.write_bytes(b"x" * 10)
    assert run.acquire_claim().ok
    removed = run.remove_temp_files()
    assert sorted(removed) == sorted([dead_job, dead_pid, untagged])
    assert live.exists() and live_job.exists()
    # what atomic writes create now carries the writer
    from bench.atomic import temp_prefix

    assert process.writer_of(temp_prefix("checkpoint.pt") + "x.tmp").me


# --------------------------------------------------------------------------------------------------
# silent wrong results: a checkpoint carries its run's identity and code; a mismatch is refused in one line


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two finished tiny runs that differ only in their seed (the same architecture: weights fit either)."""
    root = tmp_path_factory.mktemp("checkpoints")
    for seed in (0, 1):
        assert main(["train", *TRAIN, f"train.seed={seed}", f"run_dir={root / f'seed{seed}'}"]) == 0
    return root


def _killed_run(checkpoints, tmp_path, seed: int, checkpoint_of: int):
    """A run of ``seed`` killed after writing its config, holding the checkpoint of run ``checkpoint_of``."""
    run_dir = tmp_path / f"killed{seed}"
    run_dir.mkdir()
    shutil.copy(checkpoints / f"seed{seed}" / "config.yaml", run_dir / "config.yaml")
    shutil.copy(checkpoints / f"seed{checkpoint_of}" / "checkpoint.pt", run_dir / "checkpoint.pt")
    return run_dir


def test_a_foreign_checkpoint_copied_into_a_killed_run_is_refused(checkpoints, tmp_path, capsys):
    run_dir = _killed_run(checkpoints, tmp_path, seed=0, checkpoint_of=1)
    before = (run_dir / "checkpoint.pt").read_bytes()
    assert main(["train", *TRAIN, "train.seed=0", f"run_dir={run_dir}"]) == 2
    one_line_error(capsys, "checkpoint.pt", "train.seed: stored 1, now 0")
    assert (run_dir / "checkpoint.pt").read_bytes() == before and not (run_dir / "record.json").exists()
    stamp = torch.load(checkpoints / "seed1" / "checkpoint.pt", weights_only=True)
    ident = RunIdentity.of(tiny_config(*TRAIN, "train.seed=1"))
    assert stamp["run_id"] == ident.run_id and stamp["config_hash"] == ident.config_hash
    assert stamp["code"]["suite"] == code_fingerprint()["suite"]


def _other_code(path) -> None:
    state = torch.load(path, weights_only=True)
    state["code"] = {**state["code"], "suite": "0" * 40, "commit": "abc1234def", "dirty": False}
    torch.save(state, path)


def test_a_checkpoint_saved_by_other_code_is_refused_or_restarted_with_rerun_stale(checkpoints, tmp_path, capsys):
    run_dir = _killed_run(checkpoints, tmp_path, seed=0, checkpoint_of=0)
    _other_code(run_dir / "checkpoint.pt")
    assert main(["train", *TRAIN, "train.seed=0", f"run_dir={run_dir}"]) == 2
    one_line_error(capsys, "stale checkpoint", "suite sources (made at commit abc1234def)", "--rerun-stale")
    assert not (run_dir / "record.json").exists()
    # a SLURM requeue after a git pull executes the launched run: refused the same way, error.json says why
    assert execute_main([str(run_dir)]) == 2
    assert "stale checkpoint" in capsys.readouterr().err
    assert "stale checkpoint" in RunDir(run_dir).read_error()["message"] and not (run_dir / "claim.json").exists()
    # the explicit flag restarts the run from scratch; the old folder is kept
    assert main(["train", *TRAIN, "train.seed=0", f"run_dir={run_dir}", "--rerun-stale"]) == 0
    assert RunDir(run_dir).read_record().done and (tmp_path / "killed0.stale-1" / "checkpoint.pt").is_file()
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["code"]["suite"] == code_fingerprint()["suite"]


def test_a_stale_checkpoint_shows_as_stale_in_status_and_a_live_owner_as_running(tmp_path, write_spec):
    grid = build_grid(write_spec(grid=[{"product": {"train.seed": [0]}}]), TRAIN)
    (run,) = grid.runs
    ident = RunIdentity.of(run.config)
    RunDir(run.run_dir).write_config(run.config)
    stamp = {"config": to_dict(run.config), "config_hash": ident.config_hash, "run_id": ident.run_id}
    code = {**code_fingerprint(), "suite": "0" * 40}
    torch.save({"iteration": 1, **stamp, "code": code}, run.run_dir / "checkpoint.pt")
    (status,) = run_statuses(grid.runs, grid.manifest)
    assert status.state is RunState.STALE and "checkpoint saved by other code" in status.reason
    _own_claim(run.run_dir)  # its owner still trains under the code that saved it: running, never moved aside
    (status,) = run_statuses(grid.runs, grid.manifest)
    assert status.state is RunState.RUNNING


def test_bench_eval_of_a_finished_run_on_read_only_storage_prints_its_metrics(checkpoints, monkeypatch, capsys):
    import errno
    import tempfile

    run_dir = checkpoints / "seed0"
    real = tempfile.mkstemp

    def read_only(*args, **kwargs):
        if str(kwargs.get("dir", "")).startswith(str(run_dir)):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert main(["eval", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["miou"] == RunDir(run_dir).read_record().record["metrics"]["miou"]
    assert "read-only" in captured.err and not (run_dir / "eval.json").exists()


# --------------------------------------------------------------------------------------------------
# silent wrong results: labels (and frames) in the wrong format stop with what they look like


def _cityscapes(root, label: np.ndarray, name: str = "labelIds") -> None:
    stem = "aachen_000001_000019"
    path = root / "gtFine" / "val" / "aachen" / f"{stem}_gtFine_{name}.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(label.astype(np.uint8)).save(path)
    for number in range(17, 20):
        write_frame(root / "leftImg8bit_sequence" / "val" / "aachen" / f"aachen_000001_{number:06d}_leftImg8bit.png",
                    (16, 32), (number, 1, 7))  # fmt: skip


def _data(root, dataset: str):
    from bench.config import DataConfig

    return DataConfig(dataset=dataset, root=str(root), crop_size=[16, 16], base_size=[], cat_max_ratio=1.0)


def test_cityscapes_train_ids_under_label_id_names_stop_with_what_they_look_like(tmp_path):
    train_ids = np.zeros((16, 32))
    train_ids[:, 8:16], train_ids[:, 16:24], train_ids[:, 24:] = 2, 10, 13  # road, building, sky, car
    _cityscapes(tmp_path / "a", train_ids)
    with pytest.raises(DatasetError, match="looks like trainIds saved under a") as info:
        build_dataset(_data(tmp_path / "a", "cityscapes"), "val", 2, train=False)
    assert "75% of its pixels would map to ignore" in str(info.value) and "labelTrainIds.png" in str(info.value)
    # the same values under their own name, and real labelIds, are fine
    _cityscapes(tmp_path / "b", train_ids, name="labelTrainIds")
    assert len(build_dataset(_data(tmp_path / "b", "cityscapes"), "val", 2, train=False)) == 1
    label_ids = np.zeros((16, 32))
    label_ids[:, :8], label_ids[:, 8:16], label_ids[:, 16:] = 7, 11, 26
    _cityscapes(tmp_path / "c", label_ids)
    assert len(build_dataset(_data(tmp_path / "c", "cityscapes"), "val", 2, train=False)) == 1


def test_a_16_bit_camvid_frame_stops_instead_of_turning_white(tmp_path):
    root = tmp_path / "camvid"
    (root / "splits").mkdir(parents=True)
    (root / "splits" / "val.txt").write_text("0016E5_07959\n")
    label = np.zeros((16, 32), dtype=np.uint8)
    (root / "labels").mkdir()
    Image.fromarray(label).save(root / "labels" / "0016E5_07959.png")
    for number in range(7955, 7960):
        path = root / "frames" / "0016E5" / f"0016E5_{number:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 32), 40000, dtype=np.uint16)).save(path)  # a 16-bit grey frame
    with pytest.raises(DatasetError, match="16-bit single-channel image") as info:
        build_dataset(_data(root, "camvid"), "val", 2, train=False)
    assert "8-bit RGB" in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------
# the loss: a folder that is not a run of this suite is refused; log.jsonl never loses a line


@pytest.mark.parametrize(
    "files", [{"config.yaml": "my notes, not a config\n"}, {"notes.txt": "keep me"}, {"log.jsonl": "not json\n"}]
)
def test_a_folder_that_is_not_a_run_is_refused_and_left_as_it_was(tmp_path, capsys, files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert main(["train", *TRAIN, f"run_dir={tmp_path}"]) == 2
    one_line_error(capsys, "is not a run folder of bench", "nothing in it was changed")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
    assert all((tmp_path / name).read_text() == text for name, text in files.items())


def test_a_resumed_log_keeps_every_line_it_does_not_redo(tmp_path):
    from bench.engine.train_log import truncate_log

    log = tmp_path / "log.jsonl"
    lines = ['{"iter": 1, "loss": 1.0}', "a note someone wrote", '{"iter": 2, "loss": 0.9}', '{"iter": 3, "loss": 0.8}']
    log.write_text("\n".join(lines) + "\n" + '{"iter": 4, "lo')  # cut short by a kill
    truncate_log(log, iteration=2)
    assert log.read_text().splitlines() == lines[:3] + ['{"iter": 4, "lo']


# --------------------------------------------------------------------------------------------------
# the escape: --out naming a folder means inside it


@pytest.mark.parametrize("slash", [True, False])
def test_out_naming_a_folder_writes_inside_it(checkpoints, tmp_path, capsys, slash):
    out = tmp_path / "figs"
    out.mkdir()
    beside = tmp_path / "figs.png"
    beside.write_bytes(b"keep")
    target = f"{out}/" if slash else str(out)
    assert main(["curves", str(checkpoints / "seed0"), "--out", target]) == 0
    assert (out / "curves.png").is_file() and beside.read_bytes() == b"keep"
    assert main(["preview", *as_overrides(TINY), "--out", target, "--clips", "1"]) == 0
    assert (out / "clips.png").is_file() and beside.read_bytes() == b"keep"
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out / "clips.png")


# --------------------------------------------------------------------------------------------------
# the tracebacks: one line each


@pytest.mark.parametrize(
    "model, key, values", [("tmanet", "model.window_size", [3, 5]), ("per_frame", "model.memory_length", [1, 2])]
)
def test_a_grid_over_a_key_the_model_does_not_take_is_refused_when_expanded(write_spec, capsys, model, key, values):
    spec = write_spec(grid=[{"product": {key: values}}], overrides={"model.name": model})
    with pytest.raises(SweepError, match=f"give the same run .*{model} does not take {key}"):
        build_grid(spec)
    assert main(["report", str(spec)]) == 2
    one_line_error(capsys, f"grid[0].product.{key}")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["latency", "--frames", "0"], "argument --frames: must be at least 1, got 0"),
        (["latency", "--repeats", "0"], "argument --repeats: must be at least 1, got 0"),
        (["preview", "--clips", "0"], "argument --clips: must be at least 1, got 0"),
    ],
)
def test_counts_below_one_are_a_one_line_usage_error(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    one_line_error(capsys, message, "--help")


@pytest.mark.parametrize("content", ["text", "dict"])
def test_pretrained_path_to_a_file_without_weights_is_one_line(tmp_path, capsys, content):
    path = tmp_path / "weights.pth"
    if content == "text":
        path.write_text("these are not weights\n")
    else:
        torch.save({"epoch": 3, "note": "an unrelated dict"}, path)
    run = ["train", *TRAIN, "model.pretrained=true", f"model.pretrained_path={path}", f"run_dir={tmp_path / 'r'}"]
    assert main(run) == 2
    one_line_error(capsys, "model.pretrained_path", str(path))


def test_pretrained_false_with_a_path_is_an_error(capsys, tmp_path):
    assert main(["config", *TRAIN, f"model.pretrained_path={tmp_path / 'w.pth'}"]) == 2
    one_line_error(capsys, "model.pretrained is false", "model.pretrained=true")


def test_a_plugin_that_calls_sys_exit_at_import_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "exiting_plugin.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # a built-in model never imports a plugin: the plugin's own model name makes the config import it
    assert main(["config", *TRAIN, "plugins=[exiting_plugin]", "model.name=exiting_model"]) == 2
    one_line_error(capsys, "exiting_plugin", "sys.exit(3)")


def test_an_empty_config_file_is_an_error(tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    assert main(["config", str(tmp_path / "empty.yaml")]) == 2
    one_line_error(capsys, "is empty", "give no config file")

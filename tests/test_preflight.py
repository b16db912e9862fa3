"""Preflight: before a grid starts (local or SLURM, a dry run, `bench sweep --check`), every distinct data root,
split list, weights file and device its runs need is checked once, and each missing piece is named with what to
download and where to put it; nothing starts. A local sweep whose first runs all fail with the same user error
starts no more; the error line keeps its advice. `bench paper` names every file a table needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import TINY, write_frame
from PIL import Image

from bench.cli import main
from bench.data import DatasetError, build_dataset
from bench.grid import forked
from bench.grid.spec import build_grid
from bench.run.reads import error_payload

REPO = Path(__file__).resolve().parent.parent
CITYSCAPES_DOWNLOAD = "download gtFine_trainvaltest.zip and leftImg8bit_sequence_trainvaltest.zip (on request)"


def _spec(tmp_path: Path, grid: list, **overrides) -> Path:
    spec = {
        "name": "pre",
        "ablation": "other",
        "base": str(REPO / "configs" / "synthetic_tmanet.yaml"),
        "overrides": {**TINY, "output_root": str(tmp_path / "out" / "runs"), "train.iters": 1, **overrides},
        "grid": grid,
        "seeds": [0, 1],
    }
    path = tmp_path / "pre.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _cityscapes(root: Path, memory_frames: bool = True) -> Path:
    """gtFine train and val, one annotated frame each, with its two previous frames (or without them)."""
    for split, city in (("train", "aachen"), ("val", "bremen")):
        stem = f"{city}_000001_000019"
        label = root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"
        label.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 32), 7, dtype=np.uint8)).save(label)
        for number in range(17 if memory_frames else 19, 20):
            name = f"{city}_000001_{number:06d}_leftImg8bit.png"
            write_frame(root / "leftImg8bit_sequence" / split / city / name, (16, 32), (number, 1, 7))
    return root


CITYSCAPES = {"data.dataset": "cityscapes", "data.base_size": [16, 32], "data.crop_size": [16, 16]}


def test_a_sweep_without_its_data_or_weights_starts_nothing_and_says_what_to_download(tmp_path, capsys):
    spec = _spec(
        tmp_path,
        [{"zip": {"model.name": ["tmanet", "flow_warp"], "model.flow.source": ["ground_truth", "raft"]}}],
        **CITYSCAPES,
        **{"data.root": str(tmp_path / "cityscapes"), "model.flow.weights": str(tmp_path / "raft.pth")},
    )
    assert main(["sweep", str(spec), "--launcher", "local"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: preflight: 2 missing (nothing was started;")
    root = f"MISSING: data.root: Cityscapes root folder {tmp_path / 'cityscapes'}; {CITYSCAPES_DOWNLOAD}"
    assert (
        f"{root} from https://www.cityscapes-dataset.com and unzip both into {tmp_path / 'cityscapes'} [4 runs]" in err
    )
    raft = f"MISSING: model.flow.weights: RAFT-small weights {tmp_path / 'raft.pth'}; download https://download."
    assert raft in err and "[2 runs]" in err and err.count("MISSING") == 2  # each missing piece once
    assert not (tmp_path / "out" / "runs").exists() and not (tmp_path / "out" / "sweeps" / "pre").exists()

    assert main(["sweep", str(spec), "--dry-run"]) == 2  # a dry run names them too
    assert "the sweep would stop here" in capsys.readouterr().err


def test_check_builds_every_index_once_and_names_a_missing_memory_frame(tmp_path, capsys):
    root = _cityscapes(tmp_path / "cityscapes", memory_frames=False)
    spec = _spec(tmp_path, [{"product": {"model.memory_length": [1, 2]}}], **CITYSCAPES, **{"data.root": str(root)})
    assert main(["sweep", str(spec), "--check"]) == 2
    out = capsys.readouterr().out
    assert f"ok: data.root: Cityscapes root folder {root}" in out and "ok: data.root: Cityscapes val labels" in out
    missing = [line for line in out.splitlines() if "MISSING" in line]
    assert len(missing) == 4  # train and val at T = 1 and T = 2: each index built once, each failure named once
    assert "memory frame" in missing[0] and "[2 runs]" in missing[0]

    _cityscapes(root)  # the memory frames arrive
    assert main(["sweep", str(spec), "--check"]) == 0
    assert "MISSING" not in capsys.readouterr().out


def test_devices_are_checked_where_the_runs_go(tmp_path, capsys):
    spec = _spec(tmp_path, [{"product": {"model.name": ["per_frame"]}}], device="cuda:7")
    assert main(["sweep", str(spec), "--check"]) == 2
    assert "MISSING: device=cuda:7: this machine has" in capsys.readouterr().out
    assert main(["sweep", str(spec), "--dry-run", "--launcher", "slurm"]) == 2
    assert "device=cuda:7 but launch.gpus_per_node=0: the SLURM jobs get no GPU" in capsys.readouterr().err


def test_a_synthetic_grid_needs_nothing(tmp_path, capsys):
    spec = _spec(tmp_path, [{"product": {"model.name": ["per_frame"]}}])
    assert main(["sweep", str(spec), "--check"]) == 0
    assert "nothing to read: no dataset folder or weights file" in capsys.readouterr().out


def test_a_released_checkpoint_is_checked_before_its_runs_start(tmp_path, capsys):
    checkpoint = tmp_path / "weights" / "pspnet.pth"
    spec = _spec(tmp_path, [{"product": {"model.name": ["pspnet"]}}], **{"model.checkpoint": str(checkpoint)})
    assert main(["sweep", str(spec), "--check"]) == 2
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert f"MISSING: model.checkpoint: checkpoint loaded into the model {checkpoint}; download the released" in err
    assert "[2 runs]" in err and err.count("MISSING") == 1 and not (tmp_path / "out" / "runs").exists()


def test_the_error_line_keeps_what_to_download(tmp_path):
    settings = {**CITYSCAPES, "data.root": str(tmp_path / "nowhere")}
    data = build_grid(_spec(tmp_path, [{"product": {"model.name": ["per_frame"]}}], **settings)).runs[0].config.data
    with pytest.raises(DatasetError) as caught:
        build_dataset(data, "val", 0, train=False)
    last = error_payload(caught.value, None)["last_line"]
    assert len(last) <= 400 and "DatasetError: Cityscapes root folder not found (set data.root)" in last
    assert last.endswith("from https://www.cityscapes-dataset.com and unzip both into {root}.")


FAKE_RUN = """
import json, sys, pathlib
run = pathlib.Path(sys.argv[-1])
error = {"error": "DatasetError", "user_error": True, "message": "no data", "last_line": "DatasetError: no data"}
(run / "error.json").write_text(json.dumps(error))
sys.exit(1)
"""


def test_a_local_sweep_stops_when_its_first_runs_fail_alike(tmp_path, monkeypatch, capsys):
    """Each run fails at once with the same user error (a stand-in for the executor): two fail, no third starts."""
    spec = _spec(tmp_path, [{"product": {"model.memory_length": [1, 2, 3]}}])
    script = tmp_path / "fake_run.py"
    script.write_text(FAKE_RUN)
    popen = subprocess.Popen
    started = []

    def fake(command, **kwargs):  # python -m bench.run.execute RUN_DIR [flags]
        started.append(command[3])
        return popen([sys.executable, str(script), command[3]], **kwargs)

    monkeypatch.setenv("BENCH_LOCAL_START", "subprocess")  # runs as subprocesses (not forked): the stand-in applies
    monkeypatch.setattr(forked.subprocess, "Popen", fake)
    assert main(["sweep", str(spec), "--launcher", "local", "--no-check"]) == 1
    out = "".join(capsys.readouterr())  # state lines go to stderr (bench.progress)
    assert (
        len(started) == 2 and "stopping: the first 2 runs all failed with the same error (DatasetError: no data)" in out
    )
    assert "the other 4 runs are not started" in out


def test_bench_paper_names_every_file_a_table_needs(capsys):
    assert main(["paper", "sota", "--json"]) == 0
    (table,) = json.loads(capsys.readouterr().out)
    by_spec = {spec["spec"]: spec["needs"] for spec in table["specs"] + table["synthetic"]}
    cityscapes = {(n["key"], n["path"]) for n in by_spec["ablations/cityscapes_sota.yaml"]}
    assert {("data.root", "data/cityscapes"), ("data.root", "data/cityscapes/gtFine/val")} <= cityscapes
    assert ("model.flow.weights", "data/weights/raft_small_C_T_V2-01064c6d.pth") in cityscapes
    assert ("model.pretrained", "resnet50c") in cityscapes
    assert ("data.root", "data/camvid/splits/test.txt") in {
        (n["key"], n["path"]) for n in by_spec["ablations/camvid_sota.yaml"]
    }
    assert by_spec["ablations/synthetic_sota.yaml"] == []
    assert main(["paper", "sota"]) == 0
    assert "    needs (every file its runs read):" in capsys.readouterr().out


def test_every_dataset_names_its_split_lists(tmp_path):
    """VSPW too: its split list and video folder, with where to download the 480p release."""
    from bench.config import load_config
    from bench.data.needs import dataset_needs

    data = load_config(None, ["data.dataset=vspw", f"data.root={tmp_path / 'VSPW_480p'}"]).data
    needs = {need.path: need for need in dataset_needs(data, "val", 3)}
    root = tmp_path / "VSPW_480p"
    assert set(needs) == {str(root), str(root / "val.txt"), str(root / "data")}
    assert all("bench prepare-vspw" in need.hint and not need.present() for need in needs.values())

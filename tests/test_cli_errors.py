"""Bad input through the real ``bench`` entry point: one line on stderr, ``bench: `` first, exit code 2, no
traceback (issue 12). Valid input that used to be refused is accepted.

Add a case with one ``Case(...)`` row: ``args`` are the CLI arguments (``{tmp}`` becomes the test's tmp_path),
``files`` are written under tmp_path first (str as UTF-8, bytes as is), ``expect`` is a fragment of the error
line (or, in ACCEPTED, of stdout).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, as_overrides
from PIL import Image

from bench.cli import main

SPEC = "name: g\nbase: {base}\ngrid:\n  - product: {{model.memory_length: [1]}}\n"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    expect: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    skip: str = ""  # a reason to skip the row on this machine


def _torch_file(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _cityscapes_with_label(value: int) -> dict[str, str | bytes]:
    """One annotated Cityscapes frame (aachen_000001_000019) whose labelIds file holds ``value`` at one pixel."""
    label = np.zeros((16, 32), dtype=np.uint8)
    label[0, 0] = value
    frames = {
        f"cs/leftImg8bit_sequence/val/aachen/aachen_000001_{n:06d}_leftImg8bit.png": _png(
            np.zeros((16, 32, 3), dtype=np.uint8)
        )
        for n in (18, 19)
    }
    return {"cs/gtFine/val/aachen/aachen_000001_000019_gtFine_labelIds.png": _png(label), **frames}


REPORT_STRICT = ("report", "{tmp}/runs", "--strict", "--out", "{tmp}/r")
NO_CUDA = "" if not torch.cuda.is_available() else "CUDA is available here, so device=cuda is valid"

ERRORS = [
    # YAML
    Case(
        "malformed yaml",
        ("config", "{tmp}/c.yaml"),
        "c.yaml, line 2, column 1: not valid YAML",
        {"c.yaml": "train: [1\n"},
    ),
    Case(
        "bad indentation",
        ("config", "{tmp}/c.yaml"),
        "c.yaml, line 3, column 2: not valid YAML",
        {"c.yaml": "train:\n  lr: 0.1\n iters: 3\n"},
    ),
    Case(
        "malformed base of a config",
        ("config", "{tmp}/c.yaml"),
        "p.yaml, line 2, column 1: not valid YAML",
        {"c.yaml": "base: p.yaml\n", "p.yaml": "train: {lr: 0.1\n"},
    ),
    Case(
        "malformed grid spec",
        ("sweep", "{tmp}/g.yaml", "--dry-run"),
        "g.yaml, line 2, column 1: not valid YAML",
        {"g.yaml": "grid: [\n"},
    ),
    Case(
        "malformed base of a grid spec",
        ("sweep", "{tmp}/g.yaml", "--dry-run"),
        "p.yaml, line 3, column 3: not valid YAML",
        {"g.yaml": SPEC.format(base="p.yaml"), "p.yaml": "train:\n  lr: 0.1\n  - 3\n"},
    ),
    Case(
        "not utf-8",
        ("config", "{tmp}/c.yaml"),
        "c.yaml, line 2: byte 0xe9 is not UTF-8 text; save the file as UTF-8",
        {"c.yaml": b"train: {lr: 0.1}\nname: caf\xe9\n"},
    ),
    Case(
        "python tag",
        ("config", "{tmp}/c.yaml"),
        "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:builtins.dict'; only plain",
        {"c.yaml": "model:\n  options: !!python/object:builtins.dict {}\n"},
    ),
    Case("python tag in an override", ("config", "train.lr=!!python/name:os.system"), "override 'train.lr=!!python"),
    Case(
        "base is a list",
        ("config", "{tmp}/c.yaml"),
        "c.yaml: base must be one file name relative to this file",
        {"c.yaml": "base: [a.yaml, b.yaml]\n"},
    ),
    Case("base not found", ("config", "{tmp}/c.yaml"), "c.yaml: base file not found:", {"c.yaml": "base: nope.yaml\n"}),
    Case(
        "grid spec base is a list",
        ("sweep", "{tmp}/g.yaml", "--dry-run"),
        "g.yaml: 'base' must name the one config",
        {"g.yaml": SPEC.format(base="[a.yaml]")},
    ),
    Case(
        "duplicate key",
        ("config", "{tmp}/c.yaml"),
        "c.yaml, line 3, column 3: key 'lr' appears twice (first at line 2)",
        {"c.yaml": "train:\n  lr: 0.1\n  lr: 0.2\n"},
    ),
    Case(
        "duplicate top-level key",
        ("config", "{tmp}/c.yaml"),
        "key 'train' appears twice",
        {"c.yaml": "train: {lr: 0.1}\nmodel: {}\ntrain: {iters: 3}\n"},
    ),
    Case(
        "duplicate key in a base",
        ("config", "{tmp}/c.yaml"),
        "p.yaml, line 2, column 1: key 'name' appears twice",
        {"c.yaml": "base: p.yaml\n", "p.yaml": "name: a\nname: b\n"},
    ),
    Case("duplicate key in an override", ("config", "model.options={a: 1, a: 2}"), "key 'a' appears twice"),
    Case(
        "duplicate key in a grid spec",
        ("sweep", "{tmp}/g.yaml", "--dry-run"),
        "g.yaml, line 5, column 1: key 'name'",
        {"g.yaml": SPEC.format(base="p.yaml") + "name: h\n", "p.yaml": "name: p\n"},
    ),
    Case(
        "duplicate key in a grid axis",
        ("sweep", "{tmp}/g.yaml", "--dry-run"),
        "key 'model.memory_length' appears",
        {
            "g.yaml": "base: p.yaml\ngrid:\n  - product: {model.memory_length: [1], model.memory_length: [2]}\n",
            "p.yaml": "name: p\n",
        },
    ),
    # numbers
    Case(
        "real string for a float",
        ("config", "train.lr=fast"),
        "train.lr: expected a number (e.g. 0.01 or 1e-3), got 'fast'",
    ),
    Case("nan override", ("config", "train.lr=.nan"), "train.lr: must be a finite number, got nan"),
    Case("inf override", ("config", "train.lr=.inf"), "train.lr: must be a finite number, got inf"),
    Case("inf string", ("config", "train.momentum=inf"), "train.momentum: must be a finite number, got 'inf'"),
    Case(
        "nan in a file",
        ("config", "{tmp}/c.yaml"),
        "train.weight_decay: must be a finite number, got nan",
        {"c.yaml": "train: {weight_decay: .NaN}\n"},
    ),
    Case("nan in a float list", ("config", "data.scale_range=[0.5, .inf]"), "data.scale_range[1]: must be a finite"),
    # values that used to fail at run time
    Case("unknown device", ("config", "device=gpu7"), "device: invalid value 'gpu7'; valid: auto, cpu, cuda, cuda:N"),
    Case(
        "no cuda here",
        ("config", "device=cuda"),
        "device=cuda: CUDA is not available here; use device=cpu or device=auto",
        skip=NO_CUDA,
    ),
    Case("cuda index too high", ("config", "device=cuda:99"), "device=cuda:99: "),
    Case("zero crop", ("config", "data.crop_size=[0,0]"), "data.crop_size: sizes must be positive, got [0, 0]"),
    Case("zero synthetic size", ("config", "data.synthetic.size=[0,0]"), "data.synthetic.size: sizes must be positive"),
    Case("zero eval crop", ("config", "eval.crop_size=[0,769]"), "eval.crop_size: sizes must be positive"),
    Case("negative eval stride", ("config", "eval.stride=[-1,513]"), "eval.stride: sizes must be positive"),
    Case(
        "fewer clips than a batch",
        ("train", "data.synthetic.train_clips=4", "train.batch_size=8", "device=cpu"),
        "data.synthetic.train_clips=4 is fewer than one batch (train.batch_size=8)",
    ),
    Case(
        "clips too short for the memory",
        ("train", "data.synthetic.clip_length=3", "model.memory_length=4", "device=cpu"),
        "data.synthetic.clip_length=3 is too short for model.memory_length=4: a sample needs memory_length + 1 = 5",
    ),
    # bench report: foreign records with --strict (without it they are skipped with a warning), --out, overrides
    Case(
        "report: record is a list",
        REPORT_STRICT,
        "runs/a/record.json holds a JSON array, not a record",
        {"runs/a/record.json": "[1, 2]"},
    ),
    Case(
        "report: record is null",
        REPORT_STRICT,
        "runs/a/record.json holds null, not a record",
        {"runs/a/record.json": "null"},
    ),
    Case(
        "report: miou is a word",
        REPORT_STRICT,
        "runs/a/record.json: metrics.miou must be a finite number in [0, 1], got 'high'",
        {"runs/a/record.json": '{"status": "done", "metrics": {"miou": "high"}}'},
    ),
    Case(
        "report: half-written record",
        REPORT_STRICT,
        "runs/a/record.json is unreadable (not valid JSON: ",
        {"runs/a/record.json": '{"status": "do'},
    ),
    Case(
        "report: status only",
        REPORT_STRICT,
        "runs/a/record.json: metrics must be an object holding miou, got None",
        {"runs/a/record.json": '{"status": "done"}'},
    ),
    Case(
        "report: --out is a file",
        ("report", "{tmp}", "--out", "{tmp}/out.txt"),
        "out.txt is a file, not a folder; pass a new or existing folder instead",
        {"out.txt": "x"},
    ),
    Case("report: no such source", ("report", "{tmp}/nope", "--out", "{tmp}/r"), "nope: no such file or folder"),
    Case(
        "report: overrides without a spec",
        ("report", "{tmp}", "train.iters=10", "--out", "{tmp}/r"),
        "overrides train.iters=10 apply to grid specs only",
    ),
    Case(
        "report: overrides reach the spec",
        ("report", "{tmp}/g.yaml", "--out", "{tmp}/r", "train.iterz=10"),
        "unknown key train.iterz",
        {"g.yaml": SPEC.format(base="p.yaml"), "p.yaml": "name: p\n"},
    ),
    Case(
        "sweep: overrides after --launcher",
        ("sweep", "{tmp}/g.yaml", "--launcher", "local", "--dry-run", "train.iterz=5"),
        "unknown key train.iterz",
        {"g.yaml": SPEC.format(base="p.yaml"), "p.yaml": "name: p\n"},
    ),
    # foreign checkpoints, a truncated record, label values
    Case(
        "eval: checkpoint is a bare tensor",
        ("eval", "checkpoint={tmp}/foreign.pt"),
        "foreign.pt holds a Tensor, not a state dict or a checkpoint; give a file written by",
        {"foreign.pt": _torch_file(torch.zeros(3))},
    ),
    Case(
        "eval: checkpoint without model",
        ("eval", "checkpoint={tmp}/foreign.pt"),
        "foreign.pt holds no weights (no tensors; its keys: epoch, weights); give a model checkpoint",
        {"foreign.pt": _torch_file({"weights": [1.0], "epoch": 3})},
    ),
    Case(
        "eval: weights of another model",
        ("eval", "checkpoint={tmp}/run/checkpoint.pt"),
        "run/checkpoint.pt holds another model than TMANet: modules w only in the file",
        {"run/checkpoint.pt": _torch_file({"model": {"w": torch.zeros(1)}}), "run/config.yaml": "name: other\n"},
    ),
    Case(
        "train: truncated record.json",
        ("train", "run_dir={tmp}/run", *as_overrides(TINY)),
        "run/record.json is unreadable",
        {"run/record.json": '{"status": "do'},
    ),
    Case(
        "cityscapes labelId out of range",
        (
            "preview",
            "data.dataset=cityscapes",
            "data.root={tmp}/cs",
            "model.memory_length=1",
            "--out",
            "{tmp}/p.png",
            "--clips",
            "1",
        ),
        "holds invalid values [40]; a *_gtFine_labelIds.png holds Cityscapes labelIds 0..33",
        _cityscapes_with_label(40),
    ),
]

ACCEPTED = [
    Case("scientific lr override", ("config", "train.lr=1e-3"), "lr: 0.001,"),
    Case("scientific override without sign", ("config", "train.min_lr=1e6"), "min_lr: 1000000.0"),
    Case("scientific lr in a file", ("config", "{tmp}/c.yaml"), "lr: 1.0e-05,", {"c.yaml": "train: {lr: 1e-5}\n"}),
    Case(
        "clip just long enough (TC skipped)",
        ("config", "data.synthetic.clip_length=3", "model.memory_length=2"),
        "clip_length: 3",
    ),
    Case(
        "merge key may be overridden",
        ("config", "{tmp}/c.yaml"),
        "iters: 7,",
        {"c.yaml": "launch: {sbatch_extra: {x: &t {iters: 3, lr: 0.1}}}\ntrain:\n  <<: *t\n  iters: 7\n"},
    ),
    Case(
        "sweep overrides after options",
        ("sweep", "{tmp}/g.yaml", "--dry-run", "--launcher", "local", "train.iters=5"),
        "launcher local",
        {"g.yaml": SPEC.format(base="p.yaml"), "p.yaml": "name: p\n"},
    ),
    Case(
        "status overrides",
        ("status", "{tmp}/g.yaml", "train.iters=5"),
        "sweep g: 1 runs",
        {"g.yaml": SPEC.format(base="p.yaml"), "p.yaml": "name: p\n"},
    ),
]


def _run(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    if case.skip:
        pytest.skip(case.skip)
    for name, content in case.files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    code = main([arg.replace("{tmp}", str(tmp_path)) for arg in case.args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_bad_input_is_one_line_with_exit_code_2(case, tmp_path, capsys):
    code, out, err = _run(case, tmp_path, capsys)
    assert code == 2, out
    assert err.startswith("bench: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert case.expect in err


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.id for c in ACCEPTED])
def test_valid_input_is_accepted(case, tmp_path, capsys):
    code, out, err = _run(case, tmp_path, capsys)
    assert (code, err) == (0, "")
    assert case.expect in out


# what torch.save's zip writer raises on a full disk (it never sees ENOSPC itself), and the plain OS error
FULL_DISK = [
    RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 4425984 vs 4425872"),
    OSError(28, "No space left on device"),
]


@pytest.mark.parametrize("error", FULL_DISK, ids=["zip writer", "ENOSPC"])
def test_full_disk_while_saving_a_checkpoint(error, tmp_path, monkeypatch, capsys):
    """The first checkpoint is saved, the second hits a full disk: one line naming the folder, the first intact."""
    real_save, calls = torch.save, []

    def save(obj, handle, *args, **kwargs):
        calls.append(obj.get("iteration"))
        if len(calls) > 1:
            handle.write(b"partial")
            raise error
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    run = tmp_path / "run"
    code = main(["train", f"run_dir={run}", *as_overrides({**TINY, "train.iters": 2, "train.checkpoint_every": 1})])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert (
        f"bench: CheckpointError: no disk space left to save checkpoint.pt in {run}; the previous checkpoint "
        f"there is intact: free space (df -h {run})" in err
    )
    monkeypatch.undo()
    assert calls == [1, 2] and torch.load(run / "checkpoint.pt", weights_only=True)["iteration"] == 1
    assert not list(run.glob(".checkpoint.pt.*"))  # the partial temporary file is removed

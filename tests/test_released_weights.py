"""``model.checkpoint``: released weights as evaluation weights (``train.iters=0``, ``bench eval --checkpoint``)
and as initialisation, through the one model-loading path (bench/run/model.py); the record names the file by its
SHA-256; a run made from them no longer needs the file; a file that does not fit is one line naming the cause."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_builder

from bench.cli import main
from bench.config import load_config
from bench.distributed import init_distributed
from bench.evaluation.evaluate import build_eval_dataset, evaluate_model
from bench.run.eval_run import evaluate_command, evaluate_released
from bench.run.execute import train_command
from bench.run.identity import RunIdentity
from bench.run.model import build_model
from bench.weights import WeightsMismatchError, mmseg_checkpoint, sha256_of

SETTINGS = {"model.memory_length": 2, "eval.temporal_consistency": False, "train.batch_size": 2}
config = tiny_builder(SETTINGS, "output_root")


def released(tmp_path, seed: int = 0, **overrides: str):
    """An mmseg-layout file of a tiny TMANet with random weights: (path, the source model)."""
    cfg = config(tmp_path, *(f"{k}={v}" for k, v in overrides.items()))
    torch.manual_seed(seed)
    source = build_model(cfg).eval()
    with torch.no_grad():
        for tensor in source.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor) * 0.05)
    path = tmp_path / "released.pth"
    torch.save(mmseg_checkpoint(source.state_dict(), [f"c{i}" for i in range(20)][: _classes(source)], False), path)
    return path, source


def _classes(model) -> int:
    return int(model.state_dict()["classifier.1.weight"].shape[0])


def test_released_weights_are_evaluated_as_they_are_in_a_run_of_their_own(tmp_path, capsys):
    path, source = released(tmp_path)
    overrides = [f"output_root={tmp_path / 'runs'}", *_tiny_overrides()]
    assert main(["eval", "--checkpoint", str(path), *overrides]) == 0  # = evaluate_released(path, overrides)
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "done" and "per_image" not in shown["metrics"]
    weights = shown["weights"]
    assert weights["sha256"] == sha256_of(path) and weights["layout"].startswith("official TMANet (mmseg layout)")
    record = evaluate_released(path, overrides)  # the finished run is reused, not evaluated again
    assert record["iters"] == 0 and record["config"]["model"]["checkpoint"] == str(path)
    assert record["run_id"] == shown["run_id"] and record["metrics"]["miou"] == shown["metrics"]["miou"]
    cfg = load_config(None, overrides)
    model = build_model(cfg, initial_weights=False)
    model.load_state_dict(source.state_dict())
    dataset, _, _ = build_eval_dataset(cfg.data, cfg.eval, model)
    expected = evaluate_model(model.eval(), dataset, cfg.eval, init_distributed("cpu"), num_workers=0)
    assert record["metrics"]["miou"] == pytest.approx(expected["miou"], abs=1e-12)
    path.unlink()  # the run holds the weights now: bench eval of the run needs no released file
    again = evaluate_command(run_dir=tmp_path / "runs" / record["run_id"])
    assert again["miou"] == pytest.approx(expected["miou"], abs=1e-12)


def _tiny_overrides() -> list[str]:
    from helpers import TINY, as_overrides

    return as_overrides({**TINY, **SETTINGS})


def test_the_checkpoint_is_part_of_the_run_identity(tmp_path):
    plain = RunIdentity.of(config(tmp_path))
    loaded = RunIdentity.of(config(tmp_path, "model.checkpoint=/w/a.pth"))
    other = RunIdentity.of(config(tmp_path, "model.checkpoint=/w/b.pth"))
    assert len({plain.run_id, loaded.run_id, other.run_id}) == 3
    assert "checkpoint" not in plain.full["model"].get("weights", {})


def test_released_weights_initialise_training(tmp_path):
    path, source = released(tmp_path, seed=1)
    cfg = config(tmp_path, f"model.checkpoint={path}", "train.iters=1", "train.lr=0", "train.min_lr=0")
    record = train_command(cfg)
    trained = torch.load(record["checkpoint"], weights_only=True)["model"]
    for key, value in source.state_dict().items():  # lr 0: every weight is still the released one
        if key.endswith(".weight") and value.dim() == 4:
            assert torch.equal(trained[key], value), key


def test_weights_that_do_not_fit_the_config_fail_in_one_line(tmp_path, capsys):
    path, _ = released(tmp_path)
    with pytest.raises(WeightsMismatchError, match="a T = 2 checkpoint in a T = 4 model; set model.memory_length=2"):
        train_command(config(tmp_path, f"model.checkpoint={path}", "model.memory_length=4", "train.iters=0"))
    code = main(["eval", "--checkpoint", str(path), *_tiny_overrides(), f"output_root={tmp_path / 'r'}",
                 "model.memory_length=3"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("bench: WeightsMismatchError: ") and "T = 2 checkpoint" in err[-1]
    assert main(["eval", "--checkpoint", str(tmp_path / "absent.pth"), *_tiny_overrides(),
                 f"output_root={tmp_path / 'runs'}"]) == 2  # fmt: skip
    assert "absent.pth does not exist" in capsys.readouterr().err

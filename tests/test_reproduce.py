"""``bench reproduce SPEC``: released checkpoints evaluated where present (single-scale and ms+flip runs of their
own), a missing file and one with another hash named with what to do, and the published-vs-reproduced table with
an image-bootstrap CI; ``bench export RUN --format mmseg`` writes a file the suite (and mmseg) read back."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml
from helpers import TINY, as_overrides

from bench.cli import main
from bench.config import load_config
from bench.grid.released import load_released_spec
from bench.grid.spec import SweepError
from bench.report.stats import counts_from_record, image_bootstrap_ci, run_miou
from bench.run.model import build_model, load_run_model
from bench.run.rundir import RunDir
from bench.weights import load_weights, mmseg_checkpoint, read_checkpoint, sha256_of

BASE = {**TINY, "model.name": "pspnet", "eval.temporal_consistency": False, "eval.max_images": 2}


def _write_spec(tmp_path, checkpoints: list[dict]) -> str:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"output_root": str(tmp_path / "runs")}))
    spec = {"name": "tiny_released", "base": "base.yaml", "weights_dir": "weights", "overrides": BASE,
            "checkpoints": checkpoints}  # fmt: skip
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return str(tmp_path / "spec.yaml")


def _release(name: str, file: str, sha: str, published=(55.0, 56.0)) -> dict:
    return {
        "name": name, "url": f"https://example.org/{file}", "file": file, "sha256": sha, "overrides": {},
        "published": [{"miou": published[0], "protocol": "single-scale", "source": "a metafile"},
                      {"miou": published[1], "protocol": "ms+flip", "source": "a metafile"}],
    }  # fmt: skip


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("reproduce")
    (tmp_path / "weights").mkdir()
    torch.manual_seed(0)
    model = build_model(load_config(None, as_overrides(BASE)))
    path = tmp_path / "weights" / "psp.pth"
    torch.save(mmseg_checkpoint(model.state_dict(), [f"c{i}" for i in range(_classes(model))], False), path)
    (tmp_path / "weights" / "other.pth").write_bytes(path.read_bytes()[:-1] + b"x")  # another file, same name
    spec = _write_spec(
        tmp_path,
        [_release("psp", "psp.pth", sha256_of(path)[:8]), _release("gone", "gone.pth", "abcd1234"),
         _release("changed", "other.pth", sha256_of(path)[:8])],
    )  # fmt: skip
    code = main(["reproduce", spec, "--out", str(tmp_path / "reports")])
    return tmp_path, spec, code


def _classes(model) -> int:
    return int(model.state_dict()["classifier.1.weight"].shape[0])


def test_present_checkpoints_are_evaluated_once_per_protocol_and_missing_ones_say_what_to_do(reproduced, capsys):
    tmp_path, spec, code = reproduced
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "reports" / "tables" / "tiny_released.csv").open()))
    assert [(r["checkpoint"], r["protocol"]) for r in rows] == [
        ("psp", "single-scale"), ("psp", "ms+flip"), ("gone", "single-scale"), ("gone", "ms+flip"),
        ("changed", "single-scale"), ("changed", "ms+flip"),
    ]  # fmt: skip
    done = rows[:2]
    assert done[0]["run_id"] != done[1]["run_id"] and all(r["sha256"] for r in done)
    records = [RunDir(tmp_path / "runs" / r["run_id"]).read_record().record for r in done]
    assert records[0]["metrics"]["protocol"] == "whole, single-scale"
    assert records[1]["metrics"]["protocol"] == "whole, ms+flip (0.5-1.75)"
    for row, record in zip(done, records):  # the table's numbers are the record's, the CI an image bootstrap
        counts = counts_from_record(record)
        assert float(row["reproduced"]) == pytest.approx(100 * run_miou(counts), abs=1e-4)
        low, high = image_bootstrap_ci(counts)
        assert float(row["delta_ci_low"]) == pytest.approx(100 * low - float(row["published"]), abs=1e-4)
        assert float(row["delta_ci_high"]) == pytest.approx(100 * high - float(row["published"]), abs=1e-4)
    assert "download https://example.org/gone.pth by hand and put it at" in rows[2]["problem"]
    assert "is not the published file" in rows[4]["problem"] and not rows[4]["run_id"]
    table = (tmp_path / "reports" / "tables" / "tiny_released.md").read_text()
    assert "| checkpoint | protocol | published | reproduced | Δ | Δ 95% CI (images) | images | source |" in table
    assert "Unit: the image" in table and "never compared with one" in table


def test_a_second_reproduce_reuses_the_runs(reproduced, capsys):
    tmp_path, spec, _ = reproduced
    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert main(["reproduce", spec, "--out", str(tmp_path / "reports"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "2 of 6 evaluations have their file" in out and "not evaluated: gone: missing" in out
    assert main(["reproduce", spec, "--out", str(tmp_path / "reports")]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == before


def test_export_writes_the_run_in_the_mmseg_layout(reproduced, capsys):
    tmp_path, _, _ = reproduced
    run = next(p for p in (tmp_path / "runs").iterdir() if (p / "record.json").is_file())
    out = tmp_path / "exported.pth"
    assert main(["export", str(run), "--format", "mmseg", "--out", str(out)]) == 0
    ckpt = read_checkpoint(out)
    assert ckpt.container == "mmseg" and ckpt.meta["model"]["decode_head"]["type"] == "PSPHead"
    assert (
        ckpt.meta["run_id"] == run.name and len(ckpt.meta["CLASSES"]) == ckpt.state["decode_head.conv_seg.bias"].numel()
    )
    model, _, _ = load_run_model(run)
    assert any(k.startswith("decode_head.psp_modules.") for k in ckpt.state)
    fresh = build_model(load_run_model(run)[1], initial_weights=False)
    load_weights(fresh, out)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items())


def test_bad_specs_are_one_line_errors(tmp_path):
    spec = _write_spec(tmp_path, [{**_release("x", "x.pth", ""), "publishd": []}])
    with pytest.raises(SweepError, match="unknown key.*publishd"):
        load_released_spec(spec)
    bad = _release("x", "x.pth", "")
    bad["published"][0]["protocol"] = "multi-scale"
    with pytest.raises(SweepError, match="protocol 'multi-scale'; choose one of single-scale, ms\\+flip"):
        load_released_spec(_write_spec(tmp_path, [bad]))

"""End to end: the local launcher runs a 4-run synthetic grid with the real trainer (tiny settings).

One run is broken on purpose (a CamVid root that does not exist): the sweep goes on, reports it as failed
with the error's last line, and a second sweep skips the finished runs and retries only the failed one.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bench.cli import main
from bench.grid.spec import expand_spec
from tiny import TINY

REPO = Path(__file__).resolve().parent.parent
TINY = {**TINY, "train.iters": 3, "train.batch_size": 2, "train.log_every": 1}


def test_local_sweep_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two runs at once on a small shared machine
    monkeypatch.chdir(tmp_path)
    spec = {"name": "tiny_local", "ablation": "memory_length", "factor": "model.memory_length",
            "base": str(REPO / "configs" / "synthetic_tmanet.yaml"),
            "overrides": {**TINY, "output_root": "out/runs"},
            "grid": [{"product": {"model.memory_length": [1, 2]}},
                     {"zip": {"model.name": ["per_frame"]}},
                     {"zip": {"data.dataset": ["camvid"], "data.root": [str(tmp_path / "no-camvid")]}}],
            "seeds": [0], "launch": {"launcher": "local", "max_parallel": 2}}
    path = tmp_path / "tiny_local.yaml"
    path.write_text(yaml.safe_dump(spec))
    runs = expand_spec(path)
    assert len(runs) == 4

    assert main(["sweep", str(path), "--launcher", "local"]) == 1  # one run fails, the others finish
    out = capsys.readouterr().out
    assert "3 ok, 1 not ok" in out
    for run in runs[:3]:
        record = json.loads((run.run_dir / "record.json").read_text())
        assert record["status"] == "done" and record["run_id"] == run.run_id and record["iters"] == 3
        assert 0.0 <= record["metrics"]["miou"] <= 1.0
        assert not (run.run_dir / "claim.json").exists()
    broken = runs[3]
    assert not (broken.run_dir / "record.json").exists()
    error = json.loads((broken.run_dir / "error.json").read_text())
    manifest = [json.loads(line) for line in (tmp_path / "out/sweeps/tiny_local/manifest.jsonl").read_text().splitlines()]
    assert sorted(m["event"] for m in manifest) == ["end"] * 4 + ["submit"] * 4
    assert not (tmp_path / "out/sweeps/tiny_local/configs").exists()  # the run dir's config.yaml is the only copy
    assert all((run.run_dir / "config.yaml").is_file() for run in runs)

    assert main(["status", str(path)]) == 0
    status = capsys.readouterr().out
    assert "3 done, 0 running, 0 queued, 1 failed, 0 corrupt, 0 pending, 0 unknown" in status
    assert error["last_line"] in status

    # a second sweep trains nothing that is done and retries only the failed run
    assert main(["sweep", str(path)]) == 1
    again = capsys.readouterr().out
    assert "running 1 runs locally" in again and "0 ok, 1 not ok" in again
    assert sum(1 for m in (tmp_path / "out/sweeps/tiny_local/manifest.jsonl").read_text().splitlines()
               if json.loads(m)["event"] == "submit") == 5

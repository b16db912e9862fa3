"""``bench status`` on a plugin grid where the plugin is not importable: the sweep recorded each model's argument
names in the manifest, so the run ids (and states) come out the same without importing the model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from helpers import TINY

from bench.cli import main
from bench.grid import manifest
from bench.grid.spec import SweepError, build_grid, model_signatures
from bench.models import registry

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def plugin_spec(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    spec = yaml.safe_load((REPO / "examples" / "temporal_mean_methods.yaml").read_text())
    spec["base"] = str(REPO / "configs" / "synthetic_tmanet.yaml")
    spec["overrides"].update({**TINY, "output_root": "out/runs"})
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_status_needs_no_plugin_once_a_sweep_recorded_the_signatures(plugin_spec, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    grid = build_grid(plugin_spec)  # the plugin importable: as on the machine that swept
    ids = [run.run_id for run in grid.runs]
    manifest.append(grid.manifest, {"event": "signatures", "models": model_signatures(grid)})

    monkeypatch.setattr(sys, "path", [p for p in sys.path if not p.endswith("examples")])
    monkeypatch.setitem(sys.modules, "temporal_mean", None)  # not importable here
    monkeypatch.setattr(registry, "_RECORDED", {})
    with pytest.raises(SweepError, match="plugin module 'temporal_mean' could not be imported"):
        build_grid(plugin_spec)  # a sweep still needs the plugin
    assert main(["status", str(plugin_spec)]) == 0
    out = capsys.readouterr().out
    assert "3 runs" in out and all(rid in out for rid in ids) and "pending" in out
    assert [run.run_id for run in build_grid(plugin_spec, recorded=True).runs] == ids

"""Run ids of existing configs never change: these strings were computed before the architecture change of
issue 28 (commit 17c70df) and every later version must give the same ones, or finished runs would be trained
again under new folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import load_config
from bench.run.identity import RunIdentity, run_id

REPO = Path(__file__).resolve().parents[1]
PINNED = [
    ("configs/synthetic_tmanet.yaml", [], "tmanet-959a5348bf"),
    ("configs/cityscapes_tmanet.yaml", [], "tmanet-7140040e0f"),
    ("configs/camvid_tmanet.yaml", [], "tmanet-88d3cfaeec"),
    ("configs/synthetic_control.yaml", [], "tmanet-c482edf402"),
    ("configs/synthetic_tmanet.yaml", ["model.name=per_frame"], "per_frame-f27d624c4f"),
    (
        "configs/synthetic_tmanet.yaml",
        ["model.name=flow_warp", "model.flow.source=ground_truth"],
        "flow_warp-54902860b7",
    ),
    (
        "configs/synthetic_tmanet.yaml",
        ["model.name=dff", "model.flow.source=dis", "model.keyframe_interval=3"],
        "dff-fe11930a95",
    ),
    ("configs/synthetic_tmanet.yaml", ["model.name=local_tmanet", "model.window_size=3"], "local_tmanet-57492eb3c1"),
    # a plugin's own run keeps its id (computed at commit 9654cc8); a built-in model's run ignores `plugins:`
    (
        "configs/synthetic_tmanet.yaml",
        ["plugins=[temporal_mean]", "model.name=temporal_mean"],
        "temporal_mean-f2755da22d",
    ),
    ("configs/synthetic_tmanet.yaml", ["plugins=[temporal_mean]"], "tmanet-959a5348bf"),
]


@pytest.mark.parametrize(("path", "overrides", "expected"), PINNED, ids=[p[2] for p in PINNED])
def test_the_run_ids_of_existing_configs_are_pinned(path, overrides, expected, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    cfg = load_config(REPO / path, [*overrides, "device=cpu"])
    assert run_id(cfg) == expected
    assert RunIdentity.of(cfg).run_id == expected

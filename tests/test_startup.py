"""Start-up: commands that compute no tensors never import torch or timm (issue 22); built-in factory signatures
read from the sources equal the real ones (run ids depend on them)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, REPORT_BASE, fabricate_records, write_report_spec

from bench.models import registry
from bench.models.declared import declared_factories

# Runs `bench ARGS` in-process and prints which heavy modules were imported, as JSON on the last line.
PROBE = """
import json, sys
from bench.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
print(json.dumps({"code": code, "heavy": sorted(m for m in ("torch", "timm", "torchvision") if m in sys.modules)}))
"""


def probe(*args: str, cwd: Path = REPO) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_builtin_signatures_from_the_sources_equal_the_real_ones():
    declared = declared_factories(registry.BUILTIN_MODEL_MODULES)
    assert declared is not None, "a built-in factory has a non-literal default: give it a literal one"
    registry.load_builtin_models()
    assert set(declared) <= set(registry._MODELS)
    for name, found in declared.items():
        real = registry._MODELS[name]
        expected = inspect.signature(real).replace(
            parameters=[p.replace(annotation=p.empty) for p in inspect.signature(real).parameters.values()],
            return_annotation=inspect.Signature.empty,
        )
        assert found.signature == expected, name
        assert (found.module, found.qualname) == (real.__module__, real.__qualname__)


def test_a_lazy_builtin_factory_builds_the_real_model(monkeypatch):
    monkeypatch.setattr(registry, "_MODELS", {})  # as in a fresh process: nothing imported yet
    factory = registry.get_factory("per_frame")
    assert factory.__qualname__ == "per_frame" and registry.takes_head(factory)
    model = factory(num_classes=3, backbone="resnet18", pretrained=False, value_channels=8, channels=8, aux_channels=8)
    assert type(model).__name__ == "PerFrameSegmenter" and model.memory_length == 0


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("models",),
        ("config", "configs/synthetic_tmanet.yaml", "model.memory_length=3"),
        ("config", "--keys"),
        ("status", "ablations/synthetic_memory_length.yaml"),
        ("sweep", "ablations/synthetic_memory_length.yaml", "--dry-run"),
    ],
)
def test_commands_without_tensors_import_no_torch(args):
    result = probe(*args)
    assert result == {"code": 0, "heavy": []}, args


def test_report_tables_import_no_torch(tmp_path):
    spec = write_report_spec(
        tmp_path,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2]}}],
        REPORT_BASE,
        seeds=[0, 1],
    )
    fabricate_records(spec, lambda r: 0.5 + 0.03 * r.config.model.memory_length + 0.01 * r.seed)
    result = probe("report", str(spec), "--out", str(tmp_path / "reports"), cwd=tmp_path)
    assert result == {"code": 0, "heavy": []}
    assert (tmp_path / "reports" / "tables" / "syn_mem.md").is_file()

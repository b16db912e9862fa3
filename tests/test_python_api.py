"""Notebook use: ``import bench`` is light, the API names resolve lazily, and no module switches matplotlib's
backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import bench

PROBE = textwrap.dedent("""
    import json, pkgutil, importlib, sys
    import matplotlib
    calls = []
    matplotlib.use = lambda *a, **k: calls.append(a)       # any module selecting a backend is caught
    import bench
    light = sorted(m for m in ("torch", "matplotlib.pyplot", "pandas") if m in sys.modules)
    names = [m.name for m in pkgutil.walk_packages(bench.__path__, "bench.")
             if not m.name.endswith("__main__")]
    for name in names:
        importlib.import_module(name)
    print(json.dumps({"light": light, "modules": len(names), "use_calls": calls,
                      "backend": matplotlib.get_backend()}))
""")


def test_importing_any_bench_module_leaves_the_matplotlib_backend_alone():
    env = {**os.environ, "MPLBACKEND": "svg"}  # a notebook's own choice; it must survive every import
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["light"] == []  # `import bench` imports neither torch nor pyplot nor pandas
    assert got["modules"] > 30 and got["use_calls"] == [] and got["backend"] == "svg"


def test_the_api_is_reexported_lazily():
    from bench.config import load_config
    from bench.evaluation.evaluate import evaluate_model
    from bench.report.build import build_report
    from bench.run.execute import execute
    from bench.run.model import build_model, load_run_model

    assert bench.load_config is load_config and bench.build_model is build_model
    assert bench.load_run_model is load_run_model and bench.execute is execute
    assert bench.build_report is build_report and bench.evaluate_model is evaluate_model
    assert callable(bench.register_model) and "evaluate_model" in dir(bench)
    try:
        bench.not_an_api_name  # noqa: B018
    except AttributeError as err:
        assert "not_an_api_name" in str(err)
    else:
        raise AssertionError("unknown names must raise AttributeError")

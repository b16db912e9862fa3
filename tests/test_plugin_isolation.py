"""A plugin changes its own runs only: their ids, their code fingerprint (every project-local module it imports)
and their staleness. Built-in models never import or depend on a plugin, so a plugin grid never breaks other
commands, and `bench status` / `bench report` of it work where the plugin is not installed."""

from __future__ import annotations

import csv
import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from helpers import TINY, fabricate_records

from bench.cli import main
from bench.config import load_config, to_yaml
from bench.engine.checkpoint import save_checkpoint
from bench.grid.spec import build_grid
from bench.grid.sweep import record_signatures
from bench.models import registry
from bench.models.registry import RegistryError, register_model
from bench.run.fingerprint import plugin_hash
from bench.run.identity import RunIdentity
from bench.run.model import build_model
from bench.run.plugin_files import imported_modules
from bench.run.rundir import RunDir

REPO = Path(__file__).resolve().parent.parent
PLUGIN_SOURCE = '''
from bench.models.registry import register_model
import {helper}


@register_model("{model}")
def {model}(num_classes: int, memory_length: int = 2, **head):
    """A plugin model that is never built here (ids, fingerprints and states only)."""
    raise NotImplementedError
'''


def _spec(tmp_path: Path, models: list[str], plugins: list[str], name: str = "plugin_grid") -> Path:
    spec = {
        "name": name,
        "ablation": "methods",
        "factor": "model.name",
        "base": str(REPO / "configs" / "synthetic_tmanet.yaml"),
        "overrides": {**TINY, "output_root": str(tmp_path / "out" / "runs"), "plugins": plugins},
        "grid": [{"product": {"model.name": models}}],
        "seeds": [0],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _write_plugin(folder: Path, module: str, model: str, helper: str) -> Path:
    (folder / f"{helper}.py").write_text("SCALE = 1.0\n")
    path = folder / f"{module}.py"
    path.write_text(PLUGIN_SOURCE.format(helper=helper, model=model))
    return path


def _swept(grid) -> None:
    """What `bench sweep` writes when it launches: each model's argument names and plugins."""
    record_signatures(grid)


def _hide_plugin(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """The plugin is not importable from here on (as on a machine without it)."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not p.endswith("examples")])
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr(registry, "_RECORDED", {})
    monkeypatch.setattr(registry, "_RECORDED_PLUGINS", {})


def test_plugins_in_the_overrides_change_only_the_plugin_runs_ids(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    with_plugin = {r.config.model.name: r.run_id for r in build_grid(
        _spec(tmp_path, ["tmanet", "per_frame", "temporal_mean"], ["temporal_mean"])
    ).runs}  # fmt: skip
    plain = {r.config.model.name: r.run_id for r in build_grid(_spec(tmp_path, ["tmanet", "per_frame"], [])).runs}
    assert with_plugin["tmanet"] == plain["tmanet"] and with_plugin["per_frame"] == plain["per_frame"]
    cfg = load_config(REPO / "configs" / "synthetic_tmanet.yaml", ["plugins=[temporal_mean]", "device=cpu"])
    ident = RunIdentity.of(cfg)
    assert ident.plugins == () and "plugins" not in ident.sparse["model"] and ident.full["model"]["plugins"] == []
    own = RunIdentity.of(load_config(None, ["plugins=[temporal_mean]", "model.name=temporal_mean"]))
    assert own.plugins == ("temporal_mean",) and own.sparse["model"]["plugins"] == ["temporal_mean"]


def test_the_moved_run_check_never_imports_another_runs_plugin(tmp_path, monkeypatch, capsys):
    """Folders of a plugin grid beside a run: neither `bench sweep --dry-run` nor the reuse check of
    `bench train` imports the plugins their configs list (the spy writes a file when it is imported)."""
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = tmp_path / "imported"
    (tmp_path / "spy_plugin_z.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    runs = tmp_path / "out" / "runs"
    for folder, overrides in {
        "tmanet-0000000000": ["plugins=[spy_plugin_z]"],
        "temporal_mean-0000000000": ["plugins=[temporal_mean,spy_plugin_z]", "model.name=temporal_mean"],
    }.items():
        stored = load_config(None, [*overrides, f"output_root={runs}"])
        (runs / folder).mkdir(parents=True)
        (runs / folder / "config.yaml").write_text(to_yaml(stored))

    assert main(["sweep", str(_spec(tmp_path, ["tmanet", "per_frame"], [])), "--dry-run"]) == 0
    problems = {}
    for overrides in (["model.name=tmanet"], ["plugins=[temporal_mean]", "model.name=temporal_mean"]):
        cfg = load_config(None, [*overrides, f"output_root={runs}"])
        ident = RunIdentity.of(cfg)
        problems[cfg.model.name] = RunDir.of(cfg, ident.run_id).inspect_reuse(ident).problem
    # the built-in run listed a plugin it never used: the same run, found without importing it
    assert problems["tmanet"].startswith(f"this run already exists as {runs / 'tmanet-0000000000'}")
    assert problems["temporal_mean"] == ""  # lists a plugin this run does not import: skipped unread
    assert not marker.exists() and "spy_plugin_z" not in sys.modules
    assert "pending" in capsys.readouterr().out


def test_status_and_report_work_without_the_plugin(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    spec = _spec(tmp_path, ["tmanet", "per_frame", "temporal_mean"], ["temporal_mean"])
    grid = build_grid(spec)
    _swept(grid)
    fabricate_records(spec, miou_of=lambda run: 0.5)
    ids = {run.config.model.name: run.run_id for run in grid.runs}
    for run in grid.runs:  # trained weights: the report's strip builds the models it can
        if run.config.model.name != "per_frame":
            save_checkpoint(run.run_dir / "checkpoint.pt", {"model": build_model(run.config).state_dict()})

    _hide_plugin(monkeypatch, "temporal_mean")
    assert main(["status", str(spec)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {name: next(r for r in out if r.startswith(rid)) for name, rid in ids.items()}
    assert {name: row.split()[3] for name, row in rows.items()} == dict.fromkeys(ids, "done")
    assert rows["temporal_mean"].endswith("plugin temporal_mean not importable here: its code is not checked")
    assert "not importable" not in rows["tmanet"] + rows["per_frame"]

    assert main(["report", str(spec), "--out", str(tmp_path / "reports")]) == 0
    rows = list(csv.DictReader((tmp_path / "reports" / "tables" / "plugin_grid.csv").open()))
    assert sorted(row["method"] for row in rows) == ["per_frame", "temporal_mean", "tmanet"]
    notes = (tmp_path / "reports" / "tables" / "plugin_grid.md").read_text()
    assert "code not checked for 1 run(s) whose plugin is not importable here" in notes
    assert f"{ids['temporal_mean']}: plugin temporal_mean" in notes and "skipped" not in notes
    strip = json.loads((tmp_path / "reports" / "index.json").read_text())["figures"]["qualitative_plugin_grid"]
    assert strip["files"] and "temporal_mean: skipped, its plugin is not importable here" in strip["reading"]


def test_one_changed_plugin_marks_only_its_own_runs_stale(tmp_path, monkeypatch, capsys):
    """Two plugins in one grid; a helper module that only the first imports is edited: only its runs are stale."""
    monkeypatch.syspath_prepend(str(tmp_path))
    _write_plugin(tmp_path, "iso_plugin_a", "test_iso_model_a", "iso_helper_a")
    _write_plugin(tmp_path, "iso_plugin_b", "test_iso_model_b", "iso_helper_b")
    spec = _spec(tmp_path, ["tmanet", "test_iso_model_a", "test_iso_model_b"], ["iso_plugin_a", "iso_plugin_b"])
    grid = build_grid(spec)
    assert {r.config.model.name: RunIdentity.of(r.config).plugins for r in grid.runs} == {
        "tmanet": (),
        "test_iso_model_a": ("iso_plugin_a",),
        "test_iso_model_b": ("iso_plugin_b",),
    }
    fabricate_records(spec, miou_of=lambda run: 0.5)
    before = plugin_hash("iso_plugin_a")
    (tmp_path / "iso_helper_a.py").write_text("SCALE = 2.0\n")
    assert plugin_hash("iso_plugin_a") != before

    assert main(["status", str(spec)]) == 0
    states = {
        name: row.split()[3]
        for row in capsys.readouterr().out.splitlines()
        for name, rid in ((r.config.model.name, r.run_id) for r in grid.runs)
        if row.startswith(rid)
    }
    assert states == {"tmanet": "done", "test_iso_model_a": "stale", "test_iso_model_b": "done"}


def test_a_plugin_is_fingerprinted_with_every_project_local_module_it_imports(tmp_path, monkeypatch):
    """Helpers beside it and in a package of the user's (relative imports too) count; the standard library,
    installed packages and the suite do not; nothing is imported to find them."""
    monkeypatch.syspath_prepend(str(tmp_path))
    package = tmp_path / "iso_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text("from . import maths\n")
    (package / "maths.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "iso_fp_plugin.py").write_text(
        textwrap.dedent(
            """
            import json, numpy
            from bench.models.registry import register_model
            from iso_pkg import layers

            def late():
                import iso_fp_late
            """
        )
    )
    (tmp_path / "iso_fp_late.py").write_text("X = 1\n")
    expected = {"iso_fp_plugin", "iso_pkg", "iso_pkg.layers", "iso_pkg.maths", "iso_fp_late"}
    assert imported_modules("iso_fp_plugin") == expected
    assert "iso_fp_plugin" not in sys.modules and "iso_pkg" not in sys.modules
    before = plugin_hash("iso_fp_plugin")
    (package / "maths.py").write_text("def double(x):\n    return x + x\n")
    assert plugin_hash("iso_fp_plugin") != before


def test_a_plugin_cannot_register_a_builtin_model_name():
    with pytest.raises(RegistryError, match="cannot register 'tmanet': that is a built-in model"):

        @register_model("tmanet")
        def tmanet(num_classes: int, **head):  # noqa: ARG001
            raise NotImplementedError

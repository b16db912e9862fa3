"""`bench paper`: the paper tables the suite regenerates, their specs and commands; torch-free."""

import json
import subprocess
import sys
from pathlib import Path

from bench.cli import main
from bench.grid.spec import load_spec
from bench.report.paper_specs import ROOT, paper_tables

PROGRAM = (
    "import sys; from bench.cli import main; code = main(['paper']); "
    "assert 'torch' not in sys.modules, 'bench paper imported torch'; sys.exit(code)"
)


def test_lists_the_sota_table_with_its_specs_and_commands(capsys):
    assert main(["paper"]) == 0
    out = capsys.readouterr().out
    assert "[sota] comparison with the state of the art" in out
    for spec in ("ablations/cityscapes_sota.yaml", "ablations/camvid_sota.yaml", "ablations/synthetic_sota.yaml"):
        assert f"spec: {spec}" in out
    assert "bench sweep ablations/cityscapes_sota.yaml launch.partition=<yours>" in out  # SLURM
    assert "bench sweep ablations/camvid_sota.yaml --launcher local" in out  # local
    assert "bench report ablations/cityscapes_sota.yaml ablations/camvid_sota.yaml" in out
    assert "MISSING FILE" not in out


def test_every_listed_spec_exists_and_parses(capsys):
    for table in paper_tables():
        for spec in table.specs + table.synthetic:
            assert (ROOT / spec).is_file(), spec
    assert load_spec(ROOT / "ablations/cityscapes_sota.yaml").ablation == "sota"
    assert main(["paper", "sota", "--json"]) == 0
    (table,) = json.loads(capsys.readouterr().out)
    assert table["key"] == "sota" and [s["seeds"] for s in table["specs"]] == [[0, 1, 2], [0, 1, 2]]


def test_paper_is_torch_free():
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(ROOT),
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "sota" in out.stdout

"""The .tex tables compile: symbols are LaTeX commands (no raw Δ, −, ±, <), and pdflatex, where installed,
compiles a document that inputs one (the test skips the compile, saying why, where pdflatex is missing)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import REPORT_BASE, fabricate_records, per_image_fabricator, write_report_spec

from bench.report.build import build_report
from bench.report.table_files import tex_symbols

DOCUMENT = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{%s}\n\\end{document}\n"


@pytest.fixture
def tex_table(tmp_path: Path) -> Path:
    """A memory-length table with per-image counts: a reference row, Δ columns, CIs and p-values."""
    spec = write_report_spec(
        tmp_path,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2, 4]}}],
        REPORT_BASE,
        seeds=[0, 1],
    )
    fabricate_records(spec, None, per_image_of=per_image_fabricator(lambda r: 0.03 * r.config.model.memory_length))
    ((_, paths),) = build_report([str(spec)], tmp_path / "reports", figures=False)["tables"]
    return paths["tex"]


def test_symbols_become_latex_commands():
    assert tex_symbols("Δ ref & <0.001 & −1.2 ± 0.3") == "$\\Delta$ ref & $<$0.001 & $-$1.2 $\\pm$ 0.3"


def test_the_table_body_is_plain_ascii(tex_table: Path):
    body = [line for line in tex_table.read_text().splitlines() if not line.startswith("%")]
    assert "$\\Delta$ ref" in "\n".join(body)
    assert all(line.isascii() for line in body), [line for line in body if not line.isascii()]


def test_pdflatex_compiles_the_table(tex_table: Path, tmp_path: Path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (e.g. apt-get install texlive-latex-base texlive-latex-recommended)")
    (tmp_path / "doc.tex").write_text(DOCUMENT % tex_table.resolve().as_posix())
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "doc.pdf").read_bytes()[:4] == b"%PDF"

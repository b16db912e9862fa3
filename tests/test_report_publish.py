"""Reports never destroy what they did not make (issues 19 G15 and 22): the index merges with the tables already
in --out, outputs are published atomically under a lock, and a report without a finished run writes nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from helpers import REPORT_BASE, fabricate_records, write_report_spec

from bench.report.build import build_report, report_command
from bench.report.publish import report_lock


def _spec(tmp: Path, name: str, finished: bool = True) -> Path:
    folder = tmp / name
    folder.mkdir()
    spec = write_report_spec(
        folder,
        name,
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2]}}],
        REPORT_BASE,
        seeds=[0],
    )
    if finished:
        fabricate_records(spec, lambda r: 0.4 + 0.1 * r.config.model.memory_length)
    return spec


def test_a_second_report_keeps_the_first_ones_tables_in_the_index(tmp_path):
    out = tmp_path / "reports"
    build_report([str(_spec(tmp_path, "first"))], out, figures=False)
    build_report([str(_spec(tmp_path, "second"))], out, figures=False)
    index, html = (out / "index.md").read_text(), (out / "index.html").read_text()
    for name in ("first", "second"):
        assert f"**{name}**" in index and f"tables/{name}.md" in index and f"html/{name}.html" in html
        assert (out / "tables" / f"{name}.csv").is_file()
    assert not list(out.glob(".staging*")) and not list(out.rglob("*.tmp"))
    # a table whose files were removed by hand leaves the index at the next report
    for path in (out / "tables").glob("first.*"):
        path.unlink()
    build_report([str(tmp_path / "second" / "second.yaml")], out, figures=False)
    assert "**first**" not in (out / "index.md").read_text()


def test_an_index_written_before_index_json_is_merged(tmp_path):
    out = tmp_path / "reports"
    (out / "tables").mkdir(parents=True)
    (out / "tables" / "shipped.md").write_text("# shipped\n")
    (out / "index.md").write_text(
        "# Reports\n\n## Tables\n\n- **shipped** (methods; [md](tables/shipped.md)): "
        "method: tmanet best.\n\n## Figures\n\n"
    )
    build_report([str(_spec(tmp_path, "mine"))], out, figures=False)
    index = (out / "index.md").read_text()
    assert "- **shipped** (methods; [md](tables/shipped.md)): method: tmanet best." in index and "**mine**" in index


def test_a_report_without_finished_runs_writes_nothing(tmp_path, capsys):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "index.md").write_text("the shipped index\n")
    assert report_command([str(_spec(tmp_path, "empty", finished=False))], str(out)) == 1
    assert "nothing written" in capsys.readouterr().out
    assert (out / "index.md").read_text() == "the shipped index\n" and sorted(out.iterdir()) == [out / "index.md"]


def test_a_report_waits_for_another_report_into_the_same_folder(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    spec = _spec(tmp_path, "waiting")
    with report_lock(out):
        worker = threading.Thread(target=build_report, args=([str(spec)], out), kwargs={"figures": False})
        worker.start()
        time.sleep(1.0)
        assert worker.is_alive() and not (out / "index.md").exists()
    worker.join(timeout=60)
    assert "**waiting**" in (out / "index.md").read_text()

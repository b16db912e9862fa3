"""The report's confusion-matrix figure: one row-normalised heatmap per table row, from the records' counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from helpers import fabricate_records, write_report_spec
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from test_figures import FIGURE_BASE

from bench.grid.spec import build_grid
from bench.report.build import build_report
from bench.report.class_figures import _confusion_grid
from bench.run.rundir import RunDir


def test_confusion_figure_sums_seeds_and_normalises_per_ground_truth_class(tmp_path: Path) -> None:
    spec = write_report_spec(
        tmp_path,
        "syn_methods",
        "methods",
        "model.name",
        [{"product": {"model.name": ["tmanet", "per_frame"]}}],
        FIGURE_BASE,
        seeds=[0, 1],
    )
    fabricate_records(spec, lambda r: 0.6 + 0.01 * r.seed)
    for run in build_grid(spec).runs:  # 4 classes; per_frame confuses class 1 with class 2 more
        path = RunDir.of(run.config).path / "record.json"
        record = json.loads(path.read_text())
        matrix = np.diag([50, 40, 30, 20]) + 1
        matrix[1, 2] += 30 if run.config.model.name == "per_frame" else 0
        record["metrics"]["confusion_matrix"] = matrix.tolist()
        path.write_text(json.dumps(record))
    result = build_report([str(spec)], tmp_path / "reports")
    figure = {f.name: f for f in result["figures"]}["confusion_synthetic"]
    assert all(p.stat().st_size > 0 for p in figure.paths)
    heatmaps = [ax for ax in figure.figure.axes if ax.get_title()]
    assert sorted(ax.get_title() for ax in heatmaps) == [
        "syn_methods\nmethod=per_frame (n=2)",
        "syn_methods\nmethod=tmanet (n=2)",
    ]
    for ax in heatmaps:
        shares = np.asarray(ax.collections[0].get_array()).reshape(4, 4)
        assert np.allclose(shares.sum(1), 100)  # every ground-truth class sums to 100%
    per_frame = next(ax for ax in heatmaps if "per_frame" in ax.get_title())
    shares = np.asarray(per_frame.collections[0].get_array()).reshape(4, 4)
    assert np.isclose(shares[1, 2], 100 * 31 * 2 / (2 * (41 + 31 + 2)))  # the seeds' counts are summed first
    assert "per_frame" in figure.reading and "-> " in figure.reading


def test_a_many_panel_confusion_figure_measures_its_text_with_one_renderer(tmp_path: Path, monkeypatch) -> None:
    """Without its own canvas, each panel's seaborn heatmap rendered the whole figure into a new buffer (76
    renderers for 9 panels; the report of make demo-all peaked at 7.4 GB): report figures come from
    plotting.new_figure, and the panels are drawn without seaborn's per-call redraw."""
    created: list[int] = []
    init = RendererAgg.__init__

    def counting(self, *args, **kwargs) -> None:
        created.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(RendererAgg, "__init__", counting)
    classes = list("abcd")
    grids = {f"t: row={i} (n=3)": pd.DataFrame(100 * np.eye(4), index=classes, columns=classes) for i in range(9)}
    result = _confusion_grid("synthetic", grids, tmp_path)
    assert isinstance(result.figure.canvas, FigureCanvasAgg)
    assert len(created) <= 6, len(created)  # the canvas's renderer and the saved PNG's; was one or more per panel
    assert [p.name for p in result.paths] == ["confusion_synthetic.png", "confusion_synthetic.pdf"]

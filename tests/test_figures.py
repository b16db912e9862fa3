"""Report figures from fabricated records (and real tiny checkpoints): written, non-empty, loadable, indexed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest
from helpers import fabricate_records, per_image_fabricator, write_report_spec
from matplotlib.container import ErrorbarContainer

from bench.data.classes import synthetic_class_names
from bench.engine.checkpoint import save_checkpoint
from bench.grid.spec import build_grid
from bench.report.build import build_report
from bench.report.cost_figures import pareto_front
from bench.run.model import build_model
from bench.run.rundir import RunDir

FIGURE_BASE = {
    "name": "tiny",
    "model": {
        "name": "tmanet",
        "backbone": "resnet18",
        "memory_length": 2,
        "key_channels": 8,
        "value_channels": 16,
        "channels": 16,
        "aux_channels": 16,
    },
    "data": {"dataset": "synthetic", "synthetic": {"size": [32, 32], "val_clips": 2, "num_classes": 4}},
}
MIOU = {"tmanet": 0.62, "per_frame": 0.55, "flow_warp": 0.58}
LATENCY = {"tmanet": 30.0, "per_frame": 10.0, "flow_warp": 45.0}


def methods_spec(tmp: Path, name: str = "syn_methods") -> Path:
    """A methods spec: tmanet and per_frame, and flow_warp with the ground-truth flow (an oracle); seeds 0, 1."""
    return write_report_spec(
        tmp,
        name,
        "methods",
        "model.name",
        [
            {"product": {"model.name": ["tmanet", "per_frame"]}},
            {"zip": {"model.name": ["flow_warp"], "model.memory_length": [1], "model.flow.source": ["ground_truth"]}},
        ],
        FIGURE_BASE,
        seeds=[0, 1],
    )


def errorbar_extents(ax) -> list[tuple[float, float]]:
    """(low, high) of every vertical error bar segment drawn on ``ax``."""
    extents = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            for collection in container.lines[2]:
                extents += [(float(seg[:, 1].min()), float(seg[:, 1].max())) for seg in collection.get_segments()]
    return extents


def check_memory_length_axes(ax, table) -> None:
    """Error bars are the table's 95% CIs, n is printed per point, y starts at 0, chance and per-frame lines."""
    frame = table.frame
    expected = sorted(zip(frame["ci_low"].round(6), frame["ci_high"].round(6)))
    assert sorted((round(lo, 6), round(hi, 6)) for lo, hi in errorbar_extents(ax)) == expected
    assert ax.get_ylim()[0] == 0
    assert sorted(t.get_text() for t in ax.texts) == [f"n={n}" for n in sorted(frame["n"])]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "per-frame baseline (n=2)" in legend and any(t.startswith("chance: majority class") for t in legend)
    horizontal = {round(line.get_ydata()[0], 6) for line in ax.get_lines() if len(set(line.get_ydata())) == 1}
    assert round(table.chance["synthetic"], 6) in horizontal
    assert "95% CI" in ax.get_title() and "sd" not in ax.get_title()


def check_bars_axes(ax, table) -> None:
    frame = table.frame
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 1 and ax.get_ylim()[0] == 0
    assert sorted(hi for _, hi in errorbar_extents(ax)) == pytest.approx(sorted(frame["ci_high"]))
    assert sorted(t.get_text() for t in ax.texts) == [f"n={n}" for n in sorted(frame["n"])]
    assert "mean of 2 seeds" in ax.get_title() and "t·s/√n over seeds" in ax.get_title()


def test_importing_figures_keeps_the_matplotlib_backend() -> None:
    code = "import matplotlib; matplotlib.use('svg'); import bench.report.figures; print(matplotlib.get_backend())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"


def test_pareto_front_keeps_only_undominated_points() -> None:
    points = pd.DataFrame({"latency_ms": [10.0, 30.0, 45.0, 20.0], "miou_mean": [55.0, 62.0, 58.0, 54.0]})
    front = pareto_front(points)
    assert list(front.index) == [0, 1]  # 45 ms / 58 is slower and worse than 30 ms / 62; 20 ms / 54 worse than 10 / 55


def test_report_figures_are_written_and_loadable(tmp_path: Path) -> None:
    methods = methods_spec(tmp_path)
    fabricate_records(
        methods, lambda r: MIOU[r.config.model.name] + 0.01 * r.seed, latency_of=lambda r: LATENCY[r.config.model.name]
    )
    for run in build_grid(methods).runs:  # checkpoints for seed 0 of tmanet and per_frame; none for flow_warp
        if run.seed == 0 and run.config.model.name != "flow_warp":
            model = build_model(run.config)
            save_checkpoint(RunDir.of(run.config).path / "checkpoint.pt", {"model": model.state_dict()})
    memory = write_report_spec(
        tmp_path,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2, 4]}}],
        FIGURE_BASE,
        seeds=[2, 3],
    )
    fabricate_records(memory, None, per_image_of=per_image_fabricator(lambda r: 0.02 * r.config.model.memory_length))
    aggregation = write_report_spec(
        tmp_path,
        "syn_agg",
        "aggregation",
        "model.aggregation",
        [{"product": {"model.aggregation": ["concat", "sum"]}}],
        FIGURE_BASE,
        seeds=[4, 5],
    )
    fabricate_records(aggregation, lambda r: 0.6 - 0.05 * (r.config.model.aggregation == "sum") + 0.01 * (r.seed - 4))

    # distinct seeds per spec: identical configs would share one run dir (and record) between grids
    out = tmp_path / "reports"
    result = build_report([str(methods), str(memory), str(aggregation)], out)
    figures = {f.name: f for f in result["figures"]}
    expected = {
        "syn_mem_miou_vs_memory_length",
        "syn_agg_bars",
        "accuracy_vs_latency",
        "per_class_iou_synthetic",
        "qualitative_syn_methods",
    }
    assert expected <= set(figures)
    index = (out / "index.md").read_text()
    for name in expected:
        png, pdf = out / "figures" / f"{name}.png", out / "figures" / f"{name}.pdf"
        assert png.stat().st_size > 0 and pdf.read_bytes()[:4] == b"%PDF"
        image = mpimg.imread(png)
        assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
        assert f"figures/{name}.png" in index
    tables = {t.name: t for t, _ in result["tables"]}
    assert figures["syn_mem_miou_vs_memory_length"].reading.startswith("best memory_length: 4 (")
    # 5 points apart with the same 1-point seed spread in both rows: significant even with 2 seeds (Welch)
    assert figures["syn_agg_bars"].reading.startswith("best aggregation: concat (")
    check_memory_length_axes(figures["syn_mem_miou_vs_memory_length"].figure.axes[0], tables["syn_mem"])
    check_bars_axes(figures["syn_agg_bars"].figure.axes[0], tables["syn_agg"])
    pareto_ax = figures["accuracy_vs_latency"].figure.axes[0]
    assert pareto_ax.get_ylim()[0] == 0 and any(isinstance(c, ErrorbarContainer) for c in pareto_ax.containers)
    assert any("(n=2)" in t.get_text() for t in pareto_ax.get_legend().get_texts())
    strip_legend = [t.get_text() for t in figures["qualitative_syn_methods"].figure.legends[0].get_texts()]
    assert strip_legend == synthetic_class_names(4) + ["ignored"]
    front_text = figures["accuracy_vs_latency"].reading
    assert front_text.startswith("Pareto front (oracles excluded): per_frame (10.0 ms, 55.5), tmanet")
    assert front_text.endswith("oracles, not on the front: flow_warp (oracle: ground-truth flow)")
    qualitative = figures["qualitative_syn_methods"].reading
    assert "flow_warp: skipped, no checkpoint.pt" in qualitative
    assert "pixel accuracy on this one clip (an illustration, not a comparison): " in qualitative
    assert "best" not in qualitative  # one clip never ranks the models
    for table, paths in result["tables"]:
        assert f"tables/{table.name}.md" in index and all(p.stat().st_size > 0 for p in paths.values())


def test_pareto_figure_without_latency_is_reported_not_drawn(tmp_path: Path) -> None:
    memory = write_report_spec(
        tmp_path,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2]}}],
        FIGURE_BASE,
        seeds=[0],
    )
    fabricate_records(memory, lambda r: 0.5)
    result = build_report([str(memory)], tmp_path / "reports")
    pareto = next(f for f in result["figures"] if f.name == "accuracy_vs_latency")
    assert pareto.paths == [] and "bench latency" in pareto.reading
    qualitative = next(f for f in result["figures"] if f.name.startswith("qualitative"))
    assert qualitative.paths == [] and "checkpoint.pt" in qualitative.reading
    assert "not drawn" in (tmp_path / "reports" / "index.md").read_text()
    memory_ax = next(f for f in result["figures"] if f.name == "syn_mem_miou_vs_memory_length").figure.axes[0]
    title = memory_ax.get_title()  # one seed, no per-image counts: no interval, and the title says so
    assert "one seed per point" in title and "none (n = 1" in title and "sd" not in title
    assert errorbar_extents(memory_ax) == [(50.0, 50.0), (50.0, 50.0)] and memory_ax.get_ylim()[0] == 0


if __name__ == "__main__":
    pytest.main([__file__])


def test_the_per_frame_line_only_uses_runs_of_the_same_task() -> None:
    """The negative control's per-frame runs (another data setting) never become another table's reference."""
    from types import SimpleNamespace

    import pandas as pd

    from bench.report.figures import per_frame_level

    def runs(model: str, cue: str, miou: float, seeds=(0, 1)) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "run_id": f"{model}-{cue}-{s}",
                    "model": model,
                    "dataset": "synthetic",
                    "miou": miou,
                    "cfg:data.synthetic.current_cue": cue,
                    "cfg:train.iters": 400,
                    "cfg:train.seed": s,
                    "cfg:eval.mode": "whole",
                }
                for s in seeds
            ]
        )

    task, control = runs("per_frame", "hidden", 16.0), runs("per_frame", "visible", 62.0)
    tables = [SimpleNamespace(runs=pd.concat([task, runs("tmanet", "hidden", 43.0)])), SimpleNamespace(runs=control)]
    assert per_frame_level(tables, runs("tmanet", "hidden", 50.0, seeds=(2,))) == (16.0, 2)
    assert per_frame_level(tables, runs("tmanet", "visible", 63.0)) == (62.0, 2)
    assert per_frame_level(tables[:1], runs("tmanet", "visible", 63.0)) is None


def test_oracles_leave_the_pareto_front_and_latency_iqr_and_gflops_are_drawn(tmp_path: Path) -> None:
    methods = methods_spec(tmp_path)
    fast = {"tmanet": 30.0, "per_frame": 10.0, "flow_warp": 5.0}  # the oracle is fastest and most accurate
    fabricate_records(
        methods, lambda r: {"flow_warp": 0.7}.get(r.config.model.name, MIOU[r.config.model.name]) + 0.01 * r.seed
    )
    for run in build_grid(methods).runs:
        median = fast[run.config.model.name]
        RunDir(RunDir.of(run.config).path).merge_into_record(
            "latency",
            {
                "modes": {
                    "streaming": {
                        "median_ms": median,
                        "pass_medians_ms": [median - 2, median - 1, median, median + 1, median + 4],
                        "iqr_ms": 2.0,
                        "gflops": median / 10,
                    }
                }
            },
            overwrite=True,
        )
    result = build_report([str(methods)], tmp_path / "reports")
    figure = next(f for f in result["figures"] if f.name == "accuracy_vs_latency")
    assert figure.reading.startswith("Pareto front (oracles excluded): per_frame (10.0 ms, 55.5), tmanet (30.0 ms")
    assert "oracles, not on the front: flow_warp (oracle: ground-truth flow)" in figure.reading
    assert "GFLOPs front: per_frame (1.00 GFLOPs, 55.5), tmanet (3.00 GFLOPs, 62.5)" in figure.reading
    latency_ax, flops_ax = figure.figure.axes[:2]
    assert "GFLOPs" in flops_ax.get_xlabel() and "IQR" in latency_ax.get_xlabel()
    horizontal = []
    for container in latency_ax.containers:
        if isinstance(container, ErrorbarContainer) and container.has_xerr:
            segment = container.lines[2][0].get_segments()[0]
            horizontal.append((round(float(segment[:, 0].min()), 6), round(float(segment[:, 0].max()), 6)))
    assert sorted(horizontal) == [(4.0, 6.0), (9.0, 11.0), (29.0, 31.0)]  # 25th-75th percentile of pass medians
    labels = [t.get_text() for t in latency_ax.get_legend().get_texts()]
    assert "flow_warp (oracle: ground-truth flow) (n=2)" in labels
    table, paths = result["tables"][0]
    md = paths["md"].read_text()
    assert "| flow_warp (oracle: ground-truth flow) |" in md and "oracle rows (flow_warp" in md
    assert pd.read_csv(paths["csv"]).set_index("method").loc["flow_warp", "oracle"] == "ground-truth flow"


def keyframe_spec(tmp: Path) -> Path:
    """DFF and Accel at k = 1, 2, 5 (ground-truth flow), seeds 0, 1: a keyframe-interval grid."""
    return write_report_spec(
        tmp,
        "syn_keyframe",
        "other",
        "model.keyframe_interval",
        [{"product": {"model.name": ["dff", "accel"], "model.keyframe_interval": [1, 2, 5]}}],
        {
            **FIGURE_BASE,
            "model": {
                **FIGURE_BASE["model"],
                "memory_length": 1,
                "update_backbone": "resnet18",
                "flow": {"source": "ground_truth"},
            },
        },
        seeds=[0, 1],
    )


def test_keyframe_intervals_are_connected_cost_curves_per_method(tmp_path: Path) -> None:
    spec = keyframe_spec(tmp_path)
    level = {"dff": 0.40, "accel": 0.50}
    fabricate_records(
        spec, lambda r: level[r.config.model.name] - 0.02 * r.config.model.keyframe_interval + 0.01 * r.seed
    )
    for run in build_grid(spec).runs:
        k, extra = run.config.model.keyframe_interval, 2.0 * (run.config.model.name == "accel")
        median = 10.0 / k + extra
        RunDir(RunDir.of(run.config).path).merge_into_record(
            "latency",
            {
                "modes": {
                    "streaming": {
                        "median_ms": median,
                        "pass_medians_ms": [median - 0.5, median, median + 0.5],
                        "gflops": 1.0 / k,
                    }
                }
            },
            overwrite=True,
        )
    result = build_report([str(spec)], tmp_path / "reports")
    figure = next(f for f in result["figures"] if f.name == "syn_keyframe_accuracy_vs_cost")
    latency_ax, flops_ax = figure.figure.axes
    assert "keyframe cycle" in latency_ax.get_xlabel() and "GFLOPs" in flops_ax.get_xlabel()
    curves = {c.get_label(): c.lines[0] for c in latency_ax.containers if isinstance(c, ErrorbarContainer)}
    oracle = " (oracle: ground-truth flow)"
    assert set(curves) == {f"method=dff{oracle} (n=2)", f"method=accel{oracle} (n=2)"}
    dff = curves[f"method=dff{oracle} (n=2)"]
    assert dff.get_markerfacecolor() == "none"  # oracles are hollow
    dff_x = [round(float(x), 6) for x in dff.get_xdata()]
    assert dff_x == [10.0, 5.0, 2.0]  # ordered by k = 1, 2, 5 and connected
    assert sorted(t.get_text() for t in latency_ax.texts) == sorted(f"k={k}" for k in (1, 2, 5) for _ in "ab")
    table, _ = result["tables"][0]
    expected = sorted(zip(table.frame["ci_low"].round(6), table.frame["ci_high"].round(6)))
    assert sorted((round(lo, 6), round(hi, 6)) for lo, hi in errorbar_extents(flops_ax)) == expected
    assert figure.reading.startswith("method=dff: k=1 ") and "(2.0 ms, 0.2 GFLOPs)" in figure.reading
    assert latency_ax.get_ylim()[0] == 0 and flops_ax.get_ylim()[0] == 0


def test_a_row_that_two_comparison_tables_share_is_one_point(tmp_path: Path) -> None:
    methods = methods_spec(tmp_path)
    sota = write_report_spec(
        tmp_path,
        "syn_sota",
        "sota",
        "model.name",
        [{"product": {"model.name": ["tmanet", "per_frame", "fcn"]}}],
        FIGURE_BASE,
        seeds=[0, 1],
    )
    for spec in (methods, sota):
        fabricate_records(
            spec,
            lambda r: MIOU.get(r.config.model.name, 0.5) + 0.01 * r.seed,
            latency_of=lambda r: LATENCY.get(r.config.model.name, 12.0),
        )
    result = build_report([str(methods), str(sota)], tmp_path / "reports")
    figure = next(f for f in result["figures"] if f.name == "accuracy_vs_latency")
    labels = [t.get_text() for t in figure.figure.axes[0].get_legend().get_texts() if "(n=" in t.get_text()]
    assert sorted(labels) == [
        "fcn (n=2)",
        "flow_warp (oracle: ground-truth flow) (n=2)",
        "per_frame (n=2)",
        "tmanet (n=2)",
    ]


def test_the_same_figure_saves_to_identical_bytes(tmp_path: Path) -> None:
    """No creation date in the PDF: regenerating a committed report from the same records changes no file."""
    from matplotlib.figure import Figure

    from bench.report.plotting import save

    def draw(out: Path) -> list[bytes]:
        fig = Figure()
        fig.subplots().plot([0, 1], [1, 0])
        return [p.read_bytes() for p in save(fig, out, "line")]

    first = draw(tmp_path / "a")
    time.sleep(1.1)  # a PDF creation date has one-second resolution
    assert draw(tmp_path / "b") == first

"""Every report figure type keeps its text on the canvas and apart from the other panels, and class colours
match class names where the classes are colours (the synthetic dataset).

One report is built from fabricated records (with confusion matrices and two tiny checkpoints for the
qualitative strip); each figure is drawn on an Agg canvas and every visible title, axis label, tick label,
suptitle and legend text is checked against the figure's bounding box (``get_window_extent``)."""

from __future__ import annotations

import colorsys
import json

import numpy as np
import pytest
from helpers import fabricate_records, per_image_fabricator, write_report_spec
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from test_figures import FIGURE_BASE, LATENCY, MIOU, keyframe_spec, methods_spec

from bench.config import DataConfig, SyntheticConfig
from bench.data.catalog import dataset_info
from bench.data.classes import HUE_NAMES, synthetic_class_names
from bench.engine.checkpoint import save_checkpoint
from bench.grid.spec import build_grid
from bench.report.build import build_report
from bench.report.curves import curves_figure, read_log
from bench.report.plotting import class_legend, colourise
from bench.run import rundir
from bench.run.model import build_model
from bench.run.rundir import RunDir

TOLERANCE = 1.0  # pixels


def _texts(fig: Figure) -> list[tuple[int, str, object]]:
    """(index of the axes or -1 for the figure, kind, Text) of every visible, non-empty text."""
    found: list[tuple[int, str, object]] = [(-1, "figure text", t) for t in fig.texts]
    for legend in fig.legends:
        found += [(-1, "legend", t) for t in legend.get_texts()]
    for i, ax in enumerate(fig.axes):
        found += [(i, "title", t) for t in (ax.title, ax._left_title, ax._right_title)]
        if not ax.axison:  # ax.axis("off"): no labels or ticks are drawn
            continue
        found += [(i, "axis label", ax.xaxis.label), (i, "axis label", ax.yaxis.label)]
        for axis in (ax.xaxis, ax.yaxis):  # the ticks matplotlib draws (inside the view limits)
            found += [(i, "tick label", tick.label1) for tick in axis._update_ticks()]
        if ax.get_legend() is not None:
            found += [(i, "legend", t) for t in ax.get_legend().get_texts()]
    return [(i, kind, t) for i, kind, t in found if t.get_visible() and t.get_text().strip()]


def layout_problems(fig: Figure) -> list[str]:
    """Texts that leave the canvas, and titles / labels that overlap those of another panel.

    The canvas is the figure's box for a figure with a layout engine (constrained: the multi-panel figures);
    a figure without one is saved with ``bbox_inches="tight"`` (``plotting.save``), whose canvas is what it
    draws, so only the overlaps are checked there."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = (
        fig.bbox
        if fig.get_layout_engine() is not None
        else fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    )
    texts = [(i, kind, t, t.get_window_extent(renderer)) for i, kind, t in _texts(fig)]
    problems = [
        f"{kind} {t.get_text()!r} leaves the canvas: {ext.bounds} vs {box.bounds}"
        for _, kind, t, ext in texts
        if ext.x0 < box.x0 - TOLERANCE
        or ext.y0 < box.y0 - TOLERANCE
        or ext.x1 > box.x1 + TOLERANCE
        or ext.y1 > box.y1 + TOLERANCE
    ]
    labels = [(i, kind, t, ext) for i, kind, t, ext in texts if i >= 0]
    for a, (i, kind_a, ta, ea) in enumerate(labels):
        for j, kind_b, tb, eb in labels[a + 1 :]:
            if i != j and ea.overlaps(eb):
                problems.append(
                    f"{kind_a} {ta.get_text()!r} (panel {i}) overlaps {kind_b} {tb.get_text()!r} (panel {j})"
                )
    return problems


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("layout")
    methods = methods_spec(tmp, "syn_methods_with_a_long_table_name")
    fabricate_records(
        methods, lambda r: MIOU[r.config.model.name] + 0.01 * r.seed, latency_of=lambda r: LATENCY[r.config.model.name]
    )
    for run in build_grid(methods).runs:
        path = RunDir.of(run.config).path / "record.json"
        record = json.loads(path.read_text())
        record["metrics"]["confusion_matrix"] = (np.diag([50, 40, 30, 20]) + 3).tolist()
        path.write_text(json.dumps(record))
        if run.seed == 0 and run.config.model.name != "flow_warp":
            save_checkpoint(
                RunDir.of(run.config).path / "checkpoint.pt", {"model": build_model(run.config).state_dict()}
            )
        RunDir(RunDir.of(run.config).path).merge_into_record(
            "latency",
            {
                "modes": {
                    "streaming": {
                        "median_ms": LATENCY[run.config.model.name],
                        "gflops": LATENCY[run.config.model.name] / 100,
                    }
                }
            },
            overwrite=True,
        )  # the GFLOPs panel beside the latency one
    memory = write_report_spec(
        tmp,
        "syn_mem",
        "memory_length",
        "model.memory_length",
        [{"product": {"model.memory_length": [1, 2, 4]}}],
        FIGURE_BASE,
        seeds=[2, 3],
    )
    fabricate_records(memory, None, per_image_of=per_image_fabricator(lambda r: 0.02 * r.config.model.memory_length))
    aggregation = write_report_spec(
        tmp,
        "syn_agg",
        "aggregation",
        "model.aggregation",
        [{"product": {"model.aggregation": ["concat", "sum"]}}],
        FIGURE_BASE,
        seeds=[4, 5],
    )
    fabricate_records(aggregation, lambda r: 0.6 - 0.05 * (r.config.model.aggregation == "sum"))
    keyframe = keyframe_spec(tmp)
    fabricate_records(
        keyframe,
        lambda r: 0.5 - 0.02 * r.config.model.keyframe_interval,
        latency_of=lambda r: 10.0 / r.config.model.keyframe_interval,
    )
    result = build_report([str(methods), str(memory), str(aggregation), str(keyframe)], tmp / "reports")
    return {f.name: f for f in result["figures"] if f.figure is not None}


def test_every_figure_type_is_drawn(report):
    kinds = {
        "miou_vs_memory_length",
        "bars",
        "accuracy_vs_latency",
        "accuracy_vs_cost",
        "per_class_iou",
        "confusion",
        "qualitative",
    }
    assert all(any(kind in name for name in report) for kind in kinds), sorted(report)


@pytest.mark.parametrize(
    "kind",
    [
        "confusion",
        "qualitative",
        "miou_vs_memory_length",
        "bars",
        "accuracy_vs_latency",
        "accuracy_vs_cost",
        "per_class_iou",
    ],
)
def test_figure_text_stays_on_the_canvas_and_off_other_panels(report, kind):
    for name, result in report.items():
        if kind in name:
            assert layout_problems(result.figure) == [], name


def test_training_curves_text_fits(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / rundir.LOG).write_text(
        "\n".join(json.dumps({"iter": i, "loss": 1.0 / i, "aux_loss": 0.5 / i, "lr": 0.01}) for i in range(1, 4)) + "\n"
    )
    assert layout_problems(curves_figure([read_log(run)])) == []


def _hue_name(rgb) -> str:
    hue = colorsys.rgb_to_hsv(*(v / 255.0 for v in rgb))[0]
    return HUE_NAMES[int(round(hue * 12)) % 12]


@pytest.mark.parametrize("num_classes", [4, 6, 13])
def test_synthetic_classes_are_drawn_in_the_colour_they_are_named_after(num_classes):
    names = synthetic_class_names(num_classes)
    palette = dataset_info(DataConfig(synthetic=SyntheticConfig(num_classes=num_classes))).palette
    drawn = colourise(np.arange(num_classes)[None], palette)[0]
    legend = class_legend(names, palette)
    for k in range(1, num_classes):
        assert names[k].rstrip("0123456789") == _hue_name(palette[k]), (names[k], palette[k])
        assert np.allclose(drawn[k], np.array(palette[k]) / 255) and np.allclose(
            legend[k].get_facecolor()[:3], drawn[k]
        )
    assert names.index("red") == 1 and _hue_name(palette[1]) == "red"


def test_the_strip_uses_the_dataset_palette(report):
    strip = next(r for name, r in report.items() if name.startswith("qualitative"))
    legend = {
        t.get_text(): h.get_facecolor()[:3]
        for t, h in zip(strip.figure.legends[0].get_texts(), strip.figure.legends[0].legend_handles)
    }
    palette = dataset_info(DataConfig(synthetic=SyntheticConfig(num_classes=4))).palette
    for k, name in enumerate(synthetic_class_names(4)):
        assert np.allclose(legend[name], np.array(palette[k]) / 255), name
    assert _hue_name(np.array(legend["red"]) * 255) == "red"

"""The paper-layout comparison table (bench.report.paper_table) from fabricated sota-spec records."""

import math

import pandas as pd
import pytest
from helpers import fabricate_records, per_image_fabricator, write_report_spec

from bench.report.build import build_report

METHODS = ["fcn", "pspnet", "per_frame", "tmanet"]
SHIFT = {"fcn": -0.05, "pspnet": 0.0, "per_frame": -0.02, "tmanet": 0.03}


def _spec(tmp, dataset, memory_length):
    base = {
        "name": dataset,
        "model": {"name": "tmanet", "backbone": "resnet50c", "memory_length": memory_length},
        "data": {"dataset": dataset},
    }
    path = write_report_spec(
        tmp, f"{dataset}_sota", "sota", "model.name", [{"product": {"model.name": METHODS}}], base, [0, 1]
    )
    fabricate_records(path, None, per_image_of=per_image_fabricator(lambda run: SHIFT[run.config.model.name]))
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper")
    specs = [_spec(tmp, "cityscapes", 2), _spec(tmp, "camvid", 4)]
    result = build_report(specs, tmp / "out", figures=False)
    return tmp / "out", result


def test_paper_layout_rows_numbers_and_delta_with_ci(report):
    out, result = report
    assert [name for name, _, _ in result["paper_tables"]] == ["sota_paper"]
    table = pd.read_csv(out / "tables" / "sota_paper.csv", keep_default_na=False)
    by_ours = table.set_index("ours")
    # paper order: flow methods, per-frame models, TDNet, TMANet
    methods = list(table["method (paper)"])
    assert (
        methods.index("DFF")
        < methods.index("FCN-50")
        < methods.index("PSPNet-50")
        < methods.index("TDNet-50")
        < methods.index("TMANet-50 (Ours-50)")
    )
    assert by_ours.loc["fcn", "Cityscapes paper"] == "70.1" and by_ours.loc["fcn", "CamVid paper"] == "—"
    assert by_ours.loc["pspnet", "CamVid paper"] == "74.7" and by_ours.loc["tmanet", "CamVid paper"] == "76.5"
    assert by_ours.loc["per_frame", "method (paper)"] == "—" and by_ours.loc["per_frame", "Cityscapes paper"] == "—"
    unrun = table[table["ours"].isin(["not reimplemented", "not run in these specs"])].set_index("method (paper)")
    assert {"GRFP", "LVS", "TDNet-50", "DFF", "NetWarp"} <= set(unrun.index)
    assert unrun.loc["GRFP", "ours"] == "not reimplemented" and unrun.loc["GRFP", "CamVid paper"] == "66.1"
    assert unrun.loc["PSPNet-101", "ours"] == "not run in these specs"
    # Δ paper = mean - paper, its interval the row's CI minus the paper number
    spec_table = pd.read_csv(out / "tables" / "cityscapes_sota.csv").set_index("method")
    row = spec_table.loc["tmanet"]
    cell = by_ours.loc["tmanet", "Cityscapes Δ paper [95% CI]"]
    expected = f"{row['miou_mean'] - 80.3:+.1f} [{row['ci_low'] - 80.3:+.1f}, {row['ci_high'] - 80.3:+.1f}]"
    assert cell.startswith(expected)
    inside = row["ci_low"] <= 80.3 <= row["ci_high"]
    assert cell.endswith("(paper inside CI)" if inside else "(paper outside CI)")
    assert not math.isnan(row["ci_low"])


def test_markdown_notes_and_index(report):
    out, _ = report
    text = (out / "tables" / "sota_paper.md").read_text()
    assert "reproduced row's 95% CI minus the paper's single number" in text
    assert " match" not in text.lower().replace("`match`", "") and "miss" not in text.lower()
    assert "sota_paper" in (out / "index.md").read_text()


def test_reference_entries_for_the_new_rows():
    from bench.report.paper import load_paper_reference, paper_entry

    ref = load_paper_reference()
    mmseg = [e for e in ref["entries"] if e["method"] == "PSPNet R50-D8 (mmseg model zoo)"]
    assert mmseg[0]["miou"] == 79.59 and "metafile" in mmseg[0]["source"]
    config = {"model.name": "pspnet", "model.backbone": "resnet101c", "model.pool_scales": "[1, 2, 3, 6]"}
    assert paper_entry(ref, "camvid", config)["miou"] == 76.2
    assert paper_entry(ref, "cityscapes", {**config, "model.pool_scales": "[1, 2]"}) is None
    assert paper_entry(ref, "cityscapes", {"model.name": "per_frame", "model.backbone": "resnet50c"}) is None

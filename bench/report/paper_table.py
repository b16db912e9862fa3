"""The TMANet paper's comparison table, laid out as the paper lays it out, from the ``sota`` report tables.

    bench report ablations/cityscapes_sota.yaml ablations/camvid_sota.yaml   # -> reports/tables/sota_paper.{md,csv}
    bench report ablations/synthetic_sota.yaml                               # -> synthetic_sota_paper.{md,csv}

    from bench.report.paper_table import write_paper_tables
    written = write_paper_tables(tables, "reports", reference)   # [(name, {"md": path, "csv": path}, reading)]

Input: the ``Table``s of ``bench.report.tables.summarise`` whose spec has ``ablation: sota`` (one per dataset).
The paper's table (TMANet, ICIP 2021, repo ``images/sota.png``) has one row per method in four groups (video /
flow methods, per-frame image models, TDNet, TMANet) and one mIoU column per dataset (Cityscapes, CamVid). Here
each line is one of the suite's rows (a ``model.name`` plus the keys that vary with it) with, per dataset: the
reproduced mean mIoU and its 95% CI and n (from ``tables``), ETC's temporal consistency, the paper's number
(``results/paper_reference.yaml``, via the entry whose ``match`` the row's config satisfies, or the same paper
method on the other dataset), and Δ paper = reproduced − paper with the row's CI shifted by the paper's single
number (the paper reports no spread). Whether the paper's number lies inside the row's CI is stated as such;
nothing is called a match or a miss. Paper rows that no suite row reproduces are listed too: "not
reimplemented" when the reference has no ``match`` for them (GRFP, LVS, TDNet), else "not run in these specs".
Synthetic tables (no paper numbers) get their own file, ``synthetic_sota_paper``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.paper import method_entry, paper_entry
from bench.report.table_files import make_folder
from bench.report.table_model import MISSING, Table, fmt_ci, row_marks

# The paper's row order and groups (images/sota.png of wanghao9610/TMANet, top to bottom).
PAPER_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("video / flow methods", ("DFF", "GRFP", "NetWarp", "LVS")),
    ("per-frame image models", ("FCN-50", "PSPNet-50", "PSPNet-101")),
    ("temporally distributed", ("TDNet-50",)),
    ("temporal memory", ("TMANet-50 (Ours-50)",)),
)
# the group of a suite row that has no paper counterpart
SUITE_GROUPS: dict[str, str] = {
    "flow_warp": "video / flow methods",
    "dff": "video / flow methods",
    "accel": "video / flow methods",
    "per_frame": "per-frame image models",
    "fcn": "per-frame image models",
    "pspnet": "per-frame image models",
    "local_tmanet": "temporal memory",
    "tmanet": "temporal memory",
}
DATASET_NAMES: dict[str, str] = {"cityscapes": "Cityscapes", "camvid": "CamVid", "synthetic": "synthetic"}


@dataclass
class Line:
    """One line of the paper-layout table: a suite row (or a paper row nobody reproduces) across datasets."""

    group: str
    paper_method: str  # the paper's row name, or "" for a suite-only row
    ours: str  # the suite row's label, or why there is none
    backbone: str
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)  # dataset -> values
    notes: list[str] = field(default_factory=list)


def _dataset(table: Table) -> str:
    return str(table.runs["dataset"].iloc[0])


def _row_config(table: Table, i: int) -> dict[str, Any]:
    """The flattened config of row ``i``'s first run (``cfg:`` columns of ``table.runs``)."""
    first = str(table.frame.loc[i, "run_ids"]).split()[0]
    run = table.runs[table.runs["run_id"].astype(str) == first].iloc[0]
    return {k.removeprefix("cfg:"): v for k, v in run.items() if str(k).startswith("cfg:")}


def _label(table: Table, i: int) -> str:
    """The row's name with its marks (oracle input, at chance, constant prediction), as in every other layout."""
    row = table.frame.loc[i]
    extra = ", ".join(f"{k}={row[k]}" for k in table.key_columns[1:])
    return f"{row[table.factor_label]}" + (f" ({extra})" if extra else "") + row_marks(row)


def _cell(table: Table, i: int, paper: float | None) -> dict[str, Any]:
    row = table.frame.loc[i]
    cell = {
        "miou": row["miou_mean"],
        "ci_low": row["ci_low"],
        "ci_high": row["ci_high"],
        "n": int(row["n"]),
        "etc_tc": row.get("etc_tc_mean", math.nan),
        "paper": math.nan if paper is None else paper,
    }
    if paper is not None:
        cell.update(delta=row["miou_mean"] - paper, delta_low=row["ci_low"] - paper, delta_high=row["ci_high"] - paper)
    return cell


def collect_lines(tables: list[Table], reference: dict[str, Any]) -> tuple[list[Line], list[str]]:
    """The lines of the paper-layout table (suite rows, then paper rows nobody ran) and the datasets shown."""
    datasets = list(dict.fromkeys(_dataset(t) for t in tables))
    lines: dict[str, Line] = {}
    for table in tables:
        dataset = _dataset(table)
        for i in table.frame.index:
            config = _row_config(table, i)
            label = _label(table, i)
            entry = paper_entry(reference, dataset, config) if dataset != "synthetic" else None
            line = lines.setdefault(
                label,
                Line(
                    SUITE_GROUPS.get(str(config.get("model.name")), "other"),
                    "",
                    label,
                    str(config.get("model.backbone", "")),
                ),
            )
            if entry is not None and not line.paper_method:
                line.paper_method = str(entry["method"])
            if entry is not None and entry.get("caveat"):
                line.notes.append(f"{dataset}: {entry['caveat']}")
    for line in lines.values():
        for table in tables:
            line.cells[_dataset(table)] = _line_cell(line, table, reference)
    rows = list(lines.values())
    if "synthetic" not in datasets:
        rows += _unreproduced(reference, datasets, {line.paper_method for line in rows})
    return _ordered(rows), datasets


def _line_cell(line: Line, table: Table, reference: dict[str, Any]) -> dict[str, Any]:
    """The line's values on ``table``'s dataset: a reproduced row gets the paper number only when its own config
    matches the line's paper method there; without a row the paper's number is shown alone."""
    dataset = _dataset(table)
    i = next((j for j in table.frame.index if _label(table, j) == line.ours), None)
    if i is None:
        entry = method_entry(reference, dataset, line.paper_method) if line.paper_method else None
        return {"paper": float(entry["miou"]) if entry is not None else None}
    entry = paper_entry(reference, dataset, _row_config(table, i)) if dataset != "synthetic" else None
    same = entry is not None and entry["method"] == line.paper_method
    return _cell(table, i, float(entry["miou"]) if same else None)


def _unreproduced(reference: dict[str, Any], datasets: list[str], taken: set[str]) -> list[Line]:
    """Paper rows without a suite row: "not reimplemented" (no ``match`` anywhere) or "not run in these specs"."""
    lines = []
    for group, methods in PAPER_GROUPS:
        for method in methods:
            if method in taken:
                continue
            entries = {d: method_entry(reference, d, method) for d in datasets}
            runnable = any(e is not None and e.get("match") for e in entries.values())
            ours = "not run in these specs" if runnable else "not reimplemented"
            cells = {d: {"paper": float(e["miou"]) if e is not None else None} for d, e in entries.items()}
            lines.append(Line(group, method, ours, "", cells))
    return lines


def _ordered(lines: list[Line]) -> list[Line]:
    """Paper order: by group, then the paper's row order, suite-only rows after the paper rows of their group."""
    groups = [g for g, _ in PAPER_GROUPS]
    order = [m for _, methods in PAPER_GROUPS for m in methods]

    def key(line: Line) -> tuple[int, int]:
        group = groups.index(line.group) if line.group in groups else len(groups)
        rank = order.index(line.paper_method) if line.paper_method in order else len(order)
        return group, rank

    return sorted(lines, key=key)


def _fmt(value: Any, digits: int = 1, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _reproduced(cell: dict[str, Any]) -> str:
    if "miou" not in cell:
        return MISSING
    return f"{_fmt(cell['miou'])} {fmt_ci(cell['ci_low'], cell['ci_high'])} (n={cell['n']})"


def _delta(cell: dict[str, Any]) -> str:
    if "delta" not in cell:
        return MISSING
    if math.isnan(cell["delta_low"]):
        return f"{_fmt(cell['delta'], signed=True)} {MISSING} (no CI)"
    inside = "paper inside CI" if cell["delta_low"] <= 0 <= cell["delta_high"] else "paper outside CI"
    return f"{_fmt(cell['delta'], signed=True)} {fmt_ci(cell['delta_low'], cell['delta_high'], signed=True)} ({inside})"


def display(lines: list[Line], datasets: list[str]) -> pd.DataFrame:
    """Strings: group, paper method, ours, backbone, then per dataset mIoU [CI] (n), paper, Δ paper [CI], ETC TC."""
    rows = []
    for line in lines:
        row = {
            "group": line.group,
            "method (paper)": line.paper_method or MISSING,
            "ours": line.ours,
            "backbone": line.backbone or MISSING,
        }
        for dataset in datasets:
            name, cell = DATASET_NAMES.get(dataset, dataset), line.cells.get(dataset, {})
            row[f"{name} mIoU [95% CI]"] = _reproduced(cell)
            if dataset != "synthetic":
                row[f"{name} paper"] = _fmt(cell.get("paper"))
                row[f"{name} Δ paper [95% CI]"] = _delta(cell)
            row[f"{name} ETC TC"] = _fmt(cell.get("etc_tc"))
        rows.append(row)
    return pd.DataFrame(rows)


def _notes(lines: list[Line], reference: dict[str, Any], synthetic: bool) -> list[str]:
    notes = [
        "mIoU and ETC TC (Liu et al., ECCV 2020; bench/metrics/temporal.py) in percent; [95% CI] and n from the "
        "row's runs (bench.report.stats: mean ± t·s/√n over seeds; one run: bootstrap over its images), the "
        "same as the spec's own table (tables/<spec>.md) which also has std, Δ ref (vs per_frame) and "
        "p-values."
    ]
    if not synthetic:
        src = reference.get("source") or {}
        notes.append(
            "Δ paper = reproduced − paper in mIoU points; its interval is the reproduced row's 95% CI minus "
            "the paper's single number (the paper gives no spread, so the interval holds only our run-to-run "
            "uncertainty). 'paper inside CI' says only that the paper's number lies in that interval."
        )
        notes.append(
            f"paper numbers: {src.get('paper')}, arXiv {src.get('arxiv')}, {src.get('table')}; rows with "
            "another source say so in results/paper_reference.yaml (e.g. Accel-18: the Accel README)."
        )
        notes.append(
            "not reimplemented: the suite has no model for that row; not run in these specs: the suite "
            "can run it (e.g. PSPNet-101: model.name=pspnet with a ResNet-101 backbone) but the specs "
            "do not include it."
        )
    else:
        notes.append("synthetic data: no paper numbers; the rows mirror ablations/{cityscapes,camvid}_sota.yaml.")
    for line in lines:
        notes.extend(f"{line.ours}: {note}" for note in dict.fromkeys(line.notes))
    return notes


def reading(lines: list[Line], datasets: list[str]) -> str:
    """One line: the reproduced rows per dataset with Δ paper where the paper has a number."""
    parts = []
    for dataset in datasets:
        cells = [(line, line.cells[dataset]) for line in lines if "miou" in line.cells.get(dataset, {})]
        with_paper = [f"{line.ours} {_fmt(c['delta'], signed=True)}" for line, c in cells if "delta" in c]
        text = f"{DATASET_NAMES.get(dataset, dataset)}: {len(cells)} reproduced rows"
        parts.append(text + (f", Δ paper {', '.join(with_paper)}" if with_paper else ""))
    return "; ".join(parts)


def write_paper_tables(
    tables: list[Table], out_dir: str | Path, reference: dict[str, Any]
) -> list[tuple[str, dict[str, Path], str]]:
    """``<out_dir>/tables/{sota_paper, synthetic_sota_paper}.{md,csv}`` from the ``sota`` tables among ``tables``."""
    sota = [t for t in tables if t.ablation == "sota"]
    families = {
        "sota_paper": [t for t in sota if _dataset(t) != "synthetic"],
        "synthetic_sota_paper": [t for t in sota if _dataset(t) == "synthetic"],
    }
    written = []
    for name, family in families.items():
        if not family:
            continue
        lines, datasets = collect_lines(family, reference)
        shown = display(lines, datasets)
        folder = make_folder(Path(out_dir) / "tables", "--out")
        paths = {"md": folder / f"{name}.md", "csv": folder / f"{name}.csv"}
        shown.to_csv(paths["csv"], index=False)
        notes = "\n".join(f"- {n}" for n in _notes(lines, reference, name.startswith("synthetic")))
        origins = ", ".join(f"`{t.origin}`" for t in family)
        paths["md"].write_text(
            f"# {name}: the TMANet paper's comparison table, regenerated\n\nSources: {origins}\n\n"
            f"{shown.to_markdown(index=False, tablefmt='github', disable_numparse=True)}\n\n{notes}\n"
        )
        written.append((name, paths, reading(lines, datasets)))
    return written

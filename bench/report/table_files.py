"""A table on disk: Markdown, LaTeX (booktabs, symbols as commands) and CSV.

write_table(table, "reports")     # reports/tables/<name>.{md,tex,csv}
display_frame(table)              # the printed columns (percentages, CIs, marks)
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.report.sources import ReportError
from bench.report.table_model import (
    CONSTANT_MARK,
    MISSING,
    UNSTABLE_MARK,
    Table,
    fmt,
    fmt_ci,
    fmt_p,
    key_text,
    row_marks,
)


def display_frame(table: Table) -> pd.DataFrame:
    """Strings for Markdown / LaTeX: 2 decimals, signed deltas, CIs in brackets, "—" where there is no value."""
    frame = table.frame
    shown = pd.DataFrame({k: frame[k].map(key_text) for k in table.key_columns})
    factor = table.factor_label
    shown[factor] = [f"{v}{row_marks(row)}" for v, (_, row) in zip(shown[factor], frame.iterrows())]
    shown["mIoU (%)"] = frame["miou_mean"].map(fmt)
    shown["std"] = frame["miou_std"].map(fmt)
    shown["n"] = frame["n"].astype(int).astype(str)
    shown["95% CI"] = [fmt_ci(lo, hi) for lo, hi in zip(frame["ci_low"], frame["ci_high"])]
    shown["Δ ref"] = [fmt(d, 2, signed=True) + mark for d, mark in zip(frame["delta_ref"], frame["sig_ref"])]
    if table.reference is not None:
        shown.loc[table.reference, "Δ ref"] = "ref"
    shown["Δ ref 95% CI"] = [
        fmt_ci(lo, hi, 2, signed=True) for lo, hi in zip(frame["delta_ref_low"], frame["delta_ref_high"])
    ]
    shown["p"] = frame["p_ref"].map(fmt_p)
    constant = frame["constant_runs"] > 0 if "constant_runs" in frame else pd.Series([False] * len(frame))
    temporal = [("pixel agreement (%)", "pixel_agreement_mean"), ("ETC TC (%)", "etc_tc_mean")]
    temporal += [  # VSPW's video consistency, only in tables of runs that measured it
        (f"mVC_{w} (%)", f"mvc_{w}_mean")
        for w in (8, 16)
        if f"mvc_{w}_mean" in frame and frame[f"mvc_{w}_mean"].notna().any()
    ]
    for column, source in temporal:  # a constant prediction agrees with itself: trivially 100%, marked
        shown[column] = [
            fmt(v) + (CONSTANT_MARK if flag and not math.isnan(v) else "") for v, flag in zip(frame[source], constant)
        ]
    unstable = frame["latency_unstable"] if "latency_unstable" in frame else [False] * len(frame)
    shown["latency ms"] = [
        UNSTABLE_MARK + fmt(v) if flag and not math.isnan(v) else fmt(v)
        for v, flag in zip(frame["latency_ms"], unstable)
    ]
    shown["paper mIoU"] = frame["paper_miou"].map(lambda v: fmt(v, 1))
    shown["Δ paper"] = frame["delta_paper"].map(lambda v: fmt(v, 2, signed=True))
    return shown


def make_folder(path: Path, what: str) -> Path:
    """``path`` as a folder (created if needed); a file in the way is a ReportError naming ``what``."""
    if path.exists() and not path.is_dir():
        raise ReportError(f"{what} {path} is a file, not a folder; pass a new or existing folder instead")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportError(f"{what} {path}: cannot create the folder ({err.strerror}); pass another folder") from err
    return path


# symbols of the tables as LaTeX commands: pdflatex without unicode set-up rejects the characters themselves
TEX_SYMBOLS = {
    "Δ": r"$\Delta$",
    "−": "$-$",
    "±": r"$\pm$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "×": r"$\times$",
    "–": "--",
    "—": "---",
    "…": r"\ldots{}",
    "<": "$<$",
    ">": "$>$",
}


def tex_symbols(latex: str) -> str:
    """``latex`` with each of ``TEX_SYMBOLS`` replaced by its command (``Δ ref`` -> ``$\\Delta$ ref``)."""
    return latex.translate(str.maketrans(TEX_SYMBOLS))


def write_table(table: Table, out_dir: str | Path) -> dict[str, Path]:
    """``<out_dir>/tables/<name>.{md,tex,csv}``; returns the paths by suffix."""
    folder = make_folder(Path(out_dir) / "tables", "--out")
    paths = {ext: folder / f"{table.name}.{ext}" for ext in ("md", "tex", "csv")}
    table.frame.to_csv(paths["csv"], index=False, float_format="%.4f")
    shown = display_frame(table)
    align = ("left",) * len(table.key_columns) + ("right",) * (shown.shape[1] - len(table.key_columns))
    notes_md = "\n".join(f"- {n}" for n in table.notes)
    paths["md"].write_text(
        f"# {table.name}\n\nSource: `{table.origin}` (ablation: {table.ablation})\n\n"
        f"{shown.to_markdown(index=False, tablefmt='github', disable_numparse=True, colalign=align)}\n\n{notes_md}\n"
    )
    latex = tex_symbols(
        shown.replace({MISSING: "---"})
        .style.hide(axis="index")
        .format(escape="latex")
        .format_index(escape="latex", axis=1)
        .to_latex(
            hrules=True,
            column_format="".join(a[0] for a in align),
            caption=f"{table.name.replace('_', ' ')}: reproduced mIoU vs paper",
        )
    )
    tex_notes = "".join(f"% {n}\n" for n in table.notes)
    paths["tex"].write_text(
        f"% generated by bench report from {table.origin}; needs \\usepackage{{booktabs}}\n{tex_notes}{latex}"
    )
    return paths

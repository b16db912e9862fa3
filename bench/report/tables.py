"""Report tables (Markdown, LaTeX, CSV) with statistics, next to the paper's numbers.

    bench report ablations/synthetic_memory_length.yaml ablations/synthetic_methods.yaml   # grid specs
    bench report results/runs --out reports                                                   # or folders
    bench report ablations/synthetic_memory_length.yaml train.iters=10   # the overrides given to bench sweep
    bench report results/runs --strict                                   # stop at the first invalid record

Each source becomes one table, ``<out>/tables/<name>.{md,tex,csv}``: a grid spec (``ablations/*.yaml``) gives
a table named after the spec with one row per value of its ``factor`` (seeds pooled); a folder gives a table of
every ``record.json`` under it, one row per distinct config. Per row: mean ± std over seeds, n, a 95% CI, and
the difference to the reference row (``per_frame`` for method tables, else the factor's value in the grid's
base config) with its 95% CI, p-value and significance mark (``bench.report.stats``); then the paper's
reported mIoU where one exists (``results/paper_reference.yaml``), reproduced − paper, and a note saying where
the number comes from or why it is missing. Every pair of rows is compared (Welch t-test over seeds,
Holm-adjusted; docs/statistics.md) and the summary line (``best_text``) states each pair; a row is called
"best" only when it is significantly better than every other row. A row of runs fed an oracle input is labelled
"(oracle: ground-truth flow)"; the first note (and the CSV's per-row columns commit, dirty, torch, timm, numpy,
device, hardware) give the provenance, flagged when the runs mix environments. Figures go to
``<out>/figures`` (see ``bench.report.figures``) and ``<out>/index.md`` links everything with a one-line
reading.

Conventions: metrics are stored as fractions and printed as percentages; ``std`` is the sample standard
deviation over seeds (ddof=1, empty when n = 1); latency is the streaming-mode median in ms (mean over seeds;
``~`` marks a latency the measurement flagged unstable).
Only records with ``status: done`` count.

Which runs a table used is listed in its notes (and on the console): for a spec, the run ids its expansion
(with the command-line overrides) has records for and those it lacks, plus a hint when the spec's last sweep
ran with other overrides. A ``record.json`` that fails ``validate_record`` is skipped with a warning naming
it and why (``--strict``: the first one is an error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.config import Config, to_dict
from bench.report.frames import get_or, mean_or_nan, per_class_frame, runs_frame, varying_keys
from bench.report.paper import paper_number
from bench.report.provenance import PROVENANCE_COLUMNS, combined, provenance_note
from bench.report.sources import ReportError, TableSource
from bench.report.stats import (
    ALPHA,
    NO_TEST,
    REPLICATES,
    RNG_SEED,
    SIG_LEGEND,
    BestResult,
    Comparison,
    RunCounts,
    StatsError,
    best_row,
    chance_miou,
    counts_from_record,
    oriented,
    pairwise,
    row_stats,
)

MISSING = "—"
UNSTABLE_MARK = "~"  # prefix of a latency whose repeated passes disagree (bench.evaluation.latency.summarise_passes)
# CSV column order after the row keys
STAT_COLUMNS: tuple[str, ...] = (
    "oracle",
    "miou_mean",
    "miou_std",
    "n",
    "ci_low",
    "ci_high",
    "ci_method",
    "delta_ref",
    "delta_ref_low",
    "delta_ref_high",
    "p_ref",
    "p_ref_raw",
    "sig_ref",
    "delta_ref_method",
)
ORACLE_LABEL = "(oracle: {})"  # appended to the row label of a run fed an oracle input (frames.oracle_input)


@dataclass
class Table:
    """A summary table: numeric ``frame`` (CSV), its row keys, statistics, and notes printed under it."""

    name: str
    ablation: str
    factor_label: str
    key_columns: list[str]  # display names of the row keys, factor first
    key_sources: list[str]  # their ``cfg:<dotted key>`` columns in ``runs``
    frame: pd.DataFrame
    runs: pd.DataFrame
    per_class: pd.DataFrame
    notes: list[str]
    origin: str
    reference: int | None = None  # frame row of the reference (deltas are to it); None when absent
    best: BestResult | None = None  # frame row significantly better than every other row, if any
    pairs: dict[tuple[int, int], Comparison] = field(default_factory=dict)  # (i, j) -> row i - row j, Holm-adjusted
    provenance: str = ""  # commit, versions, device and hardware of its runs (bench.report.provenance)
    chance: dict[str, float] = field(default_factory=dict)  # dataset -> majority-class mIoU (%)
    stat_problems: list[str] = field(default_factory=list)  # comparisons that could not be made, and why


def _label(key: str) -> str:
    """``cfg:model.memory_length`` -> ``memory_length``, ``cfg:model.flow.source`` -> ``flow.source``,
    ``cfg:model.name`` -> ``method``: the dotted key without its section."""
    key = key.removeprefix("cfg:")
    return "method" if key == "model.name" else key.split(".", 1)[-1]


def _sort_value(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, str(value))


def _row_keys(source: TableSource, runs: pd.DataFrame) -> list[str]:
    """The ``cfg:`` columns that make a row: the factor, then keys that still vary once it is fixed."""
    vary = varying_keys(runs)
    factor_col = f"cfg:{source.factor}" if source.factor else None
    if factor_col is not None and factor_col not in runs.columns:
        raise ReportError(f"{source.origin}: factor {source.factor!r} is not a config key of its records")
    if factor_col is None:  # a folder: the method if it varies, else the first varying key
        factor_col = "cfg:model.name" if "cfg:model.name" in vary or not vary else vary[0]
    # blank values (a key the run's model does not take) never make a row of their own
    distinct = lambda s: s.dropna().astype(str).nunique()  # noqa: E731
    extra = [c for c in vary if c != factor_col and runs.groupby(factor_col, dropna=False)[c].agg(distinct).max() > 1]
    return [factor_col] + extra


def summarise(source: TableSource, reference: dict[str, Any]) -> Table:
    """Group the source's runs by factor value (and any other varying key) -> statistics, paper number, deltas."""
    runs = runs_frame(source.records)
    if runs.empty:
        raise ReportError(f"{source.origin}: no finished run records")
    keys = _row_keys(source, runs)
    rows = []
    for values, group in runs.groupby(keys, dropna=False, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        first = {k.removeprefix("cfg:"): v for k, v in group.iloc[0].items() if str(k).startswith("cfg:")}
        paper, note = paper_number(reference, group["dataset"].iloc[0], first, source.ablation)
        mean = float(group["miou"].mean())
        row = dict(zip(keys, values))
        row.update(
            {
                "miou_mean": mean,
                "miou_std": float(group["miou"].std(ddof=1)) if len(group) > 1 else math.nan,
                "n": int(len(group)),
                "pixel_agreement_mean": mean_or_nan(group["pixel_agreement"]),
                "etc_tc_mean": mean_or_nan(group["etc_tc"]),
                "latency_ms": float(group["latency_ms"].mean()) if group["latency_ms"].notna().any() else math.nan,
                "latency_unstable": bool(group["latency_unstable"].any()),
                "latency_iqr_ms": mean_or_nan(group["latency_iqr_ms"]),
                "gflops": mean_or_nan(group["gflops"]),
                "latency_q25_ms": mean_or_nan(group["latency_q25_ms"]),
                "latency_q75_ms": mean_or_nan(group["latency_q75_ms"]),
                "oracle": combined(v for v in group["oracle"] if v),
                "paper_miou": paper if paper is not None else math.nan,
                "delta_paper": mean - paper if paper is not None else math.nan,
                "paper_note": note,
                "run_ids": " ".join(str(r) for r in group["run_id"]),
                **{key: combined(group[key].astype(str)) for key in PROVENANCE_COLUMNS},
            }
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    factor_col = keys[0]
    order = source.factor_order or sorted(frame[factor_col].unique(), key=_sort_value)
    rank = {v: i for i, v in enumerate(order)}
    frame = frame.sort_values(by=factor_col, key=lambda s: s.map(lambda v: rank.get(v, len(rank))), kind="stable")
    frame = frame.reset_index(drop=True).rename(columns={k: _label(k) for k in keys})
    table = Table(
        name=source.name,
        ablation=source.ablation,
        factor_label=_label(factor_col),
        key_columns=[_label(k) for k in keys],
        key_sources=keys,
        frame=frame,
        runs=runs,
        per_class=per_class_frame(source.records),
        notes=[],
        origin=source.origin,
    )
    add_statistics(table, source)
    table.provenance = provenance_note(source.records)
    table.notes = [table.provenance + "."] + _table_notes(source, table, reference)
    return table


# --------------------------------------------------------------------------------------------------
# statistics (bench.report.stats) on the table rows


def reference_value(source: TableSource, factor_key: str) -> Any:
    """The factor value deltas are measured against: ``per_frame`` for methods, else the grid's base value.

    A spec's base value is its base config (+ ``overrides``) at ``factor_key``; a folder uses the config
    dataclass default (memory_length 2, aggregation concat, encoding 1x1+3x3, the paper's setting).
    """
    if factor_key == "model.name":
        return "per_frame"
    if source.base_value is not None:
        return source.base_value
    return get_or(to_dict(Config()), factor_key)


def _row_counts(table: Table, by_run: dict[str, RunCounts]) -> list[list[RunCounts]]:
    return [[by_run[i] for i in str(ids).split()] for ids in table.frame["run_ids"]]


def _counts_by_run(source: TableSource) -> dict[str, RunCounts]:
    try:
        return {str(r.get("run_id")): counts_from_record(r) for r in source.records}
    except StatsError as err:
        raise ReportError(f"{source.origin}: {err}") from err


def _seed_level(runs: list[RunCounts]) -> list[RunCounts]:
    """The runs without their per-image counts (for rows whose runs were scored on different images)."""
    return [RunCounts(r.run_id, r.seed, r.miou) for r in runs]


def _row_groups(table: Table, source: TableSource) -> list[list[RunCounts]]:
    """The runs of each row; a row whose runs were scored on different image lists keeps seed-level values only
    (named in ``table.stat_problems``)."""
    groups = _row_counts(table, _counts_by_run(source))
    for i, group in enumerate(groups):
        try:
            row_stats(group)
        except StatsError as err:
            table.stat_problems.append(f"row {i + 1}: {err}; its runs' stored mIoU are used as they are")
            groups[i] = _seed_level(group)
    return groups


def add_statistics(table: Table, source: TableSource) -> None:
    """CI per row, every pairwise comparison (Welch, Holm-adjusted), reference deltas with CI / p / mark,
    "best", and the chance level, written into ``table``. Rows that cannot be compared (scored on different
    images) are named in ``table.stat_problems``."""
    groups = _row_groups(table, source)
    frame = table.frame
    row_stats_ = [row_stats(g) for g in groups]
    frame["ci_low"] = [100 * s.ci_low for s in row_stats_]
    frame["ci_high"] = [100 * s.ci_high for s in row_stats_]
    frame["ci_method"] = [s.ci_method for s in row_stats_]
    wanted = reference_value(source, table.key_sources[0].removeprefix("cfg:"))
    matches = [i for i, v in enumerate(frame[table.factor_label]) if str(v) == str(wanted)]
    table.reference = matches[0] if matches else None
    table.pairs = pairwise(groups)
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            if (i, j) not in table.pairs:
                table.stat_problems.append(
                    f"{_row_name(table, i)} vs {_row_name(table, j)}: evaluated on "
                    "different images (per_image.names differ)"
                )
    comparisons = [
        None if table.reference is None or i == table.reference else oriented(table.pairs, i, table.reference)
        for i in range(len(groups))
    ]
    for column, attr in (("delta_ref", "delta"), ("delta_ref_low", "ci_low"), ("delta_ref_high", "ci_high")):
        frame[column] = [100 * getattr(c, attr) if c else math.nan for c in comparisons]
    frame["p_ref"] = [c.p_adjusted if c else math.nan for c in comparisons]
    frame["p_ref_raw"] = [c.p_value if c else math.nan for c in comparisons]
    frame["sig_ref"] = [c.mark if c else "" for c in comparisons]
    frame["delta_ref_method"] = [c.method if c else "" for c in comparisons]
    table.best = best_row(groups, table.pairs)
    table.frame = frame[
        table.key_columns
        + [c for c in STAT_COLUMNS if c in frame]
        + [c for c in frame.columns if c not in STAT_COLUMNS and c not in table.key_columns]
    ]
    _add_chance(table, _counts_by_run(source))


def _add_chance(table: Table, by_run: dict[str, RunCounts]) -> None:
    for dataset, runs in table.runs.groupby("dataset", dropna=False):
        labelled = [by_run[str(i)] for i in runs["run_id"] if by_run[str(i)].label_pixels is not None]
        if labelled:
            table.chance[str(dataset)] = 100 * chance_miou(labelled[0].label_pixels)


def method_note(table: Table) -> str:
    """How the table's statistics were made (docs/statistics.md), stated under every table."""
    tested = sum(1 for c in table.pairs.values() if c.tested)
    holm = (
        f"p-values Holm-adjusted over the table's {tested} tested pairwise comparisons (the p column and "
        "the marks are adjusted; the CSV keeps the raw p as p_ref_raw; CIs are unadjusted 95%)"
        if tested > 1
        else "one comparison tested, no multiplicity correction"
        if tested == 1
        else "no comparison tested (every pair has a row with n < 2)"
    )
    one_run = (
        "; a row with n = 1: 95% CI = percentile bootstrap over validation images "
        f"({REPLICATES} replicates, RNG seed {RNG_SEED}), a within-run interval that ignores the "
        "seed-to-seed spread"
        if "images, n = 1" in set(table.frame["ci_method"])
        else ""
    )
    return (
        "statistics (docs/statistics.md): the seed (training run) is the unit; each run's mIoU is recomputed "
        "from its per-image counts where the record has them; row 95% CI = mean ± t(n−1)·s/√n over seeds"
        f"{one_run}; differences: Welch t-test on seed-level mIoU (two-sided, Welch–Satterthwaite df), "
        f"95% CI = Δ ± t(df)·SE; no test and no CI when a row has n < 2 ({NO_TEST}); {holm}."
    )


def _statistics_notes(table: Table) -> list[str]:
    frame = table.frame
    factor = table.factor_label
    notes = [method_note(table)]
    if table.reference is None:
        notes.append(f"no reference row (its {factor} is not in this table): no Δ ref.")
    else:
        notes.append(
            f"Δ ref = row − reference row ({factor} = {frame.loc[table.reference, factor]}, marked `ref`) "
            f"in mIoU points, mean over all runs of each row, with its 95% CI and two-sided p; "
            f"{SIG_LEGEND}."
        )
    oracles = [_row_name(table, i) for i in frame.index if frame.loc[i, "oracle"]]
    if oracles:
        notes.append(
            f"oracle rows ({', '.join(oracles)}): the model was given ground-truth input that a deployed "
            "method does not have (model.flow.source = ground_truth); an upper bound, not a competitor, "
            "and never on a Pareto front."
        )
    notes.extend(f"not compared: {problem}" for problem in dict.fromkeys(table.stat_problems))
    notes.append(best_text(table) + ".")
    notes.extend(
        f"chance level ({dataset}): {value:.1f} mIoU, predicting the majority class everywhere."
        for dataset, value in table.chance.items()
    )
    return notes


def _table_notes(source: TableSource, table: Table, reference: dict[str, Any]) -> list[str]:
    frame = table.frame
    notes = [
        "mIoU, pixel agreement and ETC TC in percent; std = sample standard deviation over seeds (ddof=1); "
        "n = finished runs (seeds); latency = streaming-mode median ms per frame (`bench latency`), mean over "
        "seeds; Δ paper = reproduced − paper.",
        "pixel agreement = pooled fraction of pixels whose prediction at t equals the flow-warped prediction at "
        "t-1 (one pair per clip); ETC TC = ETC's temporal consistency (Liu et al., ECCV 2020): mean over "
        "consecutive pairs of the mIoU between the warped t-1 and the t prediction (bench/metrics.py).",
    ]
    legacy = [
        str(r.get("run_id"))
        for r in source.records
        if "pixel_agreement" not in (r.get("metrics") or {}) and (r.get("metrics") or {}).get("tc") is not None
    ]
    if legacy:
        notes.append(
            f"pixel agreement of {len(legacy)} run(s) read from the older metrics key `tc` (the same "
            f"measure, formerly called TC): {' '.join(legacy)}."
        )
    notes += _statistics_notes(table)
    if "latency_unstable" in frame and frame["latency_unstable"].any():
        notes.append(
            f"{UNSTABLE_MARK} marks a latency measured as unstable (its pass medians' IQR exceeds 10% of "
            "their median; see latency.modes.*.spread in the record): re-measure on an idle machine with "
            "bench latency --repeats N --overwrite."
        )
    notes += runs_notes(source)
    factor = frame.columns[0]
    for note, rows in frame.groupby("paper_note", sort=False)[factor]:
        notes.append(f"paper ({factor} {', '.join(map(str, rows))}): {note}")
    src = reference.get("source") or {}
    if frame["paper_miou"].notna().any() and src:
        notes.append(f"paper numbers: {src.get('paper')}, arXiv {src.get('arxiv')}, {src.get('table')}.")
    return notes


def runs_notes(source: TableSource) -> list[str]:
    """Which runs a table used and which it lacks: run ids, overrides, skipped invalid records, other sweeps."""
    used = [str(r.get("run_id")) for r in source.records]
    with_overrides = f" with overrides {' '.join(source.overrides)}" if source.overrides else ""
    if source.expected_runs is None:
        notes = [f"runs used ({len(used)} records under {source.origin}): {', '.join(used) or 'none'}."]
    else:
        notes = [
            f"runs of the spec{with_overrides}: {len(used)} of {source.expected_runs} records found; "
            f"used: {', '.join(used) or 'none'}."
        ]
        if source.not_done:
            notes.append(
                f"{len(source.not_done)} of {source.expected_runs} runs of the spec have no finished "
                f"record yet: {', '.join(source.not_done)}."
            )
    if source.invalid:
        notes.append(f"skipped {len(source.invalid)} invalid records: {'; '.join(source.invalid)}.")
    if source.duplicates:
        notes.append(
            f"counted once: {len(source.duplicates)} duplicate records of a run id already used "
            f"({'; '.join(source.duplicates)})."
        )
    if source.hint:
        notes.append(source.hint + ".")
    return notes


def _fmt(value: Any, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _fmt_ci(low: float, high: float, digits: int = 1, signed: bool = False) -> str:
    if math.isnan(low) or math.isnan(high):
        return MISSING
    return f"[{_fmt(low, digits, signed)}, {_fmt(high, digits, signed)}]"


def _fmt_p(p: float) -> str:
    if math.isnan(p):
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3g}" if p < 0.01 else f"{p:.3f}"  # never rounds across 0.01


def is_blank(value: Any) -> bool:
    """A row-key value the row's model does not take (``frames.runs_frame`` leaves it blank)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def key_text(value: Any) -> str:
    return MISSING if is_blank(value) else str(value)


def display_frame(table: Table) -> pd.DataFrame:
    """Strings for Markdown / LaTeX: 2 decimals, signed deltas, CIs in brackets, "—" where there is no value."""
    frame = table.frame
    shown = pd.DataFrame({k: frame[k].map(key_text) for k in table.key_columns})
    factor = table.factor_label
    shown[factor] = [f"{v} {ORACLE_LABEL.format(o)}" if o else v for v, o in zip(shown[factor], frame["oracle"])]
    shown["mIoU (%)"] = frame["miou_mean"].map(_fmt)
    shown["std"] = frame["miou_std"].map(_fmt)
    shown["n"] = frame["n"].astype(int).astype(str)
    shown["95% CI"] = [_fmt_ci(lo, hi) for lo, hi in zip(frame["ci_low"], frame["ci_high"])]
    shown["Δ ref"] = [_fmt(d, 2, signed=True) + mark for d, mark in zip(frame["delta_ref"], frame["sig_ref"])]
    if table.reference is not None:
        shown.loc[table.reference, "Δ ref"] = "ref"
    shown["Δ ref 95% CI"] = [
        _fmt_ci(lo, hi, 2, signed=True) for lo, hi in zip(frame["delta_ref_low"], frame["delta_ref_high"])
    ]
    shown["p"] = frame["p_ref"].map(_fmt_p)
    shown["pixel agreement (%)"] = frame["pixel_agreement_mean"].map(_fmt)
    shown["ETC TC (%)"] = frame["etc_tc_mean"].map(_fmt)
    unstable = frame["latency_unstable"] if "latency_unstable" in frame else [False] * len(frame)
    shown["latency ms"] = [
        UNSTABLE_MARK + _fmt(v) if flag and not math.isnan(v) else _fmt(v)
        for v, flag in zip(frame["latency_ms"], unstable)
    ]
    shown["paper mIoU"] = frame["paper_miou"].map(lambda v: _fmt(v, 1))
    shown["Δ paper"] = frame["delta_paper"].map(lambda v: _fmt(v, 2, signed=True))
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


# --------------------------------------------------------------------------------------------------
# one-line readings and the index


def _row_name(table: Table, i: int) -> str:
    row = table.frame.loc[i]
    extra = ", ".join(f"{k}={row[k]}" for k in table.key_columns[1:] if not is_blank(row[k]))
    oracle = f" {ORACLE_LABEL.format(row['oracle'])}" if row.get("oracle") else ""
    return f"{row[table.factor_label]}" + (f" ({extra})" if extra else "") + oracle


def _mean_ci(table: Table, i: int) -> str:
    row = table.frame.loc[i]
    return f"{row['miou_mean']:.1f} mIoU, 95% CI {_fmt_ci(row['ci_low'], row['ci_high'])}, n={int(row['n'])}"


def _p_text(comparison: Comparison, holm: bool) -> str:
    """ "p < 0.001" / "p = 0.43"; after a Holm correction "Holm p = ...", with the raw p when only it is < alpha."""
    p = comparison.p_adjusted
    text = "p < 0.001" if p < 0.001 else f"p = {_fmt_p(p)}"
    if not holm:
        return text
    raw = comparison.p_value
    return "Holm " + text + (f" (raw p = {_fmt_p(raw)})" if raw < ALPHA <= p else "")


def pair_text(table: Table, i: int, j: int, comparison: Comparison, holm: bool = False) -> str:
    """One pairwise difference, higher mean first: "a > b: +26.8 [+19.8, +33.6], p < 0.001" when significant,
    "a vs b: no significant difference, +2.5 [-5.1, +10.1], p = 0.43" when not (``holm``: the p is
    Holm-adjusted and says so), or why no test was made. The CI is the test's own unadjusted 95% interval."""
    if comparison.delta < 0:
        i, j, comparison = j, i, comparison.reversed()
    a, b = _row_name(table, i), _row_name(table, j)
    if not comparison.tested:
        return f"{a} vs {b}: {comparison.method} (Δ {100 * comparison.delta:+.1f})"
    delta = (
        f"{100 * comparison.delta:+.1f} {_fmt_ci(100 * comparison.ci_low, 100 * comparison.ci_high, 1, signed=True)}"
    )
    if comparison.significant:
        return f"{a} > {b}: {delta}, {_p_text(comparison, holm)}"
    return f"{a} vs {b}: no significant difference, {delta}, {_p_text(comparison, holm)}"


def best_text(table: Table) -> str:
    """What the table says, pair by pair: every significant difference with its CI and p, then the pairs that
    do not differ significantly and those that could not be tested; "best X" first when one row is
    significantly better than every other row. Never a global "no significant difference"."""
    factor = table.factor_label
    if len(table.frame) < 2:
        return f"{factor}: one row only ({_row_name(table, 0)}, {_mean_ci(table, 0)}), nothing to compare"
    pairs = sorted(table.pairs.items(), key=lambda kv: (not kv[1].significant, not kv[1].tested, kv[0]))
    tested = sum(1 for c in table.pairs.values() if c.tested)
    parts = [pair_text(table, i, j, c, holm=tested > 1) for (i, j), c in pairs]
    how = f"Welch t-test over seeds, Holm-adjusted over {tested} tests" if tested > 1 else "Welch t-test over seeds"
    body = "; ".join(parts) if parts else "no pair of rows could be compared"
    best = table.best
    if best is not None and best.found:
        return (
            f"best {factor}: {_row_name(table, best.index)} ({_mean_ci(table, best.index)}; significantly "
            f"better than every other row); {how} (α = {ALPHA}): {body}"
        )
    return f"{factor} ({how}, α = {ALPHA}): {body}; no single row is significantly better than every other"


def reading(table: Table) -> str:
    """One sentence from the data: the "best" row only when significant, the lowest row, deltas to the paper."""
    frame = table.frame
    text = best_text(table)
    if len(frame) > 1:
        worst = int(frame["miou_mean"].idxmin())
        text += f"; lowest: {_row_name(table, worst)} ({frame.loc[worst, 'miou_mean']:.1f})"
    with_paper = frame[frame["paper_miou"].notna()]
    if not with_paper.empty:
        parts = [f"{r[table.factor_label]} {r['delta_paper']:+.1f}" for _, r in with_paper.iterrows()]
        text += f"; vs paper: {', '.join(parts)}"
    return text

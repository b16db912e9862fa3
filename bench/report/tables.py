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
the number comes from or why it is missing. A row is called "best" only when it is significantly better than
every other row. Figures go to ``<out>/figures`` (see ``bench.report.figures``) and ``<out>/index.md`` links
everything with a one-line reading.

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
from bench.report.frames import get_or, latency_ms, latency_unstable, mean_or_nan, per_class_frame, runs_frame, \
    varying_keys
from bench.report.paper import paper_number
from bench.report.sources import ReportError, TableSource
from bench.report.stats import (REPLICATES, RNG_SEED, SIG_LEGEND, BestResult, RunCounts, StatsError, best_row,
                                chance_miou, compare, counts_from_record, row_stats)

MISSING = "—"
UNSTABLE_MARK = "~"  # prefix of a latency whose repeated passes disagree (bench.run.latency.summarise_passes)
# CSV column order after the row keys
STAT_COLUMNS: tuple[str, ...] = ("miou_mean", "miou_std", "n", "ci_low", "ci_high", "ci_method", "delta_ref",
                                 "delta_ref_low", "delta_ref_high", "p_ref", "sig_ref", "delta_ref_method")


@dataclass
class Table:
    """A summary table: numeric ``frame`` (CSV), its row keys, statistics, and notes printed under it."""

    name: str
    ablation: str
    factor_label: str
    key_columns: list[str]             # display names of the row keys, factor first
    key_sources: list[str]             # their ``cfg:<dotted key>`` columns in ``runs``
    frame: pd.DataFrame
    runs: pd.DataFrame
    per_class: pd.DataFrame
    notes: list[str]
    origin: str
    reference: int | None = None       # frame row of the reference (deltas are to it); None when absent
    best: BestResult | None = None     # frame row significantly better than every other row, if any
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
    extra = [c for c in vary if c != factor_col
             and runs.groupby(factor_col, dropna=False)[c].agg(lambda s: s.astype(str).nunique()).max() > 1]
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
        row.update({
            "miou_mean": mean,
            "miou_std": float(group["miou"].std(ddof=1)) if len(group) > 1 else math.nan,
            "n": int(len(group)),
            "pixel_agreement_mean": mean_or_nan(group["pixel_agreement"]),
            "etc_tc_mean": mean_or_nan(group["etc_tc"]),
            "latency_ms": float(group["latency_ms"].mean()) if group["latency_ms"].notna().any() else math.nan,
            "latency_unstable": bool(group["latency_unstable"].any()),
            "paper_miou": paper if paper is not None else math.nan,
            "delta_paper": mean - paper if paper is not None else math.nan,
            "paper_note": note,
            "run_ids": " ".join(str(r) for r in group["run_id"]),
        })
        rows.append(row)
    frame = pd.DataFrame(rows)
    factor_col = keys[0]
    order = source.factor_order or sorted(frame[factor_col].unique(), key=_sort_value)
    rank = {v: i for i, v in enumerate(order)}
    frame = frame.sort_values(by=factor_col, key=lambda s: s.map(lambda v: rank.get(v, len(rank))), kind="stable")
    frame = frame.reset_index(drop=True).rename(columns={k: _label(k) for k in keys})
    table = Table(name=source.name, ablation=source.ablation, factor_label=_label(factor_col),
                  key_columns=[_label(k) for k in keys], key_sources=keys, frame=frame, runs=runs,
                  per_class=per_class_frame(source.records), notes=[], origin=source.origin)
    add_statistics(table, source)
    table.notes = _table_notes(source, table, reference)
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


def add_statistics(table: Table, source: TableSource) -> None:
    """CI, reference deltas with CI / p / mark, "best", and the chance level, written into ``table``.

    Rows whose runs were scored on different image lists fall back to seed-level statistics, and a comparison
    between such rows is skipped; both are named in ``table.stat_problems``.
    """
    by_run = _counts_by_run(source)
    groups = _row_counts(table, by_run)
    for i, group in enumerate(groups):
        try:
            row_stats(group)
        except StatsError as err:
            table.stat_problems.append(f"row {i + 1}: {err}; seed-level statistics used")
            groups[i] = _seed_level(group)
    frame = table.frame
    row_stats_ = [row_stats(g) for g in groups]
    frame["ci_low"] = [100 * s.ci_low for s in row_stats_]
    frame["ci_high"] = [100 * s.ci_high for s in row_stats_]
    frame["ci_method"] = [s.ci_method for s in row_stats_]
    wanted = reference_value(source, table.key_sources[0].removeprefix("cfg:"))
    matches = [i for i, v in enumerate(frame[table.factor_label]) if str(v) == str(wanted)]
    table.reference = matches[0] if matches else None
    comparisons = [None if table.reference is None or i == table.reference
                   else _attempt(table, compare, g, groups[table.reference]) for i, g in enumerate(groups)]
    for column, attr in (("delta_ref", "delta"), ("delta_ref_low", "ci_low"), ("delta_ref_high", "ci_high")):
        frame[column] = [100 * getattr(c, attr) if c else math.nan for c in comparisons]
    frame["p_ref"] = [c.p_value if c else math.nan for c in comparisons]
    frame["sig_ref"] = [c.mark if c else "" for c in comparisons]
    frame["delta_ref_method"] = [c.method if c else "" for c in comparisons]
    table.best = _attempt(table, best_row, groups) or BestResult(None, {})
    table.frame = frame[table.key_columns + [c for c in STAT_COLUMNS if c in frame] + [c for c in frame.columns
                        if c not in STAT_COLUMNS and c not in table.key_columns]]
    for dataset, runs in table.runs.groupby("dataset", dropna=False):
        labelled = [by_run[str(i)] for i in runs["run_id"] if by_run[str(i)].label_pixels is not None]
        if labelled:
            table.chance[str(dataset)] = 100 * chance_miou(labelled[0].label_pixels)


def _attempt(table: Table, fn: Any, *args: Any) -> Any:
    """``fn(*args)``, or None with the reason kept in ``table.stat_problems`` when the rows cannot be compared."""
    try:
        return fn(*args)
    except StatsError as err:
        table.stat_problems.append(str(err))
        return None


def _statistics_notes(table: Table) -> list[str]:
    frame = table.frame
    factor = table.factor_label
    notes = []
    if set(frame["ci_method"]) & {"images", "images+seeds"}:
        notes.append(f"95% CI: percentile bootstrap ({REPLICATES} replicates, RNG seed {RNG_SEED}) over validation "
                     "images (and seeds when n > 1), mIoU recomputed from summed per-image counts; Δ ref: paired "
                     "bootstrap, the same resampled images for both rows and seeds paired by value.")
    seeds_only = [str(v) for v, m in zip(frame[factor], frame["ci_method"]) if m in ("seeds", "none")]
    if seeds_only:
        notes.append(f"seed-level statistics only for {factor} {', '.join(seeds_only)}: their records carry no "
                     "per-image counts (re-evaluate with `bench eval` to add them); CI = bootstrap over seeds "
                     "(too narrow for n < 5; none for n = 1); Δ ref p = exact sign-flip test over paired seeds.")
    if table.reference is None:
        notes.append(f"no reference row (its {factor} is not in this table): no Δ ref.")
    else:
        notes.append(f"Δ ref = row − reference row ({factor} = {frame.loc[table.reference, factor]}, marked `ref`) "
                     f"in mIoU points, averaged over the seeds both rows have, with its 95% CI and two-sided p; "
                     f"{SIG_LEGEND}.")
        ref_runs = table.frame.loc[table.reference, "n"]
        partial = [str(v) for v, n in zip(frame[factor], frame["n"]) if n != ref_runs]
        if partial:
            notes.append(f"Δ ref of {factor} {', '.join(partial)} uses only the seeds shared with the reference row, "
                         "so it can differ from the difference of the mIoU column.")
    notes.extend(f"not compared: {problem}" for problem in dict.fromkeys(table.stat_problems))
    notes.append(best_text(table) + ".")
    notes.extend(f"chance level ({dataset}): {value:.1f} mIoU, predicting the majority class everywhere."
                 for dataset, value in table.chance.items())
    return notes


def _table_notes(source: TableSource, table: Table, reference: dict[str, Any]) -> list[str]:
    frame = table.frame
    notes = ["mIoU, pixel agreement and ETC TC in percent; std = sample standard deviation over seeds (ddof=1); "
             "n = finished runs (seeds); latency = streaming-mode median ms per frame (`bench latency`), mean over "
             "seeds; Δ paper = reproduced − paper.",
             "pixel agreement = pooled fraction of pixels whose prediction at t equals the flow-warped prediction at "
             "t-1 (one pair per clip); ETC TC = ETC's temporal consistency (Liu et al., ECCV 2020): mean over "
             "consecutive pairs of the mIoU between the warped t-1 and the t prediction (bench/metrics.py)."]
    legacy = [str(r.get("run_id")) for r in source.records
              if "pixel_agreement" not in (r.get("metrics") or {}) and (r.get("metrics") or {}).get("tc") is not None]
    if legacy:
        notes.append(f"pixel agreement of {len(legacy)} run(s) read from the older metrics key `tc` (the same "
                     f"measure, formerly called TC): {' '.join(legacy)}.")
    notes += _statistics_notes(table)
    if "latency_unstable" in frame and frame["latency_unstable"].any():
        notes.append(f"{UNSTABLE_MARK} marks a latency measured as unstable (its pass medians' IQR exceeds 10% of "
                     "their median; see latency.modes.*.spread in the record): re-measure on an idle machine with "
                     "bench latency --repeats N --overwrite.")
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
        notes = [f"runs of the spec{with_overrides}: {len(used)} of {source.expected_runs} records found; "
                 f"used: {', '.join(used) or 'none'}."]
        if source.not_done:
            notes.append(f"{len(source.not_done)} of {source.expected_runs} runs of the spec have no finished "
                         f"record yet: {', '.join(source.not_done)}.")
    if source.invalid:
        notes.append(f"skipped {len(source.invalid)} invalid records: {'; '.join(source.invalid)}.")
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


def display_frame(table: Table) -> pd.DataFrame:
    """Strings for Markdown / LaTeX: 2 decimals, signed deltas, CIs in brackets, "—" where there is no value."""
    frame = table.frame
    shown = pd.DataFrame({k: frame[k].astype(str) for k in table.key_columns})
    shown["mIoU (%)"] = frame["miou_mean"].map(_fmt)
    shown["std"] = frame["miou_std"].map(_fmt)
    shown["n"] = frame["n"].astype(int).astype(str)
    shown["95% CI"] = [_fmt_ci(lo, hi) for lo, hi in zip(frame["ci_low"], frame["ci_high"])]
    shown["Δ ref"] = [_fmt(d, 2, signed=True) + mark for d, mark in zip(frame["delta_ref"], frame["sig_ref"])]
    if table.reference is not None:
        shown.loc[table.reference, "Δ ref"] = "ref"
    shown["Δ ref 95% CI"] = [_fmt_ci(lo, hi, 2, signed=True) for lo, hi in zip(frame["delta_ref_low"],
                                                                               frame["delta_ref_high"])]
    shown["p"] = frame["p_ref"].map(_fmt_p)
    shown["pixel agreement (%)"] = frame["pixel_agreement_mean"].map(_fmt)
    shown["ETC TC (%)"] = frame["etc_tc_mean"].map(_fmt)
    unstable = frame["latency_unstable"] if "latency_unstable" in frame else [False] * len(frame)
    shown["latency ms"] = [UNSTABLE_MARK + _fmt(v) if flag and not math.isnan(v) else _fmt(v)
                           for v, flag in zip(frame["latency_ms"], unstable)]
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
TEX_SYMBOLS = {"Δ": r"$\Delta$", "−": "$-$", "±": r"$\pm$", "≤": r"$\leq$", "≥": r"$\geq$", "×": r"$\times$",
               "–": "--", "—": "---", "…": r"\ldots{}", "<": "$<$", ">": "$>$"}


def tex_symbols(latex: str) -> str:
    """``latex`` with each of ``TEX_SYMBOLS`` replaced by its command (``Δ ref`` -> ``$\Delta$ ref``)."""
    return latex.translate(str.maketrans(TEX_SYMBOLS))


def write_table(table: Table, out_dir: str | Path) -> dict[str, Path]:
    """``<out_dir>/tables/<name>.{md,tex,csv}``; returns the paths by suffix."""
    folder = make_folder(Path(out_dir) / "tables", "--out")
    paths = {ext: folder / f"{table.name}.{ext}" for ext in ("md", "tex", "csv")}
    table.frame.to_csv(paths["csv"], index=False, float_format="%.4f")
    shown = display_frame(table)
    align = ("left",) * len(table.key_columns) + ("right",) * (shown.shape[1] - len(table.key_columns))
    notes_md = "\n".join(f"- {n}" for n in table.notes)
    paths["md"].write_text(f"# {table.name}\n\nSource: `{table.origin}` (ablation: {table.ablation})\n\n"
                           f"{shown.to_markdown(index=False, tablefmt='github', disable_numparse=True, colalign=align)}\n\n{notes_md}\n")
    latex = tex_symbols(shown.replace({MISSING: "---"}).style.hide(axis="index").format(escape="latex")
                        .format_index(escape="latex", axis=1)
                        .to_latex(hrules=True, column_format="".join(a[0] for a in align),
                                  caption=f"{table.name.replace('_', ' ')}: reproduced mIoU vs paper"))
    tex_notes = "".join(f"% {n}\n" for n in table.notes)
    paths["tex"].write_text(f"% generated by bench report from {table.origin}; needs \\usepackage{{booktabs}}\n"
                            f"{tex_notes}{latex}")
    return paths


# --------------------------------------------------------------------------------------------------
# one-line readings and the index


def _row_name(table: Table, i: int) -> str:
    row = table.frame.loc[i]
    extra = ", ".join(f"{k}={row[k]}" for k in table.key_columns[1:])
    return f"{row[table.factor_label]}" + (f" ({extra})" if extra else "")


def _mean_ci(table: Table, i: int) -> str:
    row = table.frame.loc[i]
    return f"{row['miou_mean']:.1f} mIoU, 95% CI {_fmt_ci(row['ci_low'], row['ci_high'])}, n={int(row['n'])}"


def best_text(table: Table) -> str:
    """"best X: v (...)" only when v is significantly better than every other row, else "no significant
    difference" naming the highest-mean row and the comparison that was not significant."""
    factor = table.factor_label
    if len(table.frame) < 2:
        return f"{factor}: one row only ({_row_name(table, 0)}, {_mean_ci(table, 0)}), nothing to compare"
    best = table.best
    if best is not None and best.found:
        worst_p = max(c.p_value for c in best.comparisons.values())
        p_text = "p < 0.001" if worst_p < 0.001 else f"p ≤ {worst_p:.3f}"
        return (f"best {factor}: {_row_name(table, best.index)} ({_mean_ci(table, best.index)}; significantly "
                f"better than every other row, {p_text})")
    top = int(table.frame["miou_mean"].idxmax())
    text = f"{factor}: no significant difference (highest mean: {_row_name(table, top)}, {_mean_ci(table, top)}"
    if best is not None and best.comparisons:
        other, comparison = list(best.comparisons.items())[-1]
        text += (f"; vs {factor} {_row_name(table, other)}: Δ {100 * comparison.delta:+.1f} points, "
                 f"p = {_fmt_p(comparison.p_value)}")
    return text + ")"


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

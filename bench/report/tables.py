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
from typing import Any

import pandas as pd

from bench.config import Config, to_dict
from bench.report.frames import get_or, mean_or_nan, per_class_frame, runs_frame, varying_keys
from bench.report.notes import table_notes
from bench.report.paper import paper_number
from bench.report.provenance import PROVENANCE_COLUMNS, combined, provenance_note
from bench.report.readings import row_name
from bench.report.sources import ReportError, TableSource
from bench.report.stats import (
    RunCounts,
    StatsError,
    best_row,
    chance_miou,
    counts_from_record,
    oriented,
    pairwise,
    row_stats,
)
from bench.report.table_model import (
    STAT_COLUMNS,
    Table,
)


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


def video_columns(group: pd.DataFrame) -> dict[str, Any]:
    """A row's whole-video measures: mean mVC_8 / mVC_16 over its runs, the mVC copy and the mIoU convention."""
    return {
        "mvc_8_mean": mean_or_nan(group["mvc_8"]),
        "mvc_16_mean": mean_or_nan(group["mvc_16"]),
        "mvc_variant": combined(str(v) for v in group["mvc_variant"].dropna()),
        "miou_convention": combined(group["miou_convention"].astype(str)),
        "whole_videos": bool(group["whole_videos"].any()),
    }


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
                **video_columns(group),
                "latency_ms": float(group["latency_ms"].mean()) if group["latency_ms"].notna().any() else math.nan,
                "latency_unstable": bool(group["latency_unstable"].any()),
                "latency_iqr_ms": mean_or_nan(group["latency_iqr_ms"]),
                "gflops": mean_or_nan(group["gflops"]),
                "latency_q25_ms": mean_or_nan(group["latency_q25_ms"]),
                "latency_q75_ms": mean_or_nan(group["latency_q75_ms"]),
                "oracle": combined(v for v in group["oracle"] if v),
                "protocol": combined(v for v in group["protocol"] if v),
                "constant_runs": int((group["predicted_classes"] == 1).sum()),
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
    table.notes = [table.provenance + "."] + table_notes(source, table, reference)
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
                    f"{row_name(table, i)} vs {row_name(table, j)}: evaluated on "
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
    table.lowest = best_row(groups, table.pairs, lowest=True)
    table.frame = frame[
        table.key_columns
        + [c for c in STAT_COLUMNS if c in frame]
        + [c for c in frame.columns if c not in STAT_COLUMNS and c not in table.key_columns]
    ]
    _add_chance(table, _counts_by_run(source))


def _add_chance(table: Table, by_run: dict[str, RunCounts]) -> None:
    """The majority-class mIoU of each dataset, and per row whether it is at chance (``at_chance``): not above
    that level (its 95% CI reaches it; a row without a CI: its mean)."""
    for dataset, runs in table.runs.groupby("dataset", dropna=False):
        labelled = [by_run[str(i)] for i in runs["run_id"] if by_run[str(i)].label_pixels is not None]
        if labelled:
            table.chance[str(dataset)] = 100 * chance_miou(labelled[0].label_pixels)
    dataset_of = dict(zip(table.runs["run_id"].astype(str), table.runs["dataset"].astype(str)))
    at_chance = []
    for _, row in table.frame.iterrows():
        chance = table.chance.get(dataset_of.get(str(row["run_ids"]).split()[0], ""), math.nan)
        low = row["miou_mean"] if math.isnan(row["ci_low"]) else row["ci_low"]
        at_chance.append(bool(not math.isnan(chance) and low <= chance + CHANCE_TOLERANCE))
    table.frame["at_chance"] = at_chance


# mIoU points: float noise of a mean of per-class IoUs, far below any difference a table reports
CHANCE_TOLERANCE = 1e-6


__all__ = ["Table", "summarise", "reference_value", "add_statistics"]

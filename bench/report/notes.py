"""The notes printed under a table: method, statistics, oracle rows, the runs it used and those it lacks.

table.notes = [table.provenance + "."] + table_notes(source, table, reference)   # bench.report.tables
runs_notes(source)                                                              # which runs, which missing
"""

from __future__ import annotations

from typing import Any

from bench.report.provenance import combined
from bench.report.readings import best_text, row_name
from bench.report.sources import TableSource
from bench.report.stats import (
    IDENTICAL,
    NO_TEST,
    REPLICATES,
    RNG_SEED,
    SIG_LEGEND,
)
from bench.report.table_model import (
    CONSTANT_MARK,
    UNSTABLE_MARK,
    Table,
)


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
    units = [u for u in ("images", "videos") if f"{u}, n = 1" in set(table.frame["ci_method"])]
    one_run = (
        f"; a row with n = 1: 95% CI = percentile bootstrap over validation {' or '.join(units)} "
        f"({REPLICATES} replicates, RNG seed {RNG_SEED}; videos for whole-video evaluation, where the video, not "
        "the frame, is the independent unit), a within-run interval that ignores the seed-to-seed spread"
        if units
        else ""
    )
    return (
        "statistics (docs/statistics.md): the seed (training run) is the unit; each run's mIoU is recomputed "
        "from its per-image counts where the record has them; row 95% CI = mean ± t(n−1)·s/√n over seeds"
        f"{one_run}; differences: Welch t-test on seed-level mIoU (two-sided, Welch–Satterthwaite df), "
        f"95% CI = Δ ± t(df)·SE; no test and no CI when a row has n < 2 ({NO_TEST}); {holm}."
    )


def _degenerate_notes(table: Table) -> list[str]:
    """Rows that learned nothing the table can tell from chance, constant predictors, identical runs."""
    frame, notes = table.frame, []
    at_chance = [row_name(table, i) for i in frame.index if frame.loc[i].get("at_chance")]
    if at_chance:
        notes.append(
            f"at chance ({', '.join(at_chance)}): not above the majority-class predictor (the chance level below; "
            "the row's 95% CI reaches it, or its mean without a CI): no better than predicting one class."
        )
    constant = [row_name(table, i) for i in frame.index if frame.loc[i].get("constant_runs", 0) > 0]
    if constant:
        notes.append(
            f"{CONSTANT_MARK} constant prediction ({', '.join(constant)}): the runs predict one class on every "
            "pixel of the split (one non-empty column of the confusion matrix), so their pixel agreement and ETC "
            "TC are trivially 100%: temporal consistency of no use."
        )
    identical = [row_name(table, i) for i in frame.index if frame.loc[i, "ci_method"] == IDENTICAL]
    if identical:
        notes.append(
            f"no CI ({', '.join(identical)}): every seed gave the same mIoU, so the seed-to-seed spread is "
            "unknown (a zero-width interval would claim it is zero)."
        )
    return notes


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
    oracles = [row_name(table, i) for i in frame.index if frame.loc[i, "oracle"]]
    if oracles:
        notes.append(
            f"oracle rows ({', '.join(oracles)}): the model was given ground-truth input that a deployed "
            "method does not have (model.flow.source = ground_truth); an upper bound, not a competitor, "
            "and never on a Pareto front."
        )
    notes.extend(_degenerate_notes(table))
    notes.extend(f"not compared: {problem}" for problem in dict.fromkeys(table.stat_problems))
    notes.append(best_text(table) + ".")
    notes.extend(
        f"chance level ({dataset}): {value:.1f} mIoU, predicting the majority class everywhere."
        for dataset, value in table.chance.items()
    )
    return notes


def table_notes(source: TableSource, table: Table, reference: dict[str, Any]) -> list[str]:
    frame = table.frame
    notes = [
        "mIoU, pixel agreement and ETC TC in percent; std = sample standard deviation over seeds (ddof=1); "
        "n = finished runs (seeds); latency = streaming-mode median ms per frame (`bench latency`), mean over "
        "seeds; Δ paper = reproduced − paper.",
        "pixel agreement = pooled fraction of pixels whose prediction at t equals the flow-warped prediction at "
        "t-1 (one pair per clip); ETC TC = ETC's temporal consistency (Liu et al., ECCV 2020): mean over "
        "consecutive pairs of the mIoU between the warped t-1 and the t prediction (bench/metrics/temporal.py).",
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
    notes += video_notes(frame)
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
    own_source = frame.loc[frame["paper_miou"].notna(), "paper_note"].str.contains("source: ").all()
    if frame["paper_miou"].notna().any() and src and not own_source:
        notes.append(f"paper numbers: {src.get('paper')}, arXiv {src.get('arxiv')}, {src.get('table')}.")
    return notes


def video_notes(frame: Any) -> list[str]:
    """What the mVC columns and the mIoU of whole-video runs are (docs/vspw.md), when a row has them."""
    notes = []
    if any(c in frame and frame[c].notna().any() for c in ("mvc_8_mean", "mvc_16_mean")):
        variants = combined(v for v in frame["mvc_variant"] if v)
        notes.append(
            "mVC_C = VSPW's video consistency (Miao et al., CVPR 2021): over windows of C consecutive frames, the "
            "share of the pixels whose ground truth stays constant where the prediction stays constant too, pooled "
            f"over whole validation videos (every labelled frame, memory streamed), in percent, mean over seeds; "
            f"computation: {variants} (bench/metrics/video_consistency.py, docs/vspw.md)."
        )
    if "whole_videos" in frame and frame["whole_videos"].any():
        conventions = combined(frame.loc[frame["whole_videos"], "miou_convention"])
        notes.append(
            f"mIoU of whole-video rows: every labelled frame of each validation video, averaged over the classes "
            f"of the {conventions} convention (bench/metrics/segmentation.py)."
        )
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
    if source.unchecked:
        notes.append(
            f"code not checked for {len(source.unchecked)} run(s) whose plugin is not importable here (its "
            f"records are used as they are; report where the plugin is installed to check them): "
            f"{'; '.join(source.unchecked)}."
        )
    if source.hint:
        notes.append(source.hint + ".")
    return notes

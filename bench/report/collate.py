"""Run records -> pandas -> report tables (Markdown, LaTeX, CSV) with statistics, next to the paper's numbers.

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

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from bench.run import rundir

from bench.report.stats import (REPLICATES, RNG_SEED, SIG_LEGEND, BestResult, RunCounts, StatsError, best_row,
                                chance_miou, compare, counts_from_record, row_stats)

PAPER_REFERENCE_PATH = Path(__file__).resolve().parents[2] / "results" / "paper_reference.yaml"
MISSING = "—"
UNSTABLE_MARK = "~"  # prefix of a latency whose repeated passes disagree (bench.run.latency.summarise_passes)
# Config keys that never distinguish table rows: seeds are pooled, the rest do not change results.
POOLED_KEY_SUFFIXES: tuple[str, ...] = ("seed",)
IGNORED_KEY_PREFIXES: tuple[str, ...] = ("name", "launch.", "device", "output_root", "run_dir", "checkpoint")
# CSV column order after the row keys
STAT_COLUMNS: tuple[str, ...] = ("miou_mean", "miou_std", "n", "ci_low", "ci_high", "ci_method", "delta_ref",
                                 "delta_ref_low", "delta_ref_high", "p_ref", "sig_ref", "delta_ref_method")
# Ablation kinds that have a paper table (all of them unrecovered except the method comparison).
ABLATIONS: tuple[str, ...] = ("memory_length", "aggregation", "encoding", "methods")



class ReportError(ValueError):
    """A source that is neither a grid spec nor a folder, or a malformed record / reference file."""


# --------------------------------------------------------------------------------------------------
# sources -> records


@dataclass
class TableSource:
    """The records behind one table and what the table is about."""

    name: str                          # output file stem
    ablation: str                      # memory_length | aggregation | encoding | methods | runs
    factor: str | None                 # dotted config key the rows vary, e.g. "model.memory_length"
    records: list[dict[str, Any]]      # valid records with status done, each with "_run_dir"
    origin: str                        # the spec file or folder
    expected_runs: int | None = None   # runs the spec expands to (None for folders)
    not_done: list[str] = field(default_factory=list)  # run ids of the spec without a finished record
    factor_order: list[Any] = field(default_factory=list)
    base_value: Any = None             # the factor's value in the spec's base config (the reference row)
    overrides: list[str] = field(default_factory=list)  # command-line overrides the spec was expanded with
    invalid: list[str] = field(default_factory=list)    # "<record.json path>: <reason>" of skipped records
    hint: str = ""                     # why the runs of another sweep of this grid are not shown, if they exist


def validate_record(record: Any) -> str | None:
    """Why ``record`` (a parsed ``record.json``) cannot be reported, or None when it can.

    A reportable record is a JSON object with ``status: done``, a ``run_id``, ``metrics.miou`` a finite
    fraction in [0, 1], numeric optional metrics, and a ``config`` object naming ``model.name``.
    """
    if not isinstance(record, dict):
        return f"expected a JSON object (a run record), got {type(record).__name__ if record is not None else 'null'}"
    if record.get("status") != "done":
        return f"status is {record.get('status')!r}, not 'done' (only finished runs are reported)"
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        return f"metrics must be an object holding miou, got {metrics!r}"
    for key in ("miou", "pixel_agreement", "etc_tc", "tc", "pixel_acc"):
        value = metrics.get(key)
        if value is None and key != "miou":
            continue
        if not _is_fraction(value):
            return f"metrics.{key} must be a finite number in [0, 1], got {value!r}"
    per_class = metrics.get("per_class_iou")
    # None marks a class absent from both the labels and the predictions (bench.metrics.segmentation_summary)
    if per_class is not None and not (isinstance(per_class, dict)
                                      and all(v is None or _is_fraction(v) for v in per_class.values())):
        return "metrics.per_class_iou must map class names to numbers in [0, 1] (or null for an absent class)"
    config = record.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) \
            or not isinstance(config["model"].get("name"), str):
        return "config must be an object with model.name (the resolved config of the run)"
    if not isinstance(record.get("run_id"), str) or not record["run_id"]:
        return f"run_id must be a non-empty string, got {record.get('run_id')!r}"
    if not isinstance(record.get("latency") or {}, dict):
        return f"latency must be an object, got {record.get('latency')!r}"
    try:
        counts_from_record(record)
    except (StatsError, ValueError, TypeError, AttributeError) as err:
        return f"metrics.per_image is malformed ({err})"
    return None


def _is_fraction(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0.0 <= value <= 1.0)


def read_record_file(path: Path, strict: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """One ``record.json``: ``(record with "_run_dir", None)`` or ``(None, "<path>: <reason>")`` if unusable.

    ``strict``: an unusable record raises ReportError instead.
    """
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        reason = validate_record(record)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        reason = f"not valid JSON ({err}); half-written or not a run record"
    except OSError as err:
        reason = f"cannot be read ({err.strerror})"
    if reason is not None:
        if strict:
            raise ReportError(f"{path}: {reason}; fix or remove the file, or drop --strict to skip it with a warning")
        return None, f"{path}: {reason}"
    record["_run_dir"] = str(path.parent)
    return record, None


def records_from_folder(folder: Path, strict: bool = False) -> TableSource:
    """Every valid finished ``record.json`` below ``folder``; invalid ones are listed in ``invalid``."""
    records, invalid = [], []
    for path in sorted(folder.rglob(rundir.RECORD)):
        record, problem = read_record_file(path, strict)
        records += [record] if record is not None else []
        invalid += [problem] if problem is not None else []
    return TableSource(name=folder.resolve().name or "runs", ablation="runs", factor=None, records=records,
                       origin=str(folder), invalid=invalid)


def _spec_factor(spec: Any) -> str | None:
    """The dotted key a spec varies: its ``factor``, else the first key of its first grid block."""
    if spec.factor:
        return spec.factor
    for block in spec.grid:
        for axes in block.values():
            return str(next(iter(axes)))
    return None


def _get_dotted(obj: Any, key: str) -> Any:
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def expand_spec_runs(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[Any, list[Any], list[str]]:
    """``(spec, runs, run ids of its sweep manifest)`` exactly as ``bench sweep SPEC OVERRIDES`` sees them.

    The only call into ``bench.grid``; the manifest ids are in submission order (oldest first).
    """
    from bench.grid import manifest
    from bench.grid.spec import build_grid, load_spec

    grid = build_grid(load_spec(path), list(overrides))
    return grid.spec, list(grid.runs), [str(row["run_id"]) for row in manifest.read(grid.manifest) if row.get("run_id")]


def other_sweep_hint(expected: list[str], manifest_ids: list[str], found: int) -> str:
    """A note when the last sweep of this grid ran runs this expansion does not contain (other overrides)."""
    others = list(dict.fromkeys(i for i in manifest_ids if i not in set(expected)))
    if not manifest_ids or manifest_ids[-1] in expected:
        return ""
    what = "no finished records" if not found else f"{found} finished records (of an earlier sweep)"
    return (f"the last sweep of this grid ran with different overrides: pass the same overrides to bench report "
            f"(this expansion has {what}; the sweep manifest lists {len(others)} other runs, e.g. {others[-1]})")


def records_from_spec(path: Path, overrides: list[str] | tuple[str, ...] = (), strict: bool = False) -> TableSource:
    """The finished records of the runs a grid spec expands to (with ``overrides``), in the spec's order."""
    spec, runs, manifest_ids = expand_spec_runs(path, overrides)
    factor = _spec_factor(spec)
    base_value = _base_value(spec, factor) if factor else None
    records, not_done, order, invalid = [], [], [], []
    for run in runs:
        value = _get_dotted(run.config, factor) if factor else None
        if value not in order:
            order.append(value)
        record_path = Path(run.run_dir) / rundir.RECORD
        record, problem = read_record_file(record_path, strict) if record_path.is_file() else (None, None)
        invalid += [problem] if problem is not None else []
        if record is None:
            not_done.append(run.run_id)
        else:
            records.append(record)
    expected = [run.run_id for run in runs]
    return TableSource(name=spec.name, ablation=spec.ablation, factor=factor, records=records, origin=str(path),
                       expected_runs=len(runs), not_done=not_done, factor_order=order, base_value=base_value,
                       overrides=list(overrides), invalid=invalid,
                       hint=other_sweep_hint(expected, manifest_ids, len(records)))


def _base_value(spec: Any, factor: str) -> Any:
    """The factor's value in the spec's base config with the spec's ``overrides`` (defaults filled in)."""
    from bench.config import Config, ConfigError, apply_overrides, from_dict, read_yaml_with_base

    values = apply_overrides(read_yaml_with_base(spec.base), list(spec.overrides.items()))
    try:
        return _get_dotted(from_dict(Config, values), factor)
    except (ConfigError, KeyError, AttributeError):
        return None


def load_source(source: str | Path, overrides: list[str] | tuple[str, ...] = (), strict: bool = False) -> TableSource:
    """A ``.yaml`` grid spec (expanded with ``overrides``) or a folder of run records."""
    path = Path(source)
    if path.is_dir():
        return records_from_folder(path, strict)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return records_from_spec(path, overrides, strict)
    if not path.exists():
        raise ReportError(f"{source}: no such file or folder; pass a grid spec (ablations/*.yaml) or a folder "
                          "holding run records")
    raise ReportError(f"{source}: expected a grid spec (ablations/*.yaml) or a folder holding run records")


def split_sources(arguments: list[str]) -> tuple[list[str], list[str]]:
    """``bench report`` positionals -> ``(sources, overrides)``: an argument with '=' that is not an existing
    path is a dotted override (``train.iters=10``), applied to every grid spec, as in ``bench sweep``."""
    overrides = [a for a in arguments if "=" in a and not Path(a).exists()]
    return [a for a in arguments if a not in overrides], overrides


# --------------------------------------------------------------------------------------------------
# records -> data frames


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> ``{"model.memory_length": 2, ...}``; lists become JSON strings (hashable)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten_config(value, dotted + "."))
        elif isinstance(value, (list, dict)):
            flat[dotted] = json.dumps(value)
        else:
            flat[dotted] = value
    return flat


def latency_ms(record: dict[str, Any], mode: str = "streaming") -> float:
    """Median per-frame latency of ``mode`` from the record's ``latency`` block, NaN if absent."""
    modes = (record.get("latency") or {}).get("modes") or {}
    value = (modes.get(mode) or {}).get("median_ms")
    return float(value) if value is not None else math.nan


def latency_unstable(record: dict[str, Any], mode: str = "streaming") -> bool:
    """True when ``bench latency`` flagged ``mode``'s median as unstable (pass medians spread > 10%)."""
    modes = (record.get("latency") or {}).get("modes") or {}
    return (modes.get(mode) or {}).get("unstable") is True


def runs_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: ids, metrics in percent, latency, and every config key as ``cfg:<dotted key>``."""
    rows = []
    for record in records:
        metrics = record.get("metrics") or {}
        config = record.get("config") or {}
        row: dict[str, Any] = {
            "run_id": record.get("run_id"), "model": record.get("model") or _get_or(config, "model.name"),
            "dataset": record.get("dataset") or _get_or(config, "data.dataset"), "seed": record.get("seed"),
            "miou": _percent(metrics.get("miou")),
            # records before the rename stored pixel agreement as "tc" (read as such; _table_notes says so)
            "pixel_agreement": _percent(metrics.get("pixel_agreement", metrics.get("tc"))),
            "etc_tc": _percent(metrics.get("etc_tc")),
            "pixel_acc": _percent(metrics.get("pixel_acc")),
            "latency_ms": latency_ms(record), "latency_recompute_ms": latency_ms(record, "recompute"),
            "latency_unstable": latency_unstable(record), "checkpoint": record.get("checkpoint"), "run_dir": record.get("_run_dir"),
        }
        row.update({f"cfg:{k}": v for k, v in flatten_config(config).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def per_class_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Runs x classes of per-class IoU in percent (index: run id)."""
    rows = {}
    for record in records:
        per_class = (record.get("metrics") or {}).get("per_class_iou") or {}
        if per_class:
            rows[record.get("run_id")] = {name: _percent(v) for name, v in per_class.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def _get_or(config: dict[str, Any], key: str) -> Any:
    try:
        return _get_dotted(config, key)
    except (KeyError, AttributeError, TypeError):
        return None


def _percent(value: Any) -> float:
    return 100.0 * float(value) if value is not None else math.nan


def _mean_or_nan(column: pd.Series) -> float:
    return float(column.mean()) if column.notna().any() else math.nan


def _is_row_key(column: str) -> bool:
    key = column[len("cfg:"):]
    return not key.endswith(POOLED_KEY_SUFFIXES) and not key.startswith(IGNORED_KEY_PREFIXES)


def varying_keys(runs: pd.DataFrame) -> list[str]:
    """``cfg:`` columns whose value differs between runs, seeds and run-location keys excluded."""
    cols = [c for c in runs.columns if c.startswith("cfg:") and _is_row_key(c)]
    return [c for c in cols if runs[c].astype(str).nunique(dropna=False) > 1]


# --------------------------------------------------------------------------------------------------
# paper numbers


def load_paper_reference(path: str | Path = PAPER_REFERENCE_PATH) -> dict[str, Any]:
    """``results/paper_reference.yaml``: ``{"source", "entries", "missing"}``."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data.get("entries"), list):
        raise ReportError(f"{path}: expected a list under 'entries'")
    return data


def _matches(config: dict[str, Any], match: dict[str, Any]) -> bool:
    for key, wanted in match.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if config.get(key) not in options:
            return False
    return True


def paper_number(reference: dict[str, Any], dataset: str | None, config: dict[str, Any],
                 ablation: str) -> tuple[float | None, str]:
    """The paper's mIoU for a row's dataset and flattened config, and a note on its origin or absence."""
    if dataset == "synthetic":
        return None, "synthetic data: no paper number"
    missing = {m.get("ablation"): m.get("note", "") for m in reference.get("missing") or []}
    for entry in reference["entries"]:
        if entry.get("dataset") != dataset or not entry.get("match") or not _matches(config, entry["match"]):
            continue
        note = f"{entry['method']}: {entry.get('setting', '')}"
        if entry.get("caveat"):
            note += f" ({entry['caveat']})"
        if ablation in missing:
            note = f"paper main result at this setting, {note}; {missing[ablation]}"
        return float(entry["miou"]), note
    if ablation in missing:
        return None, f"missing: {missing[ablation]}"
    return None, "no paper number for this setting"


# --------------------------------------------------------------------------------------------------
# tables


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
            "pixel_agreement_mean": _mean_or_nan(group["pixel_agreement"]),
            "etc_tc_mean": _mean_or_nan(group["etc_tc"]),
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
    from bench.config import Config, to_dict

    return _get_or(to_dict(Config()), factor_key)


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
    latex = (shown.replace({MISSING: "---"}).style.hide(axis="index").format(escape="latex")
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


def write_index(out_dir: Path, tables: list[tuple[Table, dict[str, Path]]], figures: list[Any]) -> Path:
    """``<out_dir>/index.md`` linking every table and figure with a one-line reading."""
    lines = ["# Reports", "", "Generated by `bench report`; regenerate rather than edit (see reports/README.md).", "",
             "## Tables", ""]
    for table, paths in tables:
        links = " · ".join(f"[{ext}]({p.relative_to(out_dir).as_posix()})" for ext, p in paths.items())
        lines.append(f"- **{table.name}** ({table.ablation}; {links}): {reading(table)}.")
    lines += ["", "## Figures", ""]
    for fig in figures:
        if fig.paths:
            links = " · ".join(f"[{p.suffix[1:]}]({p.relative_to(out_dir).as_posix()})" for p in fig.paths)
            lines.append(f"- **{fig.name}** ({links}): {fig.reading}")
        else:
            lines.append(f"- **{fig.name}**: not drawn: {fig.reading}")
    path = out_dir / "index.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_folder(path: Path, what: str) -> Path:
    """``path`` as a folder (created if needed); a file in the way is a ReportError naming ``what``."""
    if path.exists() and not path.is_dir():
        raise ReportError(f"{what} {path} is a file, not a folder; pass a new or existing folder instead")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportError(f"{what} {path}: cannot create the folder ({err.strerror}); pass another folder") from err
    return path


def build_report(sources: list[str | Path], out_dir: str | Path,
                 reference_path: str | Path = PAPER_REFERENCE_PATH, figures: bool = True,
                 overrides: list[str] | tuple[str, ...] = (), strict: bool = False) -> dict[str, Any]:
    """Tables (and figures) for every source under ``out_dir``; returns what was written.

    ``overrides`` (``key=value``) expand every grid spec as ``bench sweep SPEC OVERRIDES`` did. Invalid records
    are skipped and listed under ``"invalid"``, or, with ``strict``, the first one raises ReportError.
    """
    from bench.report.figures import draw_all
    from bench.report.html import write_html

    out = Path(out_dir)
    make_folder(out, "--out")
    if figures:
        make_folder(out / "figures", "--out")
    loaded_sources = [load_source(source, overrides, strict) for source in sources]
    if overrides and all(s.expected_runs is None for s in loaded_sources):
        raise ReportError(f"overrides {' '.join(overrides)} apply to grid specs only, and no grid spec was given; "
                          "pass the spec (ablations/*.yaml) the sweep ran, or drop the overrides")
    reference = load_paper_reference(reference_path)
    written: list[tuple[Table, dict[str, Path]]] = []
    skipped: list[str] = []
    runs: dict[str, list[str]] = {}
    names: set[str] = set()
    for source, loaded in zip(sources, loaded_sources):
        if not loaded.records:
            skipped.append(f"{source}: no finished run records; " + " ".join(runs_notes(loaded)))
            continue
        while loaded.name in names:  # two folders with the same name
            loaded.name += "_"
        names.add(loaded.name)
        table = summarise(loaded, reference)
        written.append((table, write_table(table, out)))
        runs[table.name] = runs_notes(loaded)
    drawn = draw_all([t for t, _ in written], out / "figures") if figures else []
    index = write_index(out, written, drawn)
    html = write_html(out, written, drawn)
    return {"tables": written, "figures": drawn, "index": index, "html": html["index"], "skipped": skipped,
            "invalid": [problem for s in loaded_sources for problem in s.invalid],
            "runs": runs}


def report_command(sources: list[str], out_dir: str, overrides: list[str] | tuple[str, ...] = (),
                   strict: bool = False) -> int:
    """``bench report``: print what was written and which runs each table used; 1 when no source had a
    finished run. Skipped invalid records are listed on stderr."""
    result = build_report(sources, out_dir, overrides=overrides, strict=strict)
    if result["invalid"]:
        print(f"warning: skipped {len(result['invalid'])} invalid run records (pass --strict to stop at the "
              "first instead):", file=sys.stderr)
        for problem in result["invalid"]:
            print(f"  {problem}", file=sys.stderr)
    for note in result["skipped"]:
        print(f"skipped {note}")
    for table, paths in result["tables"]:
        print(f"table {table.name}: {', '.join(str(p) for p in paths.values())}")
        print(f"  {reading(table)}")
        for note in result["runs"][table.name]:
            print(f"  {note}")
    for fig in result["figures"]:
        print(f"figure {fig.name}: {', '.join(str(p) for p in fig.paths) or 'not drawn: ' + fig.reading}")
    print(f"index: {result['index']}")
    print(f"html: {result['html']}")
    return 0 if result["tables"] else 1

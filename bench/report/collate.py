"""Run records -> pandas -> report tables (Markdown, LaTeX, CSV) next to the paper's numbers, plus figures.

    bench report ablations/synthetic_memory_length.yaml ablations/synthetic_methods.yaml   # grid specs
    bench report results/runs --out reports                                                   # or folders

Each source becomes one table, ``<out>/tables/<name>.{md,tex,csv}``: a grid spec (``ablations/*.yaml``) gives
a table named after the spec with one row per value of its ``factor`` (mean ± std over seeds, run count n);
a folder gives a table of every ``record.json`` under it, one row per distinct config (seeds pooled). Next to
each row: the paper's reported mIoU where one exists (``results/paper_reference.yaml``), the difference
reproduced − paper, and a note saying where the number comes from or why it is missing. Figures go to
``<out>/figures`` (see ``bench.report.figures``) and ``<out>/index.md`` links everything with a one-line reading.

Conventions: metrics are stored as fractions and printed as percentages; ``std`` is the sample standard
deviation over seeds (ddof=1, empty when n = 1); latency is the streaming-mode median in ms (mean over seeds).
Only records with ``status: done`` count.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

PAPER_REFERENCE_PATH = Path(__file__).resolve().parents[2] / "results" / "paper_reference.yaml"
MISSING = "—"
# Config keys that never distinguish table rows: seeds are pooled, the rest do not change results.
POOLED_KEY_SUFFIXES: tuple[str, ...] = ("seed",)
IGNORED_KEY_PREFIXES: tuple[str, ...] = ("name", "launch.", "device", "output_root", "run_dir", "checkpoint")
# Ablation kinds that have a paper table (all of them unrecovered except the method comparison).
ABLATIONS: tuple[str, ...] = ("memory_length", "aggregation", "encoding", "methods")

NUMERIC_COLUMNS: tuple[str, ...] = ("miou_mean", "miou_std", "n", "tc_mean", "latency_ms", "paper_miou", "delta")
DISPLAY_NAMES: dict[str, str] = {
    "miou_mean": "mIoU (%)", "miou_std": "std", "n": "n", "tc_mean": "TC (%)", "latency_ms": "latency ms",
    "paper_miou": "paper mIoU", "delta": "delta", "paper_note": "paper note",
}


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
    records: list[dict[str, Any]]      # records with status done, each with "_run_dir"
    origin: str                        # the spec file or folder
    expected_runs: int | None = None   # runs the spec expands to (None for folders)
    not_done: list[str] = field(default_factory=list)  # run ids of the spec without a finished record
    factor_order: list[Any] = field(default_factory=list)


def read_record_file(path: Path) -> dict[str, Any]:
    """One ``record.json`` with ``_run_dir`` added."""
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}: not valid JSON ({err})") from err
    record["_run_dir"] = str(path.parent)
    return record


def records_from_folder(folder: Path) -> TableSource:
    """Every finished ``record.json`` below ``folder``."""
    records = [read_record_file(p) for p in sorted(folder.rglob("record.json"))]
    done = [r for r in records if r.get("status") == "done"]
    return TableSource(name=folder.resolve().name or "runs", ablation="runs", factor=None, records=done,
                       origin=str(folder), not_done=[r.get("run_id", "?") for r in records if r.get("status") != "done"])


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


def records_from_spec(path: Path) -> TableSource:
    """The finished records of the runs a grid spec expands to (``bench.grid.spec``), in the spec's order."""
    from bench.grid.spec import expand_grid, load_spec

    spec = load_spec(path)
    factor = _spec_factor(spec)
    runs = expand_grid(spec)
    records, not_done, order = [], [], []
    for run in runs:
        value = _get_dotted(run.config, factor) if factor else None
        if value not in order:
            order.append(value)
        record_path = Path(run.run_dir) / "record.json"
        record = read_record_file(record_path) if record_path.is_file() else None
        if record is None or record.get("status") != "done":
            not_done.append(run.run_id)
        else:
            records.append(record)
    return TableSource(name=spec.name, ablation=spec.ablation, factor=factor, records=records, origin=str(path),
                       expected_runs=len(runs), not_done=not_done, factor_order=order)


def load_source(source: str | Path) -> TableSource:
    """A ``.yaml`` grid spec or a folder of run records."""
    path = Path(source)
    if path.is_dir():
        return records_from_folder(path)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return records_from_spec(path)
    raise ReportError(f"{source}: expected a grid spec (ablations/*.yaml) or a folder holding run records")


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


def runs_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: ids, metrics in percent, latency, and every config key as ``cfg:<dotted key>``."""
    rows = []
    for record in records:
        metrics = record.get("metrics") or {}
        config = record.get("config") or {}
        row: dict[str, Any] = {
            "run_id": record.get("run_id"), "model": record.get("model") or _get_or(config, "model.name"),
            "dataset": record.get("dataset") or _get_or(config, "data.dataset"), "seed": record.get("seed"),
            "miou": _percent(metrics.get("miou")), "tc": _percent(metrics.get("tc")),
            "pixel_acc": _percent(metrics.get("pixel_acc")),
            "latency_ms": latency_ms(record), "latency_recompute_ms": latency_ms(record, "recompute"),
            "checkpoint": record.get("checkpoint"), "run_dir": record.get("_run_dir"),
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
    """A summary table: numeric ``frame`` (CSV), its row keys, and notes printed under it."""

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


def _label(key: str) -> str:
    """``cfg:model.memory_length`` -> ``memory_length``, ``cfg:model.flow.source`` -> ``flow.source``,
    ``cfg:model.name`` -> ``method``: the dotted key without its section."""
    key = key.removeprefix("cfg:")
    return "method" if key == "model.name" else key.split(".", 1)[-1]


def _sort_value(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, str(value))


def summarise(source: TableSource, reference: dict[str, Any]) -> Table:
    """Group the source's runs by factor value (and any other varying key) -> mean, std, n, paper, delta."""
    runs = runs_frame(source.records)
    if runs.empty:
        raise ReportError(f"{source.origin}: no finished run records")
    vary = varying_keys(runs)
    factor_col = f"cfg:{source.factor}" if source.factor else None
    if factor_col is not None and factor_col not in runs.columns:
        raise ReportError(f"{source.origin}: factor {source.factor!r} is not a config key of its records")
    if factor_col is None:  # a folder: the method if it varies, else the first varying key
        factor_col = "cfg:model.name" if "cfg:model.name" in vary or not vary else vary[0]
    # extra key columns: keys that still vary once the factor is fixed (e.g. a second grid axis)
    extra = [c for c in vary if c != factor_col
             and runs.groupby(factor_col, dropna=False)[c].agg(lambda s: s.astype(str).nunique()).max() > 1]
    keys = [factor_col] + extra
    rows = []
    for values, group in runs.groupby(keys, dropna=False, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        first = {k.removeprefix("cfg:"): v for k, v in group.iloc[0].items() if str(k).startswith("cfg:")}
        dataset = group["dataset"].iloc[0]
        paper, note = paper_number(reference, dataset, first, source.ablation)
        mean = float(group["miou"].mean())
        row = dict(zip(keys, values))
        row.update({
            "miou_mean": mean,
            "miou_std": float(group["miou"].std(ddof=1)) if len(group) > 1 else math.nan,
            "n": int(len(group)),
            "tc_mean": float(group["tc"].mean()) if group["tc"].notna().any() else math.nan,
            "latency_ms": float(group["latency_ms"].mean()) if group["latency_ms"].notna().any() else math.nan,
            "paper_miou": paper if paper is not None else math.nan,
            "delta": mean - paper if paper is not None else math.nan,
            "paper_note": note,
            "run_ids": " ".join(str(r) for r in group["run_id"]),
        })
        rows.append(row)
    frame = pd.DataFrame(rows)
    order = source.factor_order or sorted(frame[factor_col].unique(), key=_sort_value)
    rank = {v: i for i, v in enumerate(order)}
    frame = frame.sort_values(by=factor_col, key=lambda s: s.map(lambda v: rank.get(v, len(rank))), kind="stable")
    frame = frame.reset_index(drop=True).rename(columns={k: _label(k) for k in keys})
    notes = _table_notes(source, frame, reference)
    return Table(name=source.name, ablation=source.ablation, factor_label=_label(factor_col),
                 key_columns=[_label(k) for k in keys], key_sources=keys, frame=frame, runs=runs,
                 per_class=per_class_frame(source.records), notes=notes, origin=source.origin)


def _table_notes(source: TableSource, frame: pd.DataFrame, reference: dict[str, Any]) -> list[str]:
    notes = ["mIoU and TC in percent; std = sample standard deviation over seeds (ddof=1); n = finished runs; "
             "latency = streaming-mode median ms per frame (`bench latency`), mean over seeds; "
             "delta = reproduced − paper."]
    if source.expected_runs is not None and source.not_done:
        notes.append(f"{len(source.not_done)} of {source.expected_runs} runs of the spec have no finished record "
                     f"yet: {', '.join(source.not_done[:8])}{' …' if len(source.not_done) > 8 else ''}")
    factor = frame.columns[0]
    for note, rows in frame.groupby("paper_note", sort=False)[factor]:
        notes.append(f"paper ({factor} {', '.join(map(str, rows))}): {note}")
    src = reference.get("source") or {}
    if frame["paper_miou"].notna().any() and src:
        notes.append(f"paper numbers: {src.get('paper')}, arXiv {src.get('arxiv')}, {src.get('table')}.")
    return notes


def _fmt(value: Any, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def display_frame(table: Table) -> pd.DataFrame:
    """Strings for Markdown / LaTeX: 2 decimals, signed delta, "—" where there is no value."""
    frame = table.frame
    shown = pd.DataFrame({k: frame[k].astype(str) for k in table.key_columns})
    shown["mIoU (%)"] = frame["miou_mean"].map(_fmt)
    shown["std"] = frame["miou_std"].map(_fmt)
    shown["n"] = frame["n"].astype(int).astype(str)
    shown["TC (%)"] = frame["tc_mean"].map(_fmt)
    shown["latency ms"] = frame["latency_ms"].map(_fmt)
    shown["paper mIoU"] = frame["paper_miou"].map(lambda v: _fmt(v, 1))
    shown["delta"] = frame["delta"].map(lambda v: _fmt(v, 2, signed=True))
    return shown


def write_table(table: Table, out_dir: str | Path) -> dict[str, Path]:
    """``<out_dir>/tables/<name>.{md,tex,csv}``; returns the paths by suffix."""
    folder = Path(out_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
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


def reading(table: Table) -> str:
    """One sentence from the data, e.g. "best memory_length: 4 (72.1 ± 0.8 mIoU, n=3)"."""
    frame = table.frame
    best = frame.loc[frame["miou_mean"].idxmax()]
    key = ", ".join(f"{k}={best[k]}" for k in table.key_columns[1:])
    text = (f"best {table.factor_label}: {best[table.factor_label]}{' (' + key + ')' if key else ''} "
            f"({best['miou_mean']:.1f} ± {_fmt(best['miou_std'], 1)} mIoU, n={int(best['n'])})")
    if len(frame) > 1:
        worst = frame.loc[frame["miou_mean"].idxmin()]
        text += f"; worst: {worst[table.factor_label]} ({worst['miou_mean']:.1f})"
    with_paper = frame[frame["paper_miou"].notna()]
    if not with_paper.empty:
        parts = [f"{r[table.factor_label]} {r['delta']:+.1f}" for _, r in with_paper.iterrows()]
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


def build_report(sources: list[str | Path], out_dir: str | Path,
                 reference_path: str | Path = PAPER_REFERENCE_PATH, figures: bool = True) -> dict[str, Any]:
    """Tables (and figures) for every source under ``out_dir``; returns what was written."""
    from bench.report.figures import draw_all

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reference = load_paper_reference(reference_path)
    written: list[tuple[Table, dict[str, Path]]] = []
    skipped: list[str] = []
    names: set[str] = set()
    for source in sources:
        loaded = load_source(source)
        if not loaded.records:
            skipped.append(f"{source}: no finished run records")
            continue
        while loaded.name in names:  # two folders with the same name
            loaded.name += "_"
        names.add(loaded.name)
        table = summarise(loaded, reference)
        written.append((table, write_table(table, out)))
    drawn = draw_all([t for t, _ in written], out / "figures") if figures else []
    index = write_index(out, written, drawn)
    return {"tables": written, "figures": drawn, "index": index, "skipped": skipped}


def report_command(sources: list[str], out_dir: str) -> int:
    """``bench report``: print what was written; 1 when no source had a finished run."""
    result = build_report(sources, out_dir)
    for note in result["skipped"]:
        print(f"skipped {note}")
    for table, paths in result["tables"]:
        print(f"table {table.name}: {', '.join(str(p) for p in paths.values())}")
        print(f"  {reading(table)}")
    for fig in result["figures"]:
        print(f"figure {fig.name}: {', '.join(str(p) for p in fig.paths) or 'not drawn: ' + fig.reading}")
    print(f"index: {result['index']}")
    return 0 if result["tables"] else 1

"""Where a report's records come from: a grid spec (expanded as ``bench sweep`` expands it) or a folder.

    source = load_source("ablations/synthetic_methods.yaml", overrides=["train.iters=10"])
    source.records, source.not_done, source.invalid          # finished records, missing run ids, skipped files
    load_source("results/runs")                              # every record.json below a folder

A ``record.json`` that fails ``validate_record`` is skipped with the reason (``strict``: ``ReportError``):
besides malformed fields, a stored config that no longer validates (``bench status`` calls that run corrupt)
and a headline ``metrics.miou`` that disagrees with the record's own per-image counts (reports recompute,
never trust). One run id counts once: a second record of a run id already read (a copy in another folder) is
left out and named in ``duplicates``. Only records with ``status: done`` count. A spec names the runs it
expects, so the table can say which are missing and whether the last sweep of the grid ran with other
overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import Config, ConfigError, apply_overrides, from_dict, read_yaml_with_base
from bench.errors import BenchError
from bench.grid import manifest
from bench.grid.spec import Grid, build_grid
from bench.models import registry
from bench.run.fingerprint import code_changes, code_fingerprint, unchecked_plugins
from bench.run.reads import RecordState
from bench.run.rundir import RunDir
from bench.run.validity import record_problem


class ReportError(BenchError, ValueError):
    """A source that is neither a grid spec nor a folder, or a malformed record / reference file."""


@dataclass
class TableSource:
    """The records behind one table and what the table is about."""

    name: str  # output file stem
    ablation: str  # memory_length | aggregation | encoding | methods | runs
    factor: str | None  # dotted config key the rows vary, e.g. "model.memory_length"
    records: list[dict[str, Any]]  # valid records with status done, each with "_run_dir"
    origin: str  # the spec file or folder
    expected_runs: int | None = None  # runs the spec expands to (None for folders)
    not_done: list[str] = field(default_factory=list)  # run ids of the spec without a finished record
    factor_order: list[Any] = field(default_factory=list)
    base_value: Any = None  # the factor's value in the spec's base config (the reference row)
    overrides: list[str] = field(default_factory=list)  # command-line overrides the spec was expanded with
    invalid: list[str] = field(default_factory=list)  # "<record.json path>: <reason>" of skipped records
    duplicates: list[str] = field(default_factory=list)  # "<run id>: <path> (also <first path>)" left out
    hint: str = ""  # why the runs of another sweep of this grid are not shown, if they exist
    unchecked: list[str] = field(default_factory=list)  # "<run id>: plugin X": code not checked (not found here)


def validate_record(record: Any) -> str | None:
    """Why ``record`` (a parsed ``record.json``) cannot be reported, or None when it can: THE validity check of
    ``bench.run.validity.record_problem``, the one ``bench status`` and ``bench sweep`` apply too."""
    return record_problem(record)


def record_plugins(record: dict[str, Any]) -> list[str]:
    """The plugins a record's model depends on: none for a built-in model; else those its code fingerprint
    hashed (a record without a fingerprint: every plugin its config lists)."""
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    if registry.is_builtin(str((config.get("model") or {}).get("name"))):
        return []
    code = record.get("code")
    if isinstance(code, dict) and isinstance(code.get("plugins"), dict):
        return sorted(map(str, code["plugins"]))
    return [str(p) for p in config.get("plugins") or []]


def stale_reason(record: dict[str, Any]) -> str | None:
    """Why a valid record was made by other code than this checkout's (``bench.run.fingerprint``), or None. A
    plugin that cannot be found here is not checked (``unchecked_reason``), never imported."""
    changes = code_changes(record.get("code"), code_fingerprint(record_plugins(record)))
    if not changes:
        return None
    return (
        f"stale: code changed ({'; '.join(changes)}); train it again (bench sweep SPEC --rerun-stale) or "
        f"pass --accept-stale to report it as it is"
    )


def unchecked_reason(record: dict[str, Any]) -> str | None:
    """``"<run id>: plugin X"`` when a record's plugin cannot be found here, so its code is not checked; else None."""
    missing = unchecked_plugins(code_fingerprint(record_plugins(record)))
    return f"{record.get('run_id')}: plugin {', '.join(missing)}" if missing else None


def read_run_record(
    run_dir: Path, strict: bool = False, accept_stale: bool = False
) -> tuple[dict[str, Any] | None, str | None]:
    """The record of one run folder (``bench.run.rundir.RunDir.read_record``): ``(record with "_run_dir", None)``,
    ``(None, "<path>: <reason>")`` when it cannot be reported, or ``(None, None)`` when there is none.

    ``strict``: an unusable record raises ReportError instead. A record made by other code (``stale_reason``)
    is unusable unless ``accept_stale``.
    """
    read = RunDir(run_dir).read_record()
    if read.state is RecordState.MISSING:
        return None, None
    path = RunDir(run_dir).record_file
    reason = read.reason if read.state is RecordState.CORRUPT else validate_record(read.record)
    if reason is None and not accept_stale:
        reason = stale_reason(read.record)
    if reason is not None:
        reason = reason if reason.startswith(str(path)) else f"{path}: {reason}"
        if strict:
            raise ReportError(f"{reason}; fix or remove the file, or drop --strict to skip it with a warning")
        return None, reason
    return {**read.record, "_run_dir": str(run_dir)}, None


def records_from_folder(folder: Path, strict: bool = False, accept_stale: bool = False) -> TableSource:
    """Every valid finished record below ``folder``; invalid ones are listed in ``invalid``."""
    records, invalid, duplicates = [], [], []
    seen: dict[str, str] = {}
    for run_dir in RunDir.below(folder):
        record, problem = read_run_record(run_dir, strict, accept_stale)
        invalid += [problem] if problem is not None else []
        if record is None:
            continue
        if record["run_id"] in seen:
            duplicates.append(f"{record['run_id']}: {run_dir} (also {seen[record['run_id']]}, the one used)")
            continue
        seen[record["run_id"]] = str(run_dir)
        records.append(record)
    return TableSource(
        name=folder.resolve().name or "runs",
        ablation="runs",
        factor=None,
        records=records,
        origin=str(folder),
        invalid=invalid,
        duplicates=duplicates,
        unchecked=[u for u in map(unchecked_reason, records) if u],
    )


def _spec_factor(spec: Any) -> str | None:
    """The dotted key a spec varies: its ``factor``, else the first key of its first grid block."""
    if spec.factor:
        return spec.factor
    for block in spec.grid:
        for axes in block.values():
            return str(next(iter(axes)))
    return None


def get_dotted(obj: Any, key: str) -> Any:
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def other_sweep_hint(expected: list[str], manifest_ids: list[str], found: int) -> str:
    """A note when the last sweep of this grid ran runs this expansion does not contain (other overrides)."""
    others = list(dict.fromkeys(i for i in manifest_ids if i not in set(expected)))
    if not manifest_ids or manifest_ids[-1] in expected:
        return ""
    what = "no finished records" if not found else f"{found} finished records (of an earlier sweep)"
    return (
        f"the last sweep of this grid ran with different overrides: pass the same overrides to bench report "
        f"(this expansion has {what}; the sweep manifest lists {len(others)} other runs, e.g. {others[-1]})"
    )


def records_from_grid(grid: Grid, strict: bool = False, accept_stale: bool = False) -> TableSource:
    """The finished records of an expanded grid's runs, in the grid's order."""
    spec, runs = grid.spec, grid.runs
    manifest_ids = [str(row["run_id"]) for row in manifest.read(grid.manifest) if row.get("run_id")]
    factor = _spec_factor(spec)
    base_value = _base_value(spec, factor) if factor else None
    records, not_done, order, invalid = [], [], [], []
    for run in runs:
        value = get_dotted(run.config, factor) if factor else None
        if value not in order:
            order.append(value)
        record, problem = read_run_record(Path(run.run_dir), strict, accept_stale)
        invalid += [problem] if problem is not None else []
        if record is None:
            not_done.append(run.run_id)
        else:
            records.append(record)
    expected = [run.run_id for run in runs]
    return TableSource(
        name=spec.name,
        ablation=spec.ablation,
        factor=factor,
        records=records,
        origin=str(spec.path),
        expected_runs=len(runs),
        not_done=not_done,
        factor_order=order,
        base_value=base_value,
        overrides=list(grid.overrides),
        invalid=invalid,
        hint=other_sweep_hint(expected, manifest_ids, len(records)),
        unchecked=[u for u in map(unchecked_reason, records) if u],
    )


def _base_value(spec: Any, factor: str) -> Any:
    """The factor's value in the spec's base config with the spec's ``overrides`` (defaults filled in)."""
    values = apply_overrides(read_yaml_with_base(spec.base), list(spec.overrides.items()))
    try:
        return get_dotted(from_dict(Config, values), factor)
    except (ConfigError, KeyError, AttributeError):
        return None


def load_source(
    source: str | Path | Grid,
    overrides: list[str] | tuple[str, ...] = (),
    strict: bool = False,
    accept_stale: bool = False,
) -> TableSource:
    """An expanded ``Grid``, a ``.yaml`` grid spec (expanded with ``overrides``) or a folder of run records;
    records made by other code are skipped (listed as invalid) unless ``accept_stale``."""
    if isinstance(source, Grid):
        return records_from_grid(source, strict, accept_stale)
    path = Path(source)
    if path.is_dir():
        return records_from_folder(path, strict, accept_stale)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        # recorded: a plugin that is not importable here is described as the last sweep recorded it
        return records_from_grid(build_grid(path, list(overrides), recorded=True), strict, accept_stale)
    if not path.exists():
        raise ReportError(
            f"{source}: no such file or folder; pass a grid spec (ablations/*.yaml) or a folder holding run records"
        )
    raise ReportError(f"{source}: expected a grid spec (ablations/*.yaml) or a folder holding run records")


def split_sources(arguments: list[str]) -> tuple[list[str], list[str]]:
    """``bench report`` positionals -> ``(sources, overrides)``: an argument with '=' that is not an existing
    path is a dotted override (``train.iters=10``), applied to every grid spec, as in ``bench sweep``."""
    overrides = [a for a in arguments if "=" in a and not Path(a).exists()]
    return [a for a in arguments if a not in overrides], overrides

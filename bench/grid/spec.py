"""Ablation grids: spec files, expansion into runs, the run table, status, and the ``bench sweep`` command.

    bench sweep ablations/synthetic_memory_length.yaml --dry-run          # run table, nothing submitted
    bench sweep ablations/synthetic_memory_length.yaml --launcher local --max-parallel 2
    bench sweep ablations/cityscapes_memory_length.yaml --launcher slurm train.iters=40000
    bench status ablations/synthetic_memory_length.yaml                   # done / running / failed / pending

A grid spec (``ablations/*.yaml``; see ablations/README.md)::

    name: synthetic_memory_length          # names results/sweeps/<name>/ (manifest, logs)
    ablation: memory_length                # memory_length | aggregation | encoding | methods (for reports)
    factor: model.memory_length            # the column a report varies over
    description: ...                       # optional
    base: ../configs/synthetic_tmanet.yaml # relative to the spec file
    overrides: {train.iters: 300}          # dotted keys applied to every run
    grid:                                  # a union of blocks; each block is a product and/or a zip
      - product: {model.memory_length: [1, 2, 4]}
      - zip: {model.name: [per_frame, flow_warp], model.flow.source: [raft, ground_truth]}
    seeds: [0, 1]                          # sets train.seed; omitted = the config's seed
    launch: {launcher: local, max_parallel: 1}   # LaunchConfig keys

A block with both ``product`` and ``zip`` crosses the product with the zipped rows. Each run's config is
base < ``overrides`` < block entry < seed < ``launch`` < command-line overrides; every expanded config is
validated before anything runs. Its id is ``run_id(config)``, so runs shared between grids (or repeated
inside one) have one run dir and are trained once; finished runs (``record.json``) are skipped.

Bookkeeping lives in ``<output_root>/../sweeps/<name>/`` (``results/sweeps/<name>`` by default):
``manifest.jsonl`` (one line per submission with its job id, and per local run end), ``configs/``, ``logs/``.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.config import (Config, ConfigError, LaunchConfig, apply_overrides, deep_merge, from_dict,
                          parse_override, read_yaml_with_base)
from bench.models.registry import RegistryError
from bench.run.identity import run_id

SPEC_KEYS = ("name", "ablation", "factor", "description", "base", "overrides", "grid", "seeds", "launch")
ABLATIONS = ("memory_length", "aggregation", "encoding", "methods", "other")
STATES = ("done", "running", "failed", "pending")


class SweepError(ConfigError):
    """A grid spec is malformed or expands to an invalid config; the message names the file and entry."""


@dataclass
class GridSpec:
    """A parsed ``ablations/*.yaml`` file (paths resolved)."""

    path: Path
    name: str
    base: Path
    grid: list[dict[str, dict[str, list[Any]]]]
    ablation: str = "other"
    factor: str = ""
    description: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] | None = None
    launch: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """One expanded run: its resolved config, the grid entries that made it, and its seed."""

    run_id: str
    config: Config
    varied: dict[str, Any]
    seed: int
    also: list[dict[str, Any]] = field(default_factory=list)  # other grid entries that resolved to this run

    @property
    def cfg(self) -> Config:
        return self.config

    @property
    def run_dir(self) -> Path:
        return self.config.resolved_run_dir()


@dataclass
class RunStatus:
    run: Run
    state: str  # one of STATES
    reason: str = ""
    job_id: str = ""
    active: bool = False  # owned by a live process or a queued/running SLURM job: do not launch it again


# --------------------------------------------------------------------------------------------------
# spec parsing and expansion


def _fail(path: Path, message: str) -> SweepError:
    return SweepError(f"{path}: {message}")


def load_spec(path: str | Path) -> GridSpec:
    """Read and check a grid spec; errors name the file and the offending key."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"grid spec not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise _fail(path, f"not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise _fail(path, "the top level must be a mapping")
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise _fail(path, f"unknown key {unknown[0]!r}; valid keys: {', '.join(SPEC_KEYS)}")
    if not data.get("base"):
        raise _fail(path, "'base' (the config file every run starts from) is required")
    base = (path.parent / str(data["base"])).resolve()
    if not base.is_file():
        raise _fail(path, f"base config not found: {base}")
    ablation = data.get("ablation", "other")
    if ablation not in ABLATIONS:
        raise _fail(path, f"ablation {ablation!r} is not one of {', '.join(ABLATIONS)}")
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise _fail(path, "'overrides' must be a mapping of dotted keys to values")
    launch = data.get("launch") or {}
    if not isinstance(launch, dict):
        raise _fail(path, "'launch' must be a mapping of LaunchConfig keys")
    try:
        from_dict(LaunchConfig, launch, prefix="launch.")
    except ConfigError as err:
        raise _fail(path, str(err)) from err
    seeds = data.get("seeds")
    if seeds is not None:
        integers = isinstance(seeds, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
        if not seeds or not integers:
            raise _fail(path, f"'seeds' must be a non-empty list of integers, got {seeds!r}")
    grid = _check_grid(path, data.get("grid"))
    return GridSpec(path=path, name=str(data.get("name") or path.stem), base=base, grid=grid, ablation=ablation,
                    factor=str(data.get("factor", "")), description=str(data.get("description", "")),
                    overrides=dict(overrides), seeds=seeds, launch=dict(launch))


def _check_grid(path: Path, grid: Any) -> list[dict[str, dict[str, list[Any]]]]:
    if not isinstance(grid, list) or not grid:
        raise _fail(path, "'grid' must be a non-empty list of blocks, each with 'product' and/or 'zip' "
                          "(e.g. grid: [{product: {model.memory_length: [1, 2, 4]}}])")
    blocks = []
    for i, block in enumerate(grid):
        where = f"grid[{i}]"
        if not isinstance(block, dict) or not block or set(block) - {"product", "zip"}:
            raise _fail(path, f"{where} must be a mapping with 'product' and/or 'zip', got {block!r}")
        for kind, axes in block.items():
            if not isinstance(axes, dict) or not axes:
                raise _fail(path, f"{where}.{kind} must map dotted keys to non-empty lists of values")
            for key, values in axes.items():
                if not isinstance(values, list) or not values:
                    raise _fail(path, f"{where}.{kind}.{key} must be a non-empty list of values, got {values!r}")
                if str(key).startswith("launch.") or key == "launch":
                    raise _fail(path, f"{where}.{kind}.{key}: launch settings belong under 'launch:', not the grid")
            if kind == "zip" and len({len(v) for v in axes.values()}) != 1:
                lengths = ", ".join(f"{k}: {len(v)}" for k, v in axes.items())
                raise _fail(path, f"{where}.zip lists must have equal lengths ({lengths})")
        both = set(block.get("product", {})) & set(block.get("zip", {}))
        if both:
            raise _fail(path, f"{where}: key {sorted(both)[0]} is in both product and zip")
        blocks.append(block)
    return blocks


def expand_block(block: dict[str, dict[str, list[Any]]]) -> list[dict[str, Any]]:
    """The entries of one block: the product of ``product`` axes crossed with the rows of ``zip``.

    ``{"product": {"a": [1, 2]}, "zip": {"b": [3, 4], "c": [5, 6]}}`` ->
    ``[{a:1,b:3,c:5}, {a:1,b:4,c:6}, {a:2,b:3,c:5}, {a:2,b:4,c:6}]``.
    """
    product = block.get("product", {})
    zipped = block.get("zip", {})
    product_rows = [dict(zip(product, values)) for values in itertools.product(*product.values())] if product else [{}]
    zip_rows = [dict(zip(zipped, values)) for values in zip(*zipped.values())] if zipped else [{}]
    return [{**p, **z} for p in product_rows for z in zip_rows]


def expand_grid(spec: GridSpec, overrides: list[str] | tuple[str, ...] = (),
                launch: dict[str, Any] | None = None) -> list[Run]:
    """All distinct runs of ``spec``, in grid order; every config is built and validated here.

    ``overrides`` are command-line ``key=value`` strings (applied last); ``launch`` holds command-line
    launch settings (e.g. ``{"launcher": "slurm"}``) applied over the spec's.
    """
    base_values = read_yaml_with_base(spec.base)
    cli = [parse_override(o) if isinstance(o, str) else o for o in overrides]
    launch_values = deep_merge(spec.launch, {k: v for k, v in (launch or {}).items() if v is not None})
    runs: dict[str, Run] = {}
    for i, block in enumerate(spec.grid):
        for entry in expand_block(block):
            for seed in spec.seeds or [None]:
                values = apply_overrides(base_values, list(spec.overrides.items()) + list(entry.items()))
                if seed is not None:
                    values = apply_overrides(values, [("train.seed", seed)])
                values["launch"] = deep_merge(values.get("launch") or {}, launch_values)
                values = apply_overrides(values, cli)
                where = f"grid[{i}] entry {_format_varied(entry) or '(base)'}"
                where += f" seed {seed}" if seed is not None else ""
                try:
                    cfg = from_dict(Config, values)
                    rid = run_id(cfg)  # imports the model's plugins: an unknown model fails here
                except (ConfigError, RegistryError) as err:
                    raise _fail(spec.path, f"{where}: {err}") from err
                if rid in runs:
                    runs[rid].also.append(entry)
                else:
                    runs[rid] = Run(rid, cfg, dict(entry), cfg.train.seed)
    return list(runs.values())


def expand_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> list[Run]:
    """``expand_grid(load_spec(path), overrides)``: the distinct, validated runs of a spec file."""
    return expand_grid(load_spec(path), overrides)


def check_models(spec: GridSpec, runs: list[Run]) -> None:
    """Every run's model name is registered and its ``model.options`` are accepted (imports torch)."""
    from bench.models.registry import RegistryError, factory_kwargs, get_factory, load_plugins

    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    for run in runs:
        model = run.config.model
        key = (model.name, json.dumps(model.options, sort_keys=True), tuple(run.config.plugins))
        if key in seen:
            continue
        seen.add(key)
        try:
            load_plugins(run.config.plugins)
            factory_kwargs(get_factory(model.name), model)
        except RegistryError as err:
            raise _fail(spec.path, f"run {run.run_id} ({_format_varied(run.varied)}): {err}") from err


def _format_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _format_varied(entry: dict[str, Any]) -> str:
    return " ".join(f"{k}={_format_value(v)}" for k, v in entry.items())


# --------------------------------------------------------------------------------------------------
# bookkeeping and status


def sweep_dir(spec: GridSpec, runs: list[Run]) -> Path:
    """``<output_root>/../sweeps/<name>``: the manifest, per-run configs and local logs of a sweep."""
    output_root = Path(runs[0].config.output_root) if runs else Path("results/runs")
    return output_root.parent / "sweeps" / spec.name


def latest_submissions(manifest: Path) -> dict[str, dict[str, Any]]:
    """Per run id, the last ``submit`` line of the manifest, with its ``end`` line merged in if any."""
    from bench.grid.launch import read_jsonl

    latest: dict[str, dict[str, Any]] = {}
    for row in read_jsonl(manifest):
        rid = row.get("run_id")
        if row.get("event") == "submit":
            latest[rid] = dict(row)
        elif row.get("event") == "end" and rid in latest and latest[rid].get("job_id") == row.get("job_id"):
            latest[rid].update(returncode=row.get("returncode"), end_reason=row.get("reason", ""))
    return latest


def run_statuses(runs: list[Run], manifest: Path) -> list[RunStatus]:
    """done / running / failed / pending for each run, with a reason, from the run dirs and the manifest.

    Order of evidence: ``record.json`` (done); a live ``claim.json`` (running); an active SLURM job in the
    manifest (pending: queued); ``error.json`` (failed, last traceback line); a manifest job that ended
    without a record (failed, its SLURM state or exit code); otherwise pending.
    """
    from bench.grid.launch import (ACTIVE_SLURM_STATES, CLAIM_FILE, ERROR_FILE, RECORD_FILE, claim_liveness,
                              read_json, slurm_job_states)

    submissions = latest_submissions(manifest)
    slurm_ids = [s["job_id"] for s in submissions.values() if s.get("launcher") == "slurm"]
    states = slurm_job_states(slurm_ids) if slurm_ids else {}
    out: list[RunStatus] = []
    for run in runs:
        sub = submissions.get(run.run_id, {})
        job_id = str(sub.get("job_id", ""))
        record = read_json(run.run_dir / RECORD_FILE)
        if record is not None and record.get("status", "done") == "done":
            out.append(RunStatus(run, "done", _metric_text(record), job_id))
            continue
        claim = read_json(run.run_dir / CLAIM_FILE)
        if claim is not None:
            alive, why = claim_liveness(claim)
            if alive:
                # a SLURM claim also lives while its job waits (e.g. requeued after a preemption)
                waiting = bool(claim.get("job_id")) and " RUNNING" not in why and "cannot query" not in why
                state, why = ("pending", f"{why} (holds the claim)") if waiting else ("running", why)
                out.append(RunStatus(run, state, why, str(claim.get("job_id") or job_id), active=True))
                continue
        slurm_state = states.get(job_id, "") if sub.get("launcher") == "slurm" else ""
        if slurm_state in ACTIVE_SLURM_STATES:
            word = "running" if slurm_state == "RUNNING" else "pending"
            out.append(RunStatus(run, word, f"SLURM job {job_id} {slurm_state}", job_id, active=True))
            continue
        error = read_json(run.run_dir / ERROR_FILE)
        if error is not None:
            where = f" (job {error.get('job_id')})" if error.get("job_id") else ""
            out.append(RunStatus(run, "failed", f"{error.get('last_line', error.get('error', ''))}{where}", job_id))
            continue
        if sub.get("launcher") == "slurm":
            reason = f"SLURM job {job_id} {slurm_state or 'ended (unknown to sacct)'}, no record"
            if claim is not None:
                reason += " (left a stale claim)"
            out.append(RunStatus(run, "failed", reason, job_id))
        elif sub.get("launcher") == "local" and sub.get("returncode") not in (None, 0):
            out.append(RunStatus(run, "failed", f"exit code {sub['returncode']}: {sub.get('end_reason', '')}", job_id))
        elif sub.get("launcher") == "local" and sub.get("returncode") is None and claim is not None:
            out.append(RunStatus(run, "failed", f"local process died ({claim_liveness(claim)[1]})", job_id))
        else:
            out.append(RunStatus(run, "pending", "not submitted" if not sub else "no record yet", job_id))
    return out


def _metric_text(record: dict[str, Any]) -> str:
    miou = (record.get("metrics") or {}).get("miou")
    return f"mIoU {100 * miou:.2f}" if isinstance(miou, (int, float)) else ""


def format_table(statuses: list[RunStatus]) -> str:
    """The run table: id, varied overrides, seed, status, reason."""
    from tabulate import tabulate

    rows = [(s.run.run_id, _format_varied(s.run.varied) or "(base)", s.run.seed, s.state, s.reason)
            for s in statuses]
    return tabulate(rows, headers=("run id", "varied", "seed", "status", "reason"), tablefmt="simple")


def _counts(statuses: list[RunStatus]) -> str:
    return ", ".join(f"{sum(s.state == k for s in statuses)} {k}" for k in STATES)


# --------------------------------------------------------------------------------------------------
# commands


def prepare(spec_path: str | Path, overrides: list[str] | tuple[str, ...] = (),
            launch: dict[str, Any] | None = None, check_model_names: bool = True) -> tuple[GridSpec, list[Run]]:
    """Load and expand a spec, validating every run (and, optionally, the model names)."""
    spec = load_spec(spec_path)
    runs = expand_grid(spec, overrides, launch)
    if check_model_names:
        check_models(spec, runs)
    return spec, runs


def sweep_command(spec: str, launcher: str | None = None, dry_run: bool = False, max_parallel: int | None = None,
                  overrides: list[str] | tuple[str, ...] = ()) -> int:
    """``bench sweep``: validate everything, then print the table (dry run) or launch the missing runs.

    Returns 0 when every launched run succeeded (local) or was submitted (SLURM), 1 otherwise.
    """
    from bench.grid.launch import LaunchError, run_local, slurm_reachable, submit_slurm

    launch_cli: dict[str, Any] = {"launcher": launcher}
    if max_parallel is not None:
        if max_parallel < 1:
            raise SweepError(f"--max-parallel must be >= 1, got {max_parallel}")
        launch_cli["max_parallel"] = max_parallel
        launch_cli["array_parallelism"] = max_parallel
    grid, runs = prepare(spec, overrides, launch_cli)
    launch = runs[0].config.launch
    folder = sweep_dir(grid, runs)
    manifest = folder / "manifest.jsonl"
    statuses = run_statuses(runs, manifest)
    print(f"sweep {grid.name}: {len(runs)} runs ({_counts(statuses)}); launcher {launch.launcher}; "
          f"bookkeeping in {folder}")
    print(format_table(statuses))
    if dry_run:
        return 0
    todo = [s.run for s in statuses if s.state in ("pending", "failed") and not s.active]
    if not todo:
        print("nothing to do: every run is done, running or queued")
        return 0
    try:
        if launch.launcher == "slurm":
            ok, why = slurm_reachable()
            if not ok:
                raise LaunchError(f"cannot use the slurm launcher: {why}")
            if launch.time_min < 11:
                print(f"warning: launch.time_min={launch.time_min} < 11: submitit treats every USR2 as a time-out "
                      "(at most 20 requeues) instead of a preemption", file=sys.stderr)
            jobs = submit_slurm(todo, launch, folder, grid.name, manifest)
            array = str(jobs[0].job_id).split("_")[0] if jobs else "?"
            print(f"submitted {len(jobs)} runs as SLURM array {array}; follow with: bench status {spec}")
            return 0
        print(f"running {len(todo)} runs locally, {launch.max_parallel} at a time")
        start = time.time()
        results = run_local(todo, launch.max_parallel, folder, manifest)
    except LaunchError as err:
        print(f"bench: launch error: {err}", file=sys.stderr)
        return 2
    failed = [r for r in results if r.returncode != 0]
    print(f"\nsweep {grid.name} finished in {time.time() - start:.1f}s: "
          f"{len(results) - len(failed)} ok, {len(failed)} not ok")
    final = run_statuses(runs, manifest)
    print(format_table(final))
    return 1 if any(s.state == "failed" for s in final) else 0


def status_command(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> int:
    """``bench status``: print every run's state and reason; returns 0.

    Pass the same dotted overrides as to ``bench sweep`` (they change the run ids).
    """
    grid, runs = prepare(spec, overrides, check_model_names=False)
    statuses = run_statuses(runs, sweep_dir(grid, runs) / "manifest.jsonl")
    print(f"sweep {grid.name}: {len(runs)} runs ({_counts(statuses)})")
    print(format_table(statuses))
    return 0

"""Ablation grids: spec files and their pure expansion into typed runs (``Grid``, ``Run``).

    from bench.grid.spec import build_grid
    grid = build_grid("ablations/synthetic_memory_length.yaml", ["train.iters=40"], {"launcher": "local"})
    grid.runs[0].run_id, grid.runs[0].run_dir, grid.launch.max_parallel, grid.sweep_dir

A grid spec (``ablations/*.yaml``; see ablations/README.md)::

    name: synthetic_memory_length          # names results/sweeps/<name>/ (manifest, logs)
    ablation: memory_length                # memory_length | aggregation | encoding | methods | sota | other
    factor: model.memory_length            # the column a report varies over
    description: ...                       # optional
    base: ../configs/synthetic_tmanet.yaml # relative to the spec file
    overrides: {train.iters: 300}          # dotted keys applied to every run
    grid:                                  # a union of blocks; each block is a product and/or a zip
      - product: {model.memory_length: [1, 2, 4]}
      - zip: {model.name: [per_frame, flow_warp], model.flow.source: [raft, ground_truth]}
    seeds: [0, 1]                          # sets train.seed; omitted = the config's seed
    launch: {launcher: local, max_parallel: 1}   # LaunchConfig keys: the grid's launch settings

A block with both ``product`` and ``zip`` crosses the product with the zipped rows. Each run's config is
base < ``overrides`` < block entry < seed < ``launch`` < command-line overrides; every expanded config is
validated before anything runs. Its id is ``run_id(config)``, so runs shared between grids (or repeated
inside one) have one run dir and are trained once. Two different runs resolving to the same run dir (a base
config that sets ``run_dir``) are an error. The grid's own ``LaunchConfig`` is base < spec ``launch`` <
command line, independent of any run.

Bookkeeping lives in ``<output_root>/../sweeps/<name>/`` (``results/sweeps/<name>`` by default):
``manifest.jsonl`` (one line per submission with its job id, and per local run end) and ``logs/``.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.config import (
    Config,
    ConfigError,
    LaunchConfig,
    apply_overrides,
    check_inside,
    check_safe_name,
    deep_merge,
    from_dict,
    parse_override,
    read_yaml,
    read_yaml_with_base,
)
from bench.grid import manifest as manifest_file
from bench.models import registry
from bench.models.registry import RegistryError
from bench.run.identity import RunIdentity
from bench.run.rundir import RunDir

SPEC_KEYS = ("name", "ablation", "factor", "description", "base", "overrides", "grid", "seeds", "launch")
ABLATIONS = ("memory_length", "aggregation", "encoding", "methods", "sota", "other")


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


@dataclass(frozen=True, eq=False)
class Run:
    """One expanded run: its id, resolved config and run dir, the grid entry that made it, and its seed."""

    run_id: str
    config: Config
    run_dir: Path
    varied: dict[str, Any]
    seed: int
    also: tuple[dict[str, Any], ...] = ()  # other grid entries that resolved to this run


@dataclass(frozen=True, eq=False)
class Grid:
    """An expanded spec: its distinct runs in grid order, the grid's launch settings and bookkeeping folder."""

    spec: GridSpec
    runs: tuple[Run, ...]
    launch: LaunchConfig
    sweep_dir: Path
    overrides: tuple[str, ...] = ()  # the command-line overrides it was expanded with

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def manifest(self) -> Path:
        return manifest_path(self.sweep_dir)


def manifest_path(sweep_dir: Path) -> Path:
    """A grid's ``manifest.jsonl`` (``bench.grid.manifest``) in its bookkeeping folder."""
    return sweep_dir / "manifest.jsonl"


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
        data = read_yaml(path) or {}  # the config files' loader: one-line errors, repeated keys refused
    except ConfigError as err:
        raise SweepError(str(err)) from None
    if not isinstance(data, dict):
        raise _fail(path, "the top level must be a mapping")
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise _fail(path, f"unknown key {unknown[0]!r}; valid keys: {', '.join(SPEC_KEYS)}")
    if not data.get("base") or not isinstance(data["base"], str):
        raise _fail(path, f"'base' must name the one config file every run starts from, got {data.get('base')!r}")
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
    seeds = _check_seeds(path, data.get("seeds"))
    grid = _check_grid(path, data.get("grid"))
    try:  # the name becomes results/sweeps/<name>/ and reports/tables/<name>.*
        name = check_safe_name(data.get("name") or path.stem, "name")
    except ConfigError as err:
        raise _fail(path, str(err)) from None
    return GridSpec(
        path=path,
        name=name,
        base=base,
        grid=grid,
        ablation=ablation,
        factor=str(data.get("factor", "")),
        description=str(data.get("description", "")),
        overrides=dict(overrides),
        seeds=seeds,
        launch=dict(launch),
    )


def _check_seeds(path: Path, seeds: Any) -> list[int] | None:
    """``seeds``: None (the config's seed) or a non-empty list of distinct integers."""
    if seeds is None:
        return None
    integers = isinstance(seeds, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    if not seeds or not integers:
        raise _fail(path, f"'seeds' must be a non-empty list of integers, got {seeds!r}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise _fail(
            path,
            f"'seeds' {seeds} lists {repeated[0]} more than once; each seed is one run (n counts distinct "
            f"seeds): list each seed once",
        )
    return seeds


def _check_grid(path: Path, grid: Any) -> list[dict[str, dict[str, list[Any]]]]:
    if not isinstance(grid, list) or not grid:
        raise _fail(
            path,
            "'grid' must be a non-empty list of blocks, each with 'product' and/or 'zip' "
            "(e.g. grid: [{product: {model.memory_length: [1, 2, 4]}}])",
        )
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


def _entry_config(
    spec: GridSpec,
    base_values: dict[str, Any],
    entry: dict[str, Any],
    seed: int | None,
    launch_values: dict[str, Any],
    cli: list[Any],
    where: str,
) -> tuple[Config, str]:
    """The validated config of one grid entry and seed (order: module docstring), and its run id."""
    values = apply_overrides(base_values, list(spec.overrides.items()) + list(entry.items()))
    if seed is not None:
        values = apply_overrides(values, [("train.seed", seed)])
    values["launch"] = deep_merge(values.get("launch") or {}, launch_values)
    values = apply_overrides(values, cli)
    try:
        cfg = from_dict(Config, values)
        rid = RunIdentity.of(cfg).run_id  # imports the model's plugins: an unknown model fails here
    except (ConfigError, RegistryError) as err:
        raise _fail(spec.path, f"{where}: {err}") from err
    return cfg, rid


def _launch_values(launch: dict[str, Any] | None, spec: GridSpec) -> dict[str, Any]:
    return deep_merge(spec.launch, {k: v for k, v in (launch or {}).items() if v is not None})


def _expand(
    spec: GridSpec, overrides: list[str] | tuple[str, ...] = (), launch: dict[str, Any] | None = None
) -> list[Run]:
    """All distinct runs of ``spec``, in grid order; every config is built and validated here.

    ``overrides`` are command-line ``key=value`` strings (applied last); ``launch`` holds command-line
    launch settings (e.g. ``{"launcher": "slurm"}``) applied over the spec's. Two different runs with the
    same run dir are a ``SweepError``.
    """
    base_values = read_yaml_with_base(spec.base)
    cli = [parse_override(o) if isinstance(o, str) else o for o in overrides]
    launch_values = _launch_values(launch, spec)
    runs: dict[str, Run] = {}
    for i, block in enumerate(spec.grid):
        made: list[tuple[dict[str, Any], int | None, Config, str]] = []
        for entry in expand_block(block):
            for seed in spec.seeds or [None]:
                where = f"grid[{i}] entry {format_varied(entry) or '(base)'}"
                where += f" seed {seed}" if seed is not None else ""
                cfg, rid = _entry_config(spec, base_values, entry, seed, launch_values, cli, where)
                made.append((entry, seed, cfg, rid))
        _check_axes(spec, i, block, made)
        for entry, _seed, cfg, rid in made:
            if rid in runs:
                runs[rid] = replace(runs[rid], also=runs[rid].also + (dict(entry),))
            else:
                runs[rid] = Run(rid, cfg, RunDir.of(cfg, rid).path, dict(entry), cfg.train.seed)
    _check_distinct_run_dirs(spec, list(runs.values()))
    return list(runs.values())


def _check_axes(
    spec: GridSpec, index: int, block: dict[str, Any], made: list[tuple[dict[str, Any], int | None, Config, str]]
) -> None:
    """A product axis whose different values give the same run (a key the model does not take, data the dataset
    does not read) is refused here: it would collapse silently into fewer runs than the grid shows
    and a report over it would have no row per value."""
    for key, values in (block.get("product") or {}).items():
        if len(values) < 2:
            continue
        seen: dict[tuple[str, Any, str], Any] = {}
        for entry, seed, cfg, rid in made:
            rest = json.dumps({k: v for k, v in entry.items() if k != key}, sort_keys=True, default=str)
            first = seen.setdefault((rest, seed, rid), entry[key])
            if first == entry[key]:
                continue
            raise _fail(
                spec.path,
                f"grid[{index}].product.{key}: {key}={_format_value(first)} and {key}={_format_value(entry[key])} "
                f"give the same run {rid}: {cfg.model.name} does not take {key} (or data.dataset "
                f"{cfg.data.dataset} does not read it); remove the axis, or vary a key this model takes "
                f"(`bench models` lists each model's arguments)",
            )


def _check_distinct_run_dirs(spec: GridSpec, runs: list[Run]) -> None:
    seen: dict[Path, Run] = {}
    for run in runs:
        key = Path(run.run_dir).absolute()
        if key in seen:
            other = seen[key]
            raise _fail(
                spec.path,
                f"runs {other.run_id} ({format_varied(other.varied) or '(base)'}) and "
                f"{run.run_id} ({format_varied(run.varied) or '(base)'}) both resolve to "
                f"run_dir {run.run_dir}; remove run_dir from the base config and overrides "
                f"(each run then gets output_root/<run id>)",
            )
        seen[key] = run


def _grid_launch(
    spec: GridSpec, overrides: list[str] | tuple[str, ...] = (), launch: dict[str, Any] | None = None
) -> tuple[LaunchConfig, Path]:
    """The grid's own launch settings (base < spec ``launch`` < command line) and its output root."""
    values = apply_overrides(read_yaml_with_base(spec.base), list(spec.overrides.items()))
    values["launch"] = deep_merge(values.get("launch") or {}, _launch_values(launch, spec))
    values = apply_overrides(values, [parse_override(o) if isinstance(o, str) else o for o in overrides])
    try:
        launch_cfg = from_dict(LaunchConfig, values.get("launch") or {}, prefix="launch.")
    except ConfigError as err:
        raise _fail(spec.path, str(err)) from err
    return launch_cfg, Path(values.get("output_root") or Config().output_root)


def build_grid(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    launch: dict[str, Any] | None = None,
    recorded: bool = False,
) -> Grid:
    """The one way from a spec file to its runs: load, expand and validate every run (model names and options
    included: computing a run id builds the model's arguments), plus the grid's launch settings and bookkeeping
    folder (``<output_root>/../sweeps/<name>``). ``overrides``: command-line ``key=value`` strings (applied last);
    ``launch``: command-line launch settings (e.g. ``{"launcher": "slurm"}``) over the spec's. ``recorded``: a
    model whose plugin cannot be imported is described by the argument names the grid's last sweep recorded
    in its manifest (``bench status`` needs run ids, not models)."""
    spec = load_spec(path)
    launch_cfg, output_root = _grid_launch(spec, overrides, launch)
    sweeps = output_root.parent / "sweeps"
    try:
        sweep_dir = check_inside(sweeps / spec.name, sweeps, "the grid's bookkeeping folder")
    except ConfigError as err:
        raise _fail(spec.path, str(err)) from None
    if recorded:
        manifest = manifest_path(sweep_dir)
        registry.record_arguments(
            manifest_file.recorded_signatures(manifest), manifest_file.recorded_signatures(manifest, "plugins")
        )
    runs = _expand(spec, overrides, launch)
    return Grid(spec, tuple(runs), launch_cfg, sweep_dir, tuple(str(o) for o in overrides))


def model_signatures(grid: Grid) -> dict[str, list[str]]:
    """The argument names each model of ``grid`` accepts (its plugins are importable: the grid was built)."""
    names = sorted({run.config.model.name for run in grid.runs})
    return {name: registry.accepted_arguments(registry.get_factory(name)) for name in names}


def _format_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def format_varied(entry: dict[str, Any]) -> str:
    """``{"model.memory_length": 2}`` -> ``"model.memory_length=2"`` (the run table's "varied" column)."""
    return " ".join(f"{k}={_format_value(v)}" for k, v in entry.items())

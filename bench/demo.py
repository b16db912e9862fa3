"""The whole chain on the synthetic default, as ``make demo`` runs it: one queue of runs -> latency -> report.

    python -m bench.demo ablations/synthetic_methods.yaml ablations/synthetic_memory_length.yaml ...

1. the runs to do of every grid go into one local queue (``bench.grid.sweep.sweep_grids_locally``): each run
   once (runs shared between grids are trained once), longest first, two at a time (``launch.max_parallel``),
   each forked from a process that imported torch and the suite once (``bench.grid.forked``); finished runs
   are skipped, so a second ``make demo`` only redoes what is missing, and runs made by other code are trained
   again (the demo reproduces with this code);
2. latency once per distinct architecture, after the last run has finished, in a process of its own on an
   otherwise idle machine (``bench.run.latency_run.share_latency``); the records of runs that share an
   architecture get that measurement and name the run it was taken on;
3. every finished run without whole-video metrics gets them: ``bench eval RUN eval.whole_videos=true --record``
   on ``DEMO_VIDEOS`` (the first 32 validation clips rendered as videos of 12 frames, all labelled), so the
   tables carry mVC_8 (VSPW's video consistency, docs/vspw.md) beside mIoU and ETC TC; the runs' ids and their
   clip evaluation are unchanged;
4. ``bench report`` writes the tables and figures under ``reports/`` from the run records.

Progress goes to stderr (``bench.progress`` logging, configured by ``main``): each run start and end is a line,
and a summary line comes every ``BENCH_STATUS_EVERY`` seconds (30) also when stdout/stderr is a file
(``make demo > log 2>&1``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.evaluation.videos import VideoEvalError
from bench.grid.spec import build_grid
from bench.grid.sweep import sweep_grids_locally
from bench.progress import configure_logging
from bench.report.build import report_command
from bench.run.eval_run import add_missing_video_metrics

# whole-video evaluation of the demo's runs: 12 frames give 4 windows of mVC_8 per video; 32 videos streamed 16 at a
# time keep the stage near a second per run
DEMO_VIDEOS = (
    "data.synthetic.val_video_length=12",
    "eval.max_videos=32",
    "eval.batch_size=16",
    "eval.vc_windows=[8]",
)


def run_demo(specs: Sequence[str], out_dir: str = "reports", max_parallel: int | None = None) -> int:
    """Train, measure and report; returns a non-zero exit status when a run failed or nothing was reported."""
    start = time.time()
    grids = [build_grid(spec, launch={"launcher": "local"}) for spec in specs]  # each spec expanded once
    print(f"=== {len(grids)} grids: {', '.join(grid.name for grid in grids)}", flush=True)
    failed = sweep_grids_locally(grids, stale="rerun", max_parallel=max_parallel)
    video_metrics(grids)
    print(f"\n=== report -> {out_dir}/", flush=True)
    status = report_command(grids, out_dir=out_dir)
    print(f"\ndemo finished in {(time.time() - start) / 60:.1f} min; see {out_dir}/index.md", flush=True)
    return 1 if failed or status else 0


def video_metrics(grids: Sequence[Any]) -> int:
    """Whole-video metrics (mVC_8) for every finished run of ``grids`` that has none; returns how many were added.
    A run whole videos cannot evaluate (DFF on ground-truth flow: the videos carry flow to t-1 only) keeps no
    mVC (its rows show none) and the stage goes on."""
    print("\n=== whole videos (mVC_8) for every finished run", flush=True)
    seen: set[str] = set()
    added = 0
    for run in (run for grid in grids for run in grid.runs):
        if run.run_id in seen:
            continue
        seen.add(run.run_id)
        try:
            metrics = add_missing_video_metrics(run.config, DEMO_VIDEOS)
        except VideoEvalError as err:
            print(f"{run.run_id}: no whole-video metrics: {err}", flush=True)
            continue
        if metrics is not None:
            added += 1
            print(
                f"{run.run_id}: mVC_8 {100 * metrics['mvc_8']:.1f}, video mIoU {100 * metrics['miou']:.1f}", flush=True
            )
    if not added:
        print("nothing to add: every finished run has its whole-video metrics", flush=True)
    return added


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="+", help="grid specs to run, e.g. ablations/synthetic_*.yaml")
    parser.add_argument("--out", default="reports")
    parser.add_argument("--max-parallel", type=int, default=None, help="runs at a time (default: the grids')")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # a log file sees each line when printed
    configure_logging()  # run starts/ends and the periodic summary, also when the output is a file
    return run_demo(args.specs, args.out, args.max_parallel)


if __name__ == "__main__":
    raise SystemExit(main())

"""The whole chain on the synthetic default, as ``make demo`` runs it: grids -> latency -> report.

    python -m bench.demo ablations/synthetic_methods.yaml ablations/synthetic_memory_length.yaml ...

1. every grid is swept with the local launcher (runs shared between grids are trained once; finished runs
   are skipped, so a second ``make demo`` only redoes what is missing);
2. every finished run without a latency measurement gets one (``bench latency``, streaming and recompute;
   with ``launch.latency: true`` the trainer usually takes it right after training);
3. ``bench report`` writes the tables and figures under ``reports/`` from the run records.

Progress goes to stderr (``bench.progress`` logging, configured by ``main``): each stage and grid is named
("=== grid 2 of 4: ablations/x.yaml"), each run start and end is a line, and a summary line comes every
``BENCH_STATUS_EVERY`` seconds (30) also when stdout/stderr is a file (``make demo > log 2>&1``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from bench.grid.spec import build_grid
from bench.grid.sweep import sweep_grid
from bench.progress import configure_logging
from bench.report.build import report_command
from bench.run.latency_run import measure_missing_latency


def run_demo(specs: Sequence[str], out_dir: str = "reports", latency_frames: int = 20, threads: int = 2) -> int:
    """Sweep, measure and report; returns a non-zero exit status when a run failed or nothing was reported."""
    start = time.time()
    failed = 0
    grids = [build_grid(spec, launch={"launcher": "local"}) for spec in specs]  # each spec expanded once
    for k, (spec, grid) in enumerate(zip(specs, grids), 1):
        print(f"\n=== grid {k} of {len(grids)}: sweep {spec} ({grid.name}, {len(grid.runs)} runs)", flush=True)
        failed += sweep_grid(grid, spec, stale="rerun") != 0  # the demo reproduces with this code
    print("\n=== latency (streaming vs recompute) for every finished run", flush=True)
    seen: set[str] = set()
    measured = 0
    for grid in grids:
        for run in grid.runs:
            if run.run_id in seen:
                continue
            seen.add(run.run_id)
            result = measure_missing_latency(run.config, frames=latency_frames, threads=threads)
            if result is None:  # not finished, or measured already (launch.latency: true in the grid)
                continue
            measured += 1
            medians = {mode: f"{m['median_ms']:.1f} ms" for mode, m in result.get("modes", {}).items()}
            print(f"{run.run_id}: {medians}", flush=True)
    if not measured:
        print("nothing to measure: every finished run has its latency (taken right after training)", flush=True)
    print(f"\n=== report -> {out_dir}/", flush=True)
    status = report_command(grids, out_dir=out_dir)
    print(f"\ndemo finished in {(time.time() - start) / 60:.1f} min; see {out_dir}/index.md", flush=True)
    return 1 if failed or status else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="+", help="grid specs to run, e.g. ablations/synthetic_*.yaml")
    parser.add_argument("--out", default="reports")
    parser.add_argument("--latency-frames", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # a log file sees each line when printed
    configure_logging()  # run starts/ends and the periodic summary, also when the output is a file
    return run_demo(args.specs, args.out, args.latency_frames, args.threads)


if __name__ == "__main__":
    raise SystemExit(main())

"""Start-up time of the commands that compute no tensors, against ``python -c "import yaml"`` (goal: within 2x).

    python -m bench.perf.startup_bench                       # 3 runs per command, median wall time
    python -m bench.perf.startup_bench --repeats 5 --max-seconds 60

Each command runs as a fresh ``python -m bench.cli ...`` process (output discarded) from the repository root;
a row is printed as soon as its command is measured, with the ratio to the baseline and whether torch was
imported (``-X importtime`` output). Commands left when ``--max-seconds`` is spent are listed as skipped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMANDS: list[list[str]] = [
    ["--help"],
    ["models"],
    ["config", "configs/synthetic_tmanet.yaml"],
    ["config", "--keys"],
    ["status", "ablations/synthetic_memory_length.yaml"],
    ["sweep", "ablations/synthetic_memory_length.yaml", "--dry-run"],
]
BASELINE = ["-c", "import yaml"]


def wall_s(args: list[str]) -> tuple[float, bool]:
    """Seconds of one ``python -X importtime ARGS`` run and whether it imported torch."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    elapsed = time.perf_counter() - start
    torch = any(line.rstrip().endswith("| torch") for line in done.stderr.splitlines())
    return elapsed, torch


def median_s(args: list[str], repeats: int) -> tuple[float, bool]:
    runs = [wall_s(args) for _ in range(repeats)]
    return statistics.median(t for t, _ in runs), any(torch for _, torch in runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="runs per command (median)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="stop measuring after this long")
    args = p.parse_args(argv)
    started = time.perf_counter()
    base, _ = median_s(BASELINE, args.repeats)
    print(f"{'command':<58} {'median s':>9} {'x yaml':>7} {'torch':>6}", flush=True)
    baseline = 'python -c "import yaml" (baseline)'
    print(f"{baseline:<58} {base:9.3f} {1.0:7.2f} {'no':>6}", flush=True)
    for command in COMMANDS:
        label = "bench " + " ".join(command)
        if time.perf_counter() - started > args.max_seconds:
            print(f"{label:<58} skipped: --max-seconds {args.max_seconds:.0f} spent", flush=True)
            continue
        seconds, torch = median_s(["-m", "bench.cli", *command], args.repeats)
        print(f"{label:<58} {seconds:9.3f} {seconds / base:7.2f} {'YES' if torch else 'no':>6}", flush=True)
    print("goal: within 2x of the baseline, and no torch", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where the CPU time of one demo run goes: start-up and imports, data, forward/backward, evaluation, latency.

    python -m bench.perf.demo_profile ablations/synthetic_methods.yaml            # the grid's first run
    python -m bench.perf.demo_profile ablations/synthetic_memory_length.yaml --run 2 --latency

The run is executed in this process as a local sweep's child executes it (``bench.run.execute.execute`` on the
run's config, in a temporary folder, with ``threads`` from the config), under ``cProfile`` with
``time.process_time`` as its clock, so the numbers are CPU seconds of this process, robust to other jobs on the
machine (wall time is not). The phases are the cumulative times of the functions that do them:

* imports: ``import bench.run.execute`` and the model modules, in a fresh process (a run of a local sweep no
  longer pays them: its process is forked from a fork server that has imported them);
* data: ``InfiniteBatches.__next__`` (loading, augmenting and collating training batches);
* forward/backward: the training step less its data (``bench.engine.trainer.step``), SGD included;
* evaluation: ``bench.engine.trainer.evaluate`` and the finite-logits check;
* latency: the latency measurement (``--latency``: after training, as ``share_latency`` does once per
  architecture; otherwise none, as a run of a local sweep);
* checkpoints and the rest (set-up, records, logging).

cProfile adds a little time to every Python call; the shares, not the last digit, are the result.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from bench.grid.spec import build_grid
from bench.models.registry import load_builtin_models
from bench.run.execute import execute
from bench.run.latency_run import latency_command

PHASES: dict[str, tuple[str, str]] = {  # phase -> (file suffix, function name) whose cumulative time it is
    "data": ("bench/engine/batches.py", "__next__"),
    "step": ("bench/engine/trainer.py", "step"),
    "evaluation": ("bench/engine/trainer.py", "evaluate"),
    "finite check": ("bench/engine/finite.py", "non_finite_logits"),
    "latency": ("bench/run/latency_run.py", "latency_command"),
    "checkpoints": ("bench/engine/trainer.py", "save"),
}


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    """Cumulative seconds of the function ``name`` defined in a file ending with ``suffix`` (0 if never called)."""
    table = stats.stats  # type: ignore[attr-defined]
    return sum(entry[3] for (path, _, func), entry in table.items() if func == name and path.endswith(suffix))


IMPORTS = (
    "import time; start = time.process_time(); import bench.run.execute; "
    "from bench.models.registry import load_builtin_models; load_builtin_models(); "
    "print(time.process_time() - start)"
)


def import_seconds() -> float:
    """CPU seconds a fresh process spends importing the executor and the model modules (torch, timm, ...)."""
    done = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def profile_run(spec: str, index: int, latency: bool) -> dict[str, float]:
    """CPU seconds by phase of run ``index`` of ``spec`` (module docstring)."""
    imports = import_seconds()
    load_builtin_models()
    run = build_grid(spec, launch={"launcher": "local"}).runs[index]
    profiler = cProfile.Profile(time.process_time)
    with tempfile.TemporaryDirectory() as folder:
        cfg = run.config
        profiler.enable()
        execute(cfg, folder, defer_latency=True)
        if latency:
            latency_command(cfg, frames=cfg.launch.latency_frames, write_record=False)
        profiler.disable()
    stats = pstats.Stats(profiler)
    phases = {name: cumulative(stats, *where) for name, where in PHASES.items()}
    total = stats.total_tt  # type: ignore[attr-defined]
    return {
        "imports": imports,
        "data": phases["data"],
        "forward/backward": phases["step"] - phases["data"],
        "evaluation": phases["evaluation"] + phases["finite check"],
        "latency": phases["latency"],
        "checkpoints": phases["checkpoints"],
        "rest": total
        - phases["step"]
        - phases["evaluation"]
        - phases["finite check"]
        - phases["latency"]
        - phases["checkpoints"],
        "run": run.run_id,  # type: ignore[dict-item]
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="grid spec, e.g. ablations/synthetic_methods.yaml")
    parser.add_argument("--run", type=int, default=0, help="index of the run in the grid (default 0)")
    parser.add_argument("--latency", action="store_true", help="also measure latency after training")
    args = parser.parse_args(argv)
    result = profile_run(args.spec, args.run, args.latency)
    run = result.pop("run")
    total = sum(result.values())
    print(f"{run} ({args.spec} #{args.run}): {total:.1f} CPU-s")
    for phase, seconds in result.items():
        print(f"  {phase:17s} {seconds:7.2f} s  {100 * seconds / total:5.1f} %")


if __name__ == "__main__":
    main()

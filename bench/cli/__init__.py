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

import logging
import shlex
import sys
from collections.abc import Sequence

from bench.atomic import write_problem
from bench.cli.commands import latency_table
from bench.cli.parser import MIXED_OVERRIDES, build_parser, parse_args
from bench.errors import BenchError, one_line

__all__ = ["main", "build_parser", "parse_args", "latency_table", "setup_logging", "MIXED_OVERRIDES"]


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
        problem = write_problem(err)  # a full disk or a read-only folder: what to do, not a traceback
        if problem is not None:
            print(f"bench: {problem}", file=sys.stderr)
            return 2
        if not isinstance(err, BenchError):  # bench.errors: every error meant for a user derives from it
            raise
        print(one_line(err), file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

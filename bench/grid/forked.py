"""Start local runs from a fork server that has imported torch, timm and the suite once (the local launcher).

    starter = RunStarter()                                   # forkserver where the platform has one
    child = starter.start(EXECUTE, ["RUN_DIR", "--defer-latency"], log_path, {**os.environ, "BENCH_LAUNCHER": "local"})
    child.poll(), child.terminate(), child.wait(timeout=60), child.pid          # as subprocess.Popen

Each run of a local sweep used to be a fresh ``python -m bench.run.execute RUN_DIR`` process that paid the
imports again (torch, timm, torchvision, the suite: 3-8 CPU-s, a tenth of a demo run). Here a
``multiprocessing`` fork server imports them once (``PRELOAD``), and every run is a process forked from it: a
process of its own as before (its own pid, claim, signals, exit status, memory freed at its end), started in a
few milliseconds. The child takes the environment and working folder the launcher gives it (those of the fork
server may be older), sends its stdout and stderr to the run's log file and calls ``bench.run.execute.main`` with
the same arguments as the command line. The fork server is started with that environment (``OMP_NUM_THREADS`` is
read when a library is imported).

Where there is no fork server (Windows) or ``BENCH_LOCAL_START=subprocess`` is set, runs are started as
subprocesses, as before.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

from bench.models.registry import BUILTIN_MODEL_MODULES

PRELOAD: tuple[str, ...] = ("bench.run.execute", "bench.run.latency_run", *BUILTIN_MODEL_MODULES)
EXECUTE = "bench.run.execute"  # python -m bench.run.execute RUN_DIR [--take-over] [--defer-latency]
LATENCY = "bench.run.latency_run"  # python -m bench.run.latency_run RUN_DIR ...: latency once per architecture


def _run_child(module: str, args: list[str], log_path: str, env: dict[str, str], cwd: str) -> None:
    """The forked process: the launcher's environment and folder (not the fork server's, which may be older),
    output into its log, then ``module.main(args)`` (preloaded by the fork server: no import cost here)."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.exit(importlib.import_module(module).main(args))


class ForkedRun:
    """A run started from the fork server, with the ``subprocess.Popen`` methods the launcher uses."""

    def __init__(self, process: Any) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def poll(self) -> int | None:
        """The exit status (negative: killed by that signal), None while running."""
        return self.process.exitcode

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; ``subprocess.TimeoutExpired`` after ``timeout`` seconds, as ``Popen.wait``."""
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired(EXECUTE, timeout or 0.0)
        return int(self.process.exitcode)


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``env`` for the block (the fork server inherits it when it starts)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def fork_server_available() -> bool:
    """A fork server can be used here (POSIX, and not switched off by ``BENCH_LOCAL_START=subprocess``)."""
    wanted = os.environ.get("BENCH_LOCAL_START", "forkserver")
    return wanted != "subprocess" and "forkserver" in multiprocessing.get_all_start_methods()


class RunStarter:
    """Starts ``bench.run.execute`` on a run dir: forked from a fork server (imports paid once), else a subprocess."""

    def __init__(self, use_fork_server: bool | None = None) -> None:
        self.forked = fork_server_available() if use_fork_server is None else use_fork_server
        self._context: Any = multiprocessing.get_context("forkserver") if self.forked else None

    def start(self, module: str, args: Sequence[str], log_path: Path, env: Mapping[str, str]) -> Any:
        """Start ``python -m module args`` (``EXECUTE``, or ``bench.run.latency_run``) in this folder, output to
        ``log_path`` (created or appended), with the whole environment ``env``."""
        if not self.forked:
            with open(log_path, "a") as log:
                command = [sys.executable, "-m", module, *args]
                return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd(), env=dict(env))
        with _environment(env):
            forkserver.set_forkserver_preload(list(PRELOAD))
            forkserver.ensure_running()  # started once, with env: what its imports read
        child_args = (module, list(args), str(log_path), dict(env), os.getcwd())
        process = self._context.Process(target=_run_child, args=child_args, daemon=False)
        process.start()
        return ForkedRun(process)

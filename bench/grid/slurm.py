"""Launchers for grids of runs: local subprocesses or a SLURM job array (submitit), plus run claims.

Every run, local or on SLURM, executes the same callable, ``Job(config_dict, cwd)()``, which

1. returns the existing ``run_dir/record.json`` when the run is already done;
2. claims the run by creating ``run_dir/claim.json`` with ``O_CREAT | O_EXCL`` (host, pid, job id, time),
   so two sweeps that share a run never train it twice at once; a stale claim (a dead local pid, or a
   SLURM job that ``squeue``/``sacct`` no longer list as active) is taken over;
3. calls ``bench.run.trainer.train_and_evaluate(cfg)``, which resumes from ``run_dir/checkpoint.pt``;
4. on an exception writes ``run_dir/error.json`` (the traceback and its last line) and re-raises.

On SLURM, ``Job.checkpoint()`` returns a fresh ``Job`` as a ``DelayedSubmission``, so preemption or a time
limit requeues the array task and it resumes from the run's checkpoint; the claim is kept while requeued.

    runs = expand_grid(load_spec("ablations/synthetic_memory_length.yaml"))   # bench.grid.sweep
    results = run_local(runs, max_parallel=2, sweep_dir=Path("results/sweeps/x"))
    jobs = submit_slurm(runs, runs[0].config.launch, Path("results/sweeps/x"), name="x")

A single run can be started by hand (this is what the local launcher runs in each subprocess)::

    python -m bench.grid.launch results/sweeps/<name>/configs/<run_id>.yaml
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from bench.run.records import write_json_atomic

CLAIM_FILE = "claim.json"
ERROR_FILE = "error.json"
RECORD_FILE = "record.json"
# exit code of `python -m bench.grid.launch` when another live process owns the run (EX_TEMPFAIL)
EXIT_CLAIMED = 75
# SLURM states in which a job still holds (or will hold) its run
ACTIVE_SLURM_STATES = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
                       "SUSPENDED", "CONFIGURING", "COMPLETING", "STAGE_OUT", "SIGNALING", "STOPPED"}


class LaunchError(RuntimeError):
    """The launcher cannot be used (e.g. no ``sbatch`` on PATH) or a submission failed."""


# --------------------------------------------------------------------------------------------------
# small file helpers


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable (e.g. half written)."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def append_jsonl(path: Path, payload: dict[str, Any]) -> None:
    """Append one JSON line (one ``write`` call in append mode, so concurrent writers do not interleave)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(payload, default=str) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All JSON objects of a JSON-lines file (a torn last line is ignored)."""
    rows: list[dict[str, Any]] = []
    if not Path(path).is_file():
        return rows
    for line in Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


# --------------------------------------------------------------------------------------------------
# SLURM job ids and states


def current_job_id() -> str | None:
    """This process's SLURM job id (``<array>_<task>`` inside an array), or None outside SLURM.

    None for runs started by the local launcher even inside an allocation (``BENCH_LAUNCHER=local``): they
    claim by pid, so two local runs never mistake each other's claim for their own.
    """
    if os.environ.get("BENCH_LAUNCHER") == "local":
        return None
    array_id, task_id = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_id and task_id:
        return f"{array_id}_{task_id}"
    return os.environ.get("SLURM_JOB_ID")


def _expand_job_ids(text: str) -> list[str]:
    """``"12_[0-2,5%2]"`` -> ``["12_0", "12_1", "12_2", "12_5"]``; plain ids are returned as they are."""
    match = re.fullmatch(r"(\d+)_\[([^\]]+)\]", text)
    if not match:
        return [text]
    base, spec = match.groups()
    ids: list[str] = []
    for part in spec.split("%")[0].split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            ids += [f"{base}_{i}" for i in range(int(lo), int(hi) + 1)]
        elif part:
            ids.append(f"{base}_{part}")
    return ids


def _query_job_states(command: list[str]) -> list[tuple[str, str]]:
    """``(job id, state)`` pairs from a ``squeue``/``sacct`` call printing ``id|state`` lines; [] on failure."""
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    pairs = []
    for line in out.splitlines():
        job, _, state = line.strip().partition("|")
        pairs.append((job, state.split()[0] if state else "UNKNOWN"))
    return pairs


def slurm_job_states(job_ids: Iterable[str]) -> dict[str, str]:
    """Current state (``RUNNING``, ``CANCELLED``...) of each job id, from ``squeue`` and then ``sacct``.

    Ids that neither command knows are absent. Never raises: without SLURM commands the result is ``{}``.
    """
    wanted = sorted({str(j) for j in job_ids if j})
    states: dict[str, str] = {}
    if not wanted:
        return states
    bases = ",".join(sorted({j.split("_")[0] for j in wanted}))
    # squeue knows queued and running jobs; sacct (accounting) also knows finished ones
    queries = (["squeue", "-h", "-r", "-o", "%i|%T", "-j", bases],
               ["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", bases])
    for command in queries:
        if all(j in states for j in wanted) or not shutil.which(command[0]):
            continue
        for job, state in _query_job_states(command):
            for jid in _expand_job_ids(job):
                states.setdefault(jid, state)
    return {j: s for j, s in states.items() if j in wanted}


def slurm_reachable() -> tuple[bool, str]:
    """Whether jobs can be submitted from here: ``sbatch`` on PATH and the controller answering."""
    if shutil.which("sbatch") is None:
        return False, "sbatch is not on PATH (is SLURM installed here? in CI run .ci/slurm-up.sh first)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as err:
        return False, f"scontrol ping failed: {err}"
    if ping.returncode != 0 or "UP" not in ping.stdout:
        answer = ping.stdout.strip() or ping.stderr.strip()
        return False, f"the SLURM controller does not answer (scontrol ping: {answer})"
    return True, ""


# --------------------------------------------------------------------------------------------------
# claims


def _pid_alive(pid: int, started: float | None) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # a reused pid belongs to a process created after the claim's owner
        return started is None or abs(proc.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _own_process_start() -> float | None:
    try:
        import psutil

        return psutil.Process(os.getpid()).create_time()
    except Exception:  # psutil missing or /proc unreadable: fall back to the pid alone
        return None


def claim_liveness(claim: dict[str, Any]) -> tuple[bool, str]:
    """(is the claim's owner still at work, why): a SLURM claim lives while its job is active in
    ``squeue``/``sacct``; a local claim lives while its pid does (only checkable on its own host)."""
    job_id = claim.get("job_id")
    if job_id:
        state = slurm_job_states([job_id]).get(job_id)
        if state is None and shutil.which("squeue") is None:
            return True, f"SLURM job {job_id} (cannot query squeue/sacct from here)"
        if state in ACTIVE_SLURM_STATES:
            return True, f"SLURM job {job_id} {state}"
        return False, f"SLURM job {job_id} {state or 'unknown to squeue/sacct'}"
    host, pid = claim.get("host"), claim.get("pid")
    if host != socket.gethostname():
        return True, f"pid {pid} on {host} (another host: cannot check)"
    if isinstance(pid, int) and _pid_alive(pid, claim.get("pid_start")):
        return True, f"pid {pid} on {host}"
    return False, f"pid {pid} on {host} is gone"


def acquire_claim(run_dir: Path, job_id: str | None = None) -> tuple[bool, dict[str, Any]]:
    """Claim ``run_dir`` for this process; returns (claimed, the claim now in force).

    A claim by the same SLURM job id (a requeued task, or another rank of the same job) counts as ours.
    A stale claim is moved aside with ``os.rename`` (atomic: of two takers only one succeeds) and replaced.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CLAIM_FILE
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _own_process_start(),
            "job_id": job_id, "time": time.time()}
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = read_json(path)
            if held is None:  # being written right now by its creator
                time.sleep(0.05)
                held = read_json(path)
                if held is None:
                    continue
            if job_id and held.get("job_id") == job_id:
                return True, held
            alive, _ = claim_liveness(held)
            if alive:
                return False, held
            try:
                os.rename(path, run_dir / f".claim.stale.{os.getpid()}.{time.time_ns()}")
            except FileNotFoundError:
                pass  # someone else took it over first; try again
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        for stale in run_dir.glob(".claim.stale.*"):
            stale.unlink(missing_ok=True)
        return True, mine
    held = read_json(path) or {}
    return False, held


def release_claim(run_dir: Path, job_id: str | None = None) -> None:
    """Remove ``run_dir/claim.json`` if this process (or this SLURM job) holds it."""
    path = Path(run_dir) / CLAIM_FILE
    held = read_json(path)
    if held is None:
        return
    ours = (job_id and held.get("job_id") == job_id) or (
        held.get("pid") == os.getpid() and held.get("host") == socket.gethostname())
    if ours:
        path.unlink(missing_ok=True)


def write_error(run_dir: Path, err: BaseException, job_id: str | None) -> dict[str, Any]:
    """Write ``run_dir/error.json``: exception type, message, the traceback and its last line."""
    lines = traceback.format_exception(type(err), err, err.__traceback__)
    # the traceback's last entry ("ValueError: message"), on one line even when the message has several
    last = " ".join("".join(traceback.format_exception_only(type(err), err)).split())
    payload = {"error": type(err).__name__, "message": str(err),
               "last_line": last if len(last) <= 400 else last[:397] + "...",
               "traceback": "".join(lines), "host": socket.gethostname(), "pid": os.getpid(),
               "job_id": job_id, "time": time.time()}
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(run_dir) / ERROR_FILE, payload)
    return payload


# --------------------------------------------------------------------------------------------------
# the job callable


def _global_rank() -> int:
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


class Job:
    """One run as a picklable callable: ``Job(config_dict, cwd)()`` trains it or returns its record.

    ``config_dict`` is the resolved config as plain data (``bench.config.to_dict``), so the pickle
    submitit ships holds no tensors or modules; heavy imports happen inside ``__call__``.
    """

    def __init__(self, config: dict[str, Any], cwd: str | None = None) -> None:
        self.config = config
        self.cwd = cwd or os.getcwd()
        self._preempted = False

    def __call__(self) -> dict[str, Any]:
        previous = os.getcwd()
        os.chdir(self.cwd)  # relative paths in the config (output_root, data.root) mean the submit dir
        try:
            return self._run()
        finally:
            os.chdir(previous)

    def _run(self) -> dict[str, Any]:
        _limit_threads_to_allocation()
        from bench.config import Config, from_dict
        from bench.run.identity import run_id

        cfg = from_dict(Config, self.config)
        run_dir = cfg.resolved_run_dir()
        done = read_json(run_dir / RECORD_FILE)
        if done is not None and done.get("status", "done") == "done":
            return _summary(done, "done")
        job_id = current_job_id()
        claimed, held = acquire_claim(run_dir, job_id)
        if not claimed:
            return {"run_id": run_id(cfg), "status": "claimed",
                    "reason": f"run is owned by {claim_liveness(held)[1]}", "claim": held}
        if _global_rank() == 0:
            (run_dir / ERROR_FILE).unlink(missing_ok=True)
        self._preempted = False
        from bench.run.trainer import train_and_evaluate

        try:
            record = train_and_evaluate(cfg)
        except SystemExit:
            if not self._preempted:  # a requeued job keeps its claim (the job id stays the same)
                self._on_failure(run_dir, RuntimeError("the run exited (SystemExit) before finishing"), job_id)
            raise
        except BaseException as err:
            self._on_failure(run_dir, err, job_id)
            raise
        if _global_rank() == 0:
            if cfg.launch.latency:  # a sweep step after training: bench latency into the record
                from bench.run.latency import measure_missing_latency

                record["latency"] = measure_missing_latency(cfg, cfg.launch.latency_frames) or record.get("latency")
            release_claim(run_dir, job_id)
        return _summary(record, "done")

    def _on_failure(self, run_dir: Path, err: BaseException, job_id: str | None) -> None:
        write_error(run_dir, err, job_id)
        if _global_rank() == 0:
            release_claim(run_dir, job_id)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on preemption / time limit: requeue a fresh Job; the trainer resumes from
        ``run_dir/checkpoint.pt`` (it saves one when signalled)."""
        import submitit

        self._preempted = True
        return submitit.helpers.DelayedSubmission(type(self)(self.config, self.cwd))


def _limit_threads_to_allocation() -> None:
    """Inside SLURM, use as many intra-op threads as CPUs were allocated (torch would take every core of
    the node; oversubscribed CPU threads slow a small model down by 10x)."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if cpus.isdigit() and "OMP_NUM_THREADS" not in os.environ and os.environ.get("BENCH_LAUNCHER") != "local":
        os.environ["OMP_NUM_THREADS"] = cpus
        import torch

        torch.set_num_threads(int(cpus))


def _summary(record: dict[str, Any], status: str) -> dict[str, Any]:
    return {"run_id": record.get("run_id"), "status": status, "metrics": record.get("metrics", {})}


# --------------------------------------------------------------------------------------------------
# local launcher


@dataclass
class LocalResult:
    """How one local run ended: returncode 0 = done, EXIT_CLAIMED = owned by another process."""

    run_id: str
    returncode: int
    wall_time_s: float
    log: Path
    last_line: str


def _last_error_line(run_dir: Path, log: Path) -> str:
    err = read_json(run_dir / ERROR_FILE)
    if err:
        return err.get("last_line", "")
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def run_local(runs: list[Any], max_parallel: int, sweep_dir: Path, manifest: Path | None = None,
              echo: bool = True) -> list[LocalResult]:
    """Run each ``bench.grid.sweep.Run`` in its own ``python -m bench.grid.launch`` subprocess, ``max_parallel`` at once.

    A failing run does not stop the others. Logs go to ``sweep_dir/logs/<run_id>.log``; the manifest gets
    a ``submit`` and an ``end`` line per run. Ctrl-C terminates the children (the trainer checkpoints on
    SIGTERM) and re-raises. Unless ``OMP_NUM_THREADS`` is set, parallel runs split the CPU cores between them.
    """
    from bench.config import to_yaml

    sweep_dir = Path(sweep_dir)
    manifest = manifest or sweep_dir / "manifest.jsonl"
    (sweep_dir / "configs").mkdir(parents=True, exist_ok=True)
    (sweep_dir / "logs").mkdir(parents=True, exist_ok=True)
    queue = list(runs)
    env = {**os.environ, "BENCH_LAUNCHER": "local"}
    if "OMP_NUM_THREADS" not in env and max_parallel > 1:
        # share the cores: N runs each taking every core slow each other down several-fold
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max_parallel))
    active: dict[str, tuple[subprocess.Popen, Any, float, Any]] = {}
    results: list[LocalResult] = []
    total = len(queue)
    try:
        while queue or active:
            while queue and len(active) < max(1, max_parallel):
                run = queue.pop(0)
                cfg_path = sweep_dir / "configs" / f"{run.run_id}.yaml"
                cfg_path.write_text(to_yaml(run.config))
                log_path = sweep_dir / "logs" / f"{run.run_id}.log"
                log = open(log_path, "w")
                proc = subprocess.Popen([sys.executable, "-m", "bench.grid.launch", str(cfg_path)],
                                        stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd(), env=env)
                append_jsonl(manifest, {"event": "submit", "run_id": run.run_id, "run_dir": str(run.run_dir),
                                        "launcher": "local", "job_id": f"local-{proc.pid}",
                                        "host": socket.gethostname(), "log": str(log_path), "time": time.time()})
                active[run.run_id] = (proc, log, time.time(), run)
                if echo:
                    print(f"[{total - len(queue)}/{total}] started {run.run_id} (pid {proc.pid}, log {log_path})",
                          flush=True)
            for rid, (proc, log, start, run) in list(active.items()):
                code = proc.poll()
                if code is None:
                    continue
                log.close()
                del active[rid]
                log_path = Path(log.name)
                last = "" if code == 0 else _last_error_line(run.run_dir, log_path)
                results.append(LocalResult(rid, code, time.time() - start, log_path, last))
                append_jsonl(manifest, {"event": "end", "run_id": rid, "job_id": f"local-{proc.pid}",
                                        "returncode": code, "reason": last, "time": time.time()})
                if echo:
                    word = {0: "done", EXIT_CLAIMED: "skipped (owned by another process)"}.get(code, f"FAILED ({code})")
                    print(f"  {rid}: {word} in {time.time() - start:.1f}s{': ' + last if last else ''}", flush=True)
            time.sleep(0.1)
    except BaseException:
        for proc, log, _, _ in active.values():
            proc.terminate()
        for proc, log, _, _ in active.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
        raise
    return results


# --------------------------------------------------------------------------------------------------
# SLURM launcher


def slurm_parameters(launch: Any, name: str) -> dict[str, Any]:
    """submitit ``update_parameters`` keywords for a ``LaunchConfig`` (empty strings are left out).

    One task per GPU (``tasks_per_node = gpus_per_node``); ``bench.distributed`` builds DDP from the
    SLURM environment of each task.
    """
    params: dict[str, Any] = {
        "name": name,
        "timeout_min": launch.time_min,
        "nodes": launch.nodes,
        "tasks_per_node": max(1, launch.gpus_per_node),
        "cpus_per_task": launch.cpus_per_task,
        "mem_gb": launch.mem_gb,
        "slurm_array_parallelism": launch.array_parallelism,
    }
    if launch.gpus_per_node:
        params["gpus_per_node"] = launch.gpus_per_node
    for key, value in (("slurm_partition", launch.partition), ("slurm_account", launch.account),
                       ("slurm_qos", launch.qos), ("slurm_constraint", launch.constraint)):
        if value:
            params[key] = value
    if launch.sbatch_extra:
        params["slurm_additional_parameters"] = dict(launch.sbatch_extra)
    return params


def submit_slurm(runs: list[Any], launch: Any, sweep_dir: Path, name: str,
                 manifest: Path | None = None) -> list[Any]:
    """Submit ``runs`` as one SLURM job array (submitit ``executor.batch()``); returns the submitit jobs.

    Does not wait: job ids go to the sweep manifest, and ``bench status`` reads run dirs, claims,
    ``error.json`` and ``sacct``. Logs land in ``launch.folder/<name>/<job>/<job>_0_log.{out,err}`` (job =
    ``<array id>_<task>``; submitit writes to ``.out``, the trainer's messages go to ``.err``).
    """
    ok, why = slurm_reachable()
    if not ok:
        raise LaunchError(f"cannot submit to SLURM: {why}")
    import submitit

    manifest = manifest or Path(sweep_dir) / "manifest.jsonl"
    folder = Path(launch.folder) / name / "%j"
    # many timeouts allowed: long runs chain through time limits, resuming from checkpoint.pt each time
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=20)
    executor.update_parameters(**slurm_parameters(launch, f"bench-{name}"))
    from bench.config import to_dict

    cwd = os.getcwd()
    jobs = []
    # sbatch exports this environment to the job: make `bench` importable there even when it is not installed
    repo_root = str(Path(__file__).resolve().parents[2])
    saved_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([repo_root] + ([saved_path] if saved_path else []))
    try:
        with executor.batch():
            for run in runs:
                jobs.append(executor.submit(Job(to_dict(run.config), cwd)))
    except Exception as err:  # submitit raises on sbatch errors (bad partition, resources...)
        raise LaunchError(f"SLURM submission failed: {err}") from err
    finally:
        if saved_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_path
    for run, job in zip(runs, jobs):
        append_jsonl(manifest, {"event": "submit", "run_id": run.run_id, "run_dir": str(run.run_dir),
                                "launcher": "slurm", "job_id": str(job.job_id), "host": socket.gethostname(),
                                "log": str(job.paths.stdout), "time": time.time()})
    return jobs


# --------------------------------------------------------------------------------------------------
# `python -m bench.grid.launch CONFIG.yaml`: one run in this process (used by the local launcher)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m bench.grid.launch RESOLVED_CONFIG.yaml", file=sys.stderr)
        return 2
    from bench.config import load_config, to_dict

    result = Job(to_dict(load_config(argv[0])))()
    print(json.dumps(result, default=str), flush=True)
    return EXIT_CLAIMED if result.get("status") == "claimed" else 0


if __name__ == "__main__":
    raise SystemExit(main())

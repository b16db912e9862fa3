"""The measurements of ``make gpu-check`` (``bench.perf.gpu_check`` runs each in its own process and budget).

Every part is ``part(ctx) -> None`` (``bench.perf.gpu_context.PartContext``): it adds rows (dicts) and notes to
``ctx``, saved after each row, so a part killed at its budget keeps what it measured; it checks
``ctx.out_of_budget(...)`` between steps and stops with a note when the budget is spent. ``ctx.smoke`` selects
tiny sizes (a CPU, resnet18-sized models).

* ``environment``: GPU, driver, CUDA, cuDNN, torch, Python, CPU;
* ``cuda_tests``: ``pytest -m cuda tests/test_cuda.py`` (JUnit XML parsed into one row per test);
* ``attention``: ``bench.perf.attention_bench`` at 97x97, T=4, fp32 and bf16: forward and forward + backward
  time and peak memory, fused (SDPA) against the reference;
* ``latency``: every registered model (``bench.models.registry.list_models``) at 769x769 and 1024x2048 through
  ``bench.evaluation.latency.measure_latency`` (TMANet at T=2 and T=4, streaming and recompute), random init, random
  frames, batch 1;
* ``train_step`` (``bench.perf.gpu_train``): one training step of the Cityscapes recipe.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.config import load_config
from bench.evaluation.inference import needs_flow_input
from bench.evaluation.latency import ModeMismatchError, measure_latency
from bench.models.registry import list_models
from bench.perf import attention_bench
from bench.perf.gpu_context import RECIPE, REPO, SMOKE_MODEL, PartContext, model_overrides
from bench.perf.gpu_fps import fps
from bench.perf.gpu_train import train_step
from bench.run.model import build_model

# --------------------------------------------------------------------------------------------------
# environment


def _nvidia_smi(query: str) -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "n/a"
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"


def environment(ctx: PartContext) -> None:
    cuda = torch.cuda.is_available()
    props = torch.cuda.get_device_properties(0) if cuda else None
    ctx.add(
        {
            "gpu": torch.cuda.get_device_name(0) if cuda else "none (CPU smoke mode)",
            "gpu_memory_gib": round(props.total_memory / 2**30, 1) if props else None,
            "gpu_count": torch.cuda.device_count(),
            "driver": _nvidia_smi("driver_version") if cuda else "n/a",
            "cuda": torch.version.cuda or "n/a",
            "cudnn": torch.backends.cudnn.version() if cuda else "n/a",
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_threads": torch.get_num_threads(),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
            "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
        }
    )
    ctx.status = "done"


# --------------------------------------------------------------------------------------------------
# the CUDA-marked tests


def parse_junit(path: Path) -> list[dict[str, Any]]:
    """One row per test case of a pytest JUnit XML file: test, outcome (passed/failed/error/skipped), seconds,
    message."""
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = " ".join((child.get("message") or child.text or "").split())[:300]
        rows.append(
            {
                "test": case.get("name"),
                "outcome": outcome,
                "seconds": float(case.get("time") or 0.0),
                "message": message,
            }
        )
    return rows


def cuda_tests(ctx: PartContext) -> None:
    if ctx.device.type != "cuda":
        ctx.notes.append("no CUDA here: `pytest -m cuda` would skip every test; not run in smoke mode")
        ctx.status = "skipped"
        return
    xml = ctx.path.with_name("cuda_tests.xml")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "cuda",
        "-p",
        "no:cacheprovider",
        f"--junitxml={xml}",
        str(REPO / "tests" / "test_cuda.py"),
    ]
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=max(ctx.budget_left(), 1))
    except subprocess.TimeoutExpired:
        ctx.notes.append(f"pytest -m cuda did not finish within the part's budget of {ctx.budget_s:.0f} s")
        ctx.status = "partial"
        return
    for row in parse_junit(xml) if xml.is_file() else []:
        ctx.add(row)
    ctx.notes.append(f"pytest exit code {done.returncode}: {(done.stdout.strip().splitlines() or [''])[-1]}")
    ctx.status = "done" if done.returncode == 0 else "failed"


# --------------------------------------------------------------------------------------------------
# attention


def attention(ctx: PartContext) -> None:
    cuda = ctx.device.type == "cuda"
    size, t, repeats = (97, 4, 10) if not ctx.smoke else (17, 2, 2)
    dtypes = ["float32", "bfloat16"] if cuda else ["float32"]
    for dtype in dtypes:
        if ctx.out_of_budget(f"{dtype}"):
            return
        inputs = attention_bench.make_inputs(size, t, 1, 64, 256, ctx.device, getattr(torch, dtype), requires_grad=True)
        for impl in ("sdpa", "reference"):
            row: dict[str, Any] = {
                "size": f"{size}x{size}",
                "T": t,
                "dtype": dtype,
                "impl": impl,
                "forward_ms": attention_bench.time_ms(impl, inputs, False, repeats, ctx.device),
                "train_ms": attention_bench.time_ms(impl, inputs, True, repeats, ctx.device),
            }
            if cuda:
                row["forward_mib"] = attention_bench.cuda_peak_mib(impl, inputs, False, ctx.device)
                row["train_mib"] = attention_bench.cuda_peak_mib(impl, inputs, True, ctx.device)
            ctx.add(row)
        del inputs
    if not cuda:
        ctx.notes.append(
            "peak memory is measured on CUDA only (python -m bench.perf.attention_bench measures "
            "the CPU's resident set)"
        )
    ctx.notes.append(
        "goal (README): the fused read needs at least 10x less memory than the reference in forward + backward"
    )
    ctx.status = "done"


# --------------------------------------------------------------------------------------------------
# latency


def latency_plan(smoke: bool) -> list[tuple[str, int | None]]:
    """(model, memory_length or None for the config default) for every registered model; TMANet at T=2 and 4
    (T=1 in smoke mode)."""
    plan: list[tuple[str, int | None]] = []
    for name in list_models():
        if name.startswith("test_"):
            continue
        plan += [(name, t) for t in ((1,) if smoke else (2, 4))] if name == "tmanet" else [(name, None)]
    return plan


def _random_frames(model: torch.nn.Module, count: int, size: tuple[int, int]) -> list[tuple[Any, Any]]:
    g = torch.Generator().manual_seed(0)
    t = int(model.memory_length)
    flow = torch.zeros(1, t, 2, *size) if needs_flow_input(model) else None
    return [(torch.randn(1, 3, *size, generator=g), flow) for _ in range(count)]


def _latency_rows(model_name: str, result: dict[str, Any], size: tuple[int, int]) -> list[dict[str, Any]]:
    rows = []
    for mode, m in result["modes"].items():
        rows.append(
            {
                "model": model_name,
                "T": result["memory_length"],
                "size": f"{size[0]}x{size[1]}",
                "mode": mode,
                "median_ms": m["median_ms"],
                "iqr_ms": m["iqr_ms"],
                "cuda_event_median_ms": m.get("gpu_median_ms"),
                "p90_ms": m["p90_ms"],
                "gmacs": m["gmacs"],
                "peak_memory_mb": m["peak_memory_mb"],
                "unstable": m["unstable"],
            }
        )
    return rows


def latency(ctx: PartContext) -> None:
    sizes = [(769, 769), (1024, 2048)] if not ctx.smoke else [(32, 32)]
    frames, warmup, repeats = (10, 3, 3) if not ctx.smoke else (1, 1, 1)
    base = ["model.pretrained=false", f"device={ctx.device.type}"] + (SMOKE_MODEL if ctx.smoke else [])
    for size in sizes:
        for name, t in latency_plan(ctx.smoke):
            label = f"{name} T={t if t is not None else 'default'} at {size[0]}x{size[1]}"
            if ctx.out_of_budget(label):
                return
            overrides = base + [f"model.name={name}"] + ([f"model.memory_length={t}"] if t is not None else [])
            overrides += model_overrides(name, ctx.smoke)
            try:
                torch.manual_seed(0)
                model = build_model(load_config(RECIPE, overrides))
                count = 1 + max(warmup, int(model.memory_length)) + frames + 1
                result = measure_latency(
                    model,
                    _random_frames(model, count, size),
                    warmup=warmup,
                    device=ctx.device,
                    threads=None,
                    repeats=repeats,
                    max_extra_passes=0,
                )
            except (ModeMismatchError, RuntimeError, ValueError) as err:  # one model failing keeps the others
                ctx.notes.append(f"{label}: {type(err).__name__}: {' '.join(str(err).split())[:300]}")
                continue
            finally:
                model = None
                if ctx.device.type == "cuda":
                    torch.cuda.empty_cache()
            for row in _latency_rows(name, result, size):
                ctx.add(row)
    ctx.notes.append(
        f"{frames} timed frames x {repeats} passes after {warmup} warm-up frames per mode; median of "
        f"pass medians and their IQR; random init and random frames, batch 1, fp32, whole image "
        f"(no sliding window); cudnn.benchmark={torch.backends.cudnn.benchmark}"
    )
    ctx.status = "done"


PARTS: dict[str, Callable[[PartContext], None]] = {
    "environment": environment,
    "cuda_tests": cuda_tests,
    "attention": attention,
    "latency": latency,
    "fps": fps,
    "train_step": train_step,
}


def run_part(name: str, path: Path, budget_s: float, smoke: bool) -> PartContext:
    """Run part ``name`` in this process, writing its JSON to ``path``; an exception marks it failed."""
    device = torch.device("cuda" if torch.cuda.is_available() and not smoke else "cpu")
    ctx = PartContext(name, path, budget_s, smoke, device)
    ctx.flush()
    try:
        PARTS[name](ctx)
    except Exception as err:  # noqa: BLE001 - a broken part is reported; the other parts still run
        ctx.status = "failed"
        ctx.notes.append(f"{type(err).__name__}: {' '.join(str(err).split())[:500]}")
    if ctx.status == "running":
        ctx.status = "done"
    ctx.flush()
    return ctx


def main(argv: list[str]) -> int:
    """``python -m bench.perf.gpu_parts NAME PATH BUDGET_S [--smoke]`` (used by ``bench.perf.gpu_check``)."""
    name, path, budget = argv[0], Path(argv[1]), float(argv[2])
    return 0 if run_part(name, path, budget, "--smoke" in argv).status != "failed" else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Fused SDPA vs reference (bmm + softmax) TMA read: time and peak memory, side by side.

Run::

    python -m bench.perf.attention_bench                      # CUDA if available: 97x97 (and 65, 33), T=4
    python -m bench.perf.attention_bench --device cpu         # CPU default: 33x33 and 49x49, T=4
    python -m bench.perf.attention_bench --sizes 65 97 --memory-length 2 --batch 2
    python -m bench.perf.attention_bench --max-seconds 60    # sizes not started after 60 s are skipped

A row is printed as soon as its size is measured.

The read is the TMANet head's (docs/tmanet.md §1.5): query key (B, 64, S, S), memory keys (B, T, 64, S, S), memory
values (B, T, 256, S, S), post-ReLU-like inputs; 97x97 is the feature grid of a 769x769 crop at output stride 8.

What is measured:

* time: median wall time of ``--repeats`` runs after warm-up, forward only and forward + backward (gradients of
  the query key, memory keys and memory values), synchronised on CUDA;
* peak memory on CUDA: ``torch.cuda.max_memory_allocated`` minus the memory allocated before the call (inputs
  excluded), for the forward and for forward + backward;
* peak memory on CPU: growth of the resident set size (psutil, sampled every 0.2 ms by a thread) of a fresh
  child process during one call (inputs excluded). torch's CPU allocator has no peak counter, tracemalloc does
  not see its buffers, and a fresh process keeps freed buffers of earlier calls from hiding the peak.

On CPU the fused path is used for inference only (see ``bench.models.attention``); with autograd, "sdpa" runs
PyTorch's math path, so the training columns compare two unfused implementations there.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time

import psutil
import torch

from bench.evaluation.measure import cuda_sync
from bench.models.attention import ATTENTION_IMPLS, get_tma_read


def make_inputs(
    size: int,
    memory_length: int,
    batch: int,
    key_channels: int,
    value_channels: int,
    device: torch.device,
    dtype: torch.dtype,
    requires_grad: bool,
) -> tuple[torch.Tensor, ...]:
    """Query key (B, Ck, S, S), memory keys (B, T, Ck, S, S), memory values (B, T, Cv, S, S)."""
    g = torch.Generator().manual_seed(0)
    q = torch.rand(batch, key_channels, size, size, generator=g)
    k = torch.rand(batch, memory_length, key_channels, size, size, generator=g)
    v = torch.randn(batch, memory_length, value_channels, size, size, generator=g)
    return tuple(x.to(device=device, dtype=dtype).requires_grad_(requires_grad) for x in (q, k, v))


def _run(impl: str, inputs: tuple[torch.Tensor, ...], backward: bool) -> torch.Tensor:
    out = get_tma_read(impl)(*inputs)
    if backward:
        out.sum().backward()
        for x in inputs:
            x.grad = None
    return out


def time_ms(impl: str, inputs: tuple[torch.Tensor, ...], backward: bool, repeats: int, device: torch.device) -> float:
    """Median milliseconds per call (after one warm-up call)."""
    with torch.set_grad_enabled(backward):
        _run(impl, inputs, backward)
        times = []
        for _ in range(repeats):
            cuda_sync(device)
            start = time.perf_counter()
            _run(impl, inputs, backward)
            cuda_sync(device)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def cuda_peak_mib(impl: str, inputs: tuple[torch.Tensor, ...], backward: bool, device: torch.device) -> float:
    """Peak CUDA memory of one call above what was allocated before it, MiB."""
    with torch.set_grad_enabled(backward):
        cuda_sync(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        out = _run(impl, inputs, backward)
        cuda_sync(device)
        del out
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20


class RssPeak:
    """Context manager sampling this process's resident set size in a thread; ``growth_mib`` = peak - start."""

    def __init__(self, interval_s: float = 2e-4) -> None:
        self.process = psutil.Process()
        self.interval_s = interval_s
        self.growth_mib = 0.0

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self.process.memory_info().rss)
            time.sleep(self.interval_s)

    def __enter__(self) -> RssPeak:
        self._start = self._peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._peak = max(self._peak, self.process.memory_info().rss)
        self._stop.set()
        self._thread.join()
        self.growth_mib = (self._peak - self._start) / 2**20


def cpu_probe(impl: str, size: int, backward: bool, args: argparse.Namespace) -> float:
    """In this (fresh) process: peak RSS growth of one call (forward, or forward + backward), MiB."""
    inputs = make_inputs(
        size,
        args.memory_length,
        args.batch,
        args.key_channels,
        args.value_channels,
        torch.device("cpu"),
        torch.float32,
        requires_grad=backward,
    )
    with torch.set_grad_enabled(backward), RssPeak() as peak:
        _run(impl, inputs, backward)
    return peak.growth_mib


def cpu_peak_mib(impl: str, size: int, backward: bool, args: argparse.Namespace) -> float:
    """Run ``cpu_probe`` in a child process: freed buffers kept by the C allocator would hide later peaks."""
    command = [
        sys.executable,
        "-m",
        "bench.perf.attention_bench",
        "--probe",
        impl,
        "--sizes",
        str(size),
        "--memory-length",
        str(args.memory_length),
        "--batch",
        str(args.batch),
        "--key-channels",
        str(args.key_channels),
        "--value-channels",
        str(args.value_channels),
    ]
    if backward:
        command.append("--probe-backward")
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def benchmark_size(size: int, args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """Both implementations at one grid ``size``: impl -> row (times, peak memory, max |sdpa - reference|)."""
    device = torch.device(args.device)
    inputs = make_inputs(
        size,
        args.memory_length,
        args.batch,
        args.key_channels,
        args.value_channels,
        device,
        getattr(torch, args.dtype),
        requires_grad=True,
    )
    with torch.no_grad():
        diff = (get_tma_read("sdpa")(*inputs) - get_tma_read("reference")(*inputs)).abs().max().item()
    rows = {}
    for impl in ATTENTION_IMPLS:
        row: dict[str, object] = {
            "size": size,
            "impl": impl,
            "max_abs_diff": diff,
            "forward_ms": time_ms(impl, inputs, False, args.repeats, device),
            "train_ms": time_ms(impl, inputs, True, args.repeats, device),
        }
        if device.type == "cuda":
            row["forward_mib"] = cuda_peak_mib(impl, inputs, False, device)
            row["train_mib"] = cuda_peak_mib(impl, inputs, True, device)
        else:
            row["forward_mib"] = cpu_peak_mib(impl, size, False, args)
            row["train_mib"] = cpu_peak_mib(impl, size, True, args)
        rows[impl] = row
    return rows


def print_header(args: argparse.Namespace) -> None:
    cuda = args.device.startswith("cuda")
    memory = "CUDA max_memory_allocated" if cuda else "peak RSS growth (child process)"
    name = torch.cuda.get_device_name(args.device) if cuda else "cpu"
    print(
        f"TMA read, T={args.memory_length}, B={args.batch}, Ck={args.key_channels}, Cv={args.value_channels}, "
        f"{args.dtype}, device={args.device} ({name}); memory = {memory}"
    )
    header = (
        f"{'size':>7} {'scores':>9} | {'fwd ms sdpa':>11} {'ref':>9} {'ref/sdpa':>8} | {'f+b ms sdpa':>11} "
        f"{'ref':>9} {'ref/sdpa':>8} | {'fwd MiB sdpa':>12} {'ref':>9} {'ref/sdpa':>8} | "
        f"{'f+b MiB sdpa':>12} {'ref':>9} {'ref/sdpa':>8} | {'max|diff|':>9}"
    )
    print(header)
    print("-" * len(header), flush=True)


def print_row(size: int, rows: dict[str, dict[str, object]], args: argparse.Namespace) -> None:
    s, r = rows["sdpa"], rows["reference"]
    ratio = lambda a, b: f"{a / b:8.2f}" if b > 0 else f"{'inf':>8}"  # noqa: E731
    bytes_per_score = torch.finfo(getattr(torch, args.dtype)).bits / 8
    scores_mib = args.batch * args.memory_length * size**4 * bytes_per_score / 2**20
    print(
        f"{f'{size}x{size}':>7} {scores_mib:8.0f}M | {s['forward_ms']:11.2f} {r['forward_ms']:9.2f} "
        f"{ratio(r['forward_ms'], s['forward_ms'])} | {s['train_ms']:11.2f} {r['train_ms']:9.2f} "
        f"{ratio(r['train_ms'], s['train_ms'])} | {s['forward_mib']:12.1f} {r['forward_mib']:9.1f} "
        f"{ratio(r['forward_mib'], s['forward_mib'])} | {s['train_mib']:12.1f} {r['train_mib']:9.1f} "
        f"{ratio(r['train_mib'], s['train_mib'])} | {s['max_abs_diff']:9.2e}",
        flush=True,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help="feature grid sides (default: 97 65 33 on CUDA, 33 49 on CPU)",
    )
    parser.add_argument("--memory-length", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--key-channels", type=int, default=64)
    parser.add_argument("--value-channels", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 10 CUDA, 3 CPU)")
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "float16", "bfloat16"], help="CUDA only for half types"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="sizes not started within this many seconds are skipped (default 600)",
    )
    parser.add_argument("--probe", choices=ATTENTION_IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--probe-backward", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = args.device.startswith("cuda")
    args.sizes = args.sizes or ([97, 65, 33] if cuda else [33, 49])
    args.repeats = args.repeats or (10 if cuda else 3)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.probe:
        print(cpu_probe(args.probe, args.sizes[0], args.probe_backward, args))
        return
    started = time.perf_counter()
    print_header(args)
    for size in args.sizes:
        if time.perf_counter() - started > args.max_seconds:
            print(f"{f'{size}x{size}':>7} skipped: --max-seconds {args.max_seconds:.0f} spent", flush=True)
            continue
        print_row(size, benchmark_size(size, args), args)
    print(
        "scores = size of one (HW x THW) score matrix per batch, as stored by the reference; "
        "ratios > 1 mean the fused read is faster / smaller."
    )


if __name__ == "__main__":
    main()

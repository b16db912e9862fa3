"""The probes every measurement shares: peak memory, waiting for the GPU, and the CPU's name.

    memory = PeakMemory(device); memory.reset(); ...; memory.peak_mb(), memory.kind   # over a region (latency)
    peak_memory_mb(device)          # since the process started (CPU) / since the last reset (CUDA): training logs
    cuda_sync(device)               # before reading a wall clock
    cpu_model()                     # "AMD EPYC 7B13" (records, latency results, report provenance)
    cpu_details()                   # {"family": "25", "model": "1", "stepping": "1", "flags": ["avx2", "fma", ...]}

Peak memory is CUDA's ``max_memory_allocated`` on a GPU; on the CPU the peak resident set size: Linux ``VmHWM``,
which ``reset`` restarts through ``/proc/self/clear_refs``, else ``ru_maxrss`` (the process-lifetime peak;
bytes on macOS, KiB on Linux), and where neither exists (not POSIX) the current RSS (psutil).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

try:
    import resource
except ImportError:  # not on POSIX: the current RSS stands in for the peak
    resource = None  # type: ignore[assignment]

import psutil
import torch


class PeakMemory:
    """Peak memory over a region (``reset`` starts it); ``kind`` names what was measured."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = ""

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda_max_memory_allocated"
            return
        try:  # Linux: writing 5 resets the peak RSS (VmHWM) of this process
            Path("/proc/self/clear_refs").write_text("5")
            self.kind = "cpu_peak_rss_vmhwm_reset_per_mode"
        except OSError:
            self.kind = "cpu_peak_rss_ru_maxrss_process_lifetime"

    def peak_mb(self) -> float:
        """The peak in MiB (see the module docstring)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.kind.startswith("cpu_peak_rss_vmhwm"):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
        if resource is None:
            return psutil.Process().memory_info().rss / 2**20
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, kB on Linux


def peak_memory_mb(device: torch.device) -> float:
    """CUDA max allocated memory, or the process's peak resident set size on CPU, in MiB (no reset)."""
    return PeakMemory(device).peak_mb()


def cuda_sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU), so wall-clock timing measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# the instruction-set extensions that decide which kernels torch runs (x86: SSE4.2 .. AVX-512 and AMX; ARM: NEON,
# SVE): two hosts that share a model name ("AMD EPYC") but differ here give different digits
ISA_FLAGS: tuple[str, ...] = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "asimdhp", "sve", "sve2",
)  # fmt: skip


def cpu_details() -> dict[str, object]:
    """The CPU's family, model number and stepping (x86) and its ``ISA_FLAGS`` in that order (Linux
    ``/proc/cpuinfo``; empty where it cannot be read): what tells apart hosts whose model name is the same."""
    found: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key in ("cpu family", "model", "stepping", "flags", "Features") and key not in found:
                found[key] = value
    except OSError:
        pass
    flags = set((found.get("flags") or found.get("Features") or "").split())
    details: dict[str, object] = {
        k: found[c] for k, c in (("family", "cpu family"), ("model", "model"), ("stepping", "stepping")) if c in found
    }
    details["flags"] = [flag for flag in ISA_FLAGS if flag in flags]
    return details

"""Who a process is, in terms a clock step cannot move: its start time in clock ticks since boot, the boot it
belongs to, its host, and its SLURM job. Claims (``bench.run.claims``) and the temporary files of atomic writes
(``bench.atomic``) carry this identity, so a later process can tell whether their writer is still at work.

    from bench import process
    process.start_ticks()            # 123456 (field 22 of /proc/self/stat), None off Linux
    process.boot_id()                # "1f0c..." (/proc/sys/kernel/random/boot_id), None off Linux
    process.current_job_id()         # "41" / "12_3" inside SLURM, None outside (and for the local launcher)
    tag = process.writer_tag()       # "~<host hash>~<pid>~<ticks>~<job>~": put into a temporary file's name
    process.writer_of(".checkpoint.pt.~ab12cd34~4711~99~~x1y2.tmp")   # Writer(host_hash, pid, ticks, job)

``psutil.Process.create_time()`` is the boot time *read from the wall clock now* plus the start ticks, so an NTP
step moves it and a live owner looks like a reused pid; the ticks themselves never move. The bottom
layer (beside ``bench.atomic``): the standard library only.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# the tag of a temporary file: ~<8 hex digits of sha1(host)>~<pid>~<start ticks or 0>~<job id or empty>~
_TAG = re.compile(r"~([0-9a-f]{8})~(\d+)~(\d+)~([0-9_]*)~")


def start_ticks(pid: int | None = None) -> int | None:
    """The start time of ``pid`` (default: this process) in clock ticks since boot, or None where it cannot
    be read (no such process, no /proc)."""
    try:
        text = (PROC / str(pid or os.getpid()) / "stat").read_text()
    except OSError:
        return None
    # fields after the command name (in parentheses, which may itself hold spaces and parentheses)
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of proc(5): starttime; fields[0] is field 3 (state)
    except (IndexError, ValueError):
        return None


def boot_id() -> str | None:
    """The kernel's id of the current boot (ticks count from it), or None off Linux."""
    try:
        return (PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip() or None
    except OSError:
        return None


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


def host_hash(host: str | None = None) -> str:
    """8 hex digits naming ``host`` (default: this one) in a file name."""
    return hashlib.sha1((host or socket.gethostname()).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Writer:
    """The process that made a temporary file, read back from its name."""

    host_hash: str
    pid: int
    ticks: int | None
    job_id: str | None

    @property
    def here(self) -> bool:
        """Written on this host (its pid can be checked from here)."""
        return self.host_hash == host_hash()

    @property
    def me(self) -> bool:
        """Written by this very process."""
        return self.here and self.pid == os.getpid() and self.ticks == start_ticks()


def writer_tag() -> str:
    """This process's identity as a file-name fragment (module docstring)."""
    job = current_job_id() or ""
    return f"~{host_hash()}~{os.getpid()}~{start_ticks() or 0}~{job if re.fullmatch(r'[0-9_]*', job) else ''}~"


def writer_of(name: str) -> Writer | None:
    """The writer a temporary file's name carries (``writer_tag``), or None for a name without a tag."""
    match = _TAG.search(name)
    if match is None:
        return None
    host, pid, ticks, job = match.groups()
    return Writer(host, int(pid), int(ticks) or None, job or None)

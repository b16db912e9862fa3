"""Where a table's numbers came from: commit (and dirty flag), library versions, device and hardware per run.

    from bench.report.provenance import run_provenance, provenance_note, PROVENANCE_COLUMNS
    run_provenance(record)        # {"commit": "c93e960", "dirty": "no", "torch": "2.5.1", ..., "hardware": "..."}
    provenance_note(records)      # "provenance: commit c93e960 (clean), torch 2.5.1, ... " or "MIXED ENVIRONMENTS: ..."
    committed_files(paths)        # the paths among ``paths`` that the checkout's HEAD commit holds (a fresh clone has)

Read from what ``bench.run.records`` stores: ``git_commit``, ``versions``, ``device``, ``environment``
(``git_dirty``, ``cpu_model``, ``gpu``) and ``code.dirty`` where a record has it; older records lack some of
them ("unknown"); the hardware falls back to the latency block's ``device_name``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.run.git import git

UNKNOWN = "unknown"
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "commit", "dirty", "torch", "timm", "numpy", "device", "hardware", "cpu_flags", "threads"
)  # fmt: skip
# what tells hosts apart: the same run gives other digits on another CPU, kernel level or thread count
MACHINE_COLUMNS: tuple[str, ...] = ("device", "hardware", "cpu_flags", "threads")


def _dirty(record: dict[str, Any]) -> str:
    code = record.get("code") if isinstance(record.get("code"), dict) else {}
    env = record.get("environment") if isinstance(record.get("environment"), dict) else {}
    flag = code.get("dirty", env.get("git_dirty"))
    return UNKNOWN if flag is None else "yes" if flag else "no"


def _environment(record: dict[str, Any]) -> dict[str, Any]:
    return record.get("environment") if isinstance(record.get("environment"), dict) else {}


def _hardware(record: dict[str, Any], device: str) -> str:
    """The GPU's name, or the CPU's model name with its family and model number where recorded (one model name,
    "AMD EPYC", covers several generations)."""
    env = _environment(record)
    latency = record.get("latency") if isinstance(record.get("latency"), dict) else {}
    if device.startswith("cuda") and env.get("gpu"):
        return str(env["gpu"])
    name = str(env.get("cpu_model") or latency.get("device_name") or UNKNOWN)
    cpu = env.get("cpu") if isinstance(env.get("cpu"), dict) else {}
    number = ", ".join(f"{key} {cpu[key]}" for key in ("family", "model") if cpu.get(key) not in (None, ""))
    return f"{name} ({number})" if number else name


def _cpu_flags(record: dict[str, Any]) -> str:
    """The ISA flags that decide torch's CPU kernels, and the level torch picked ("avx2 fma ... (torch AVX2)")."""
    env = _environment(record)
    cpu = env.get("cpu") if isinstance(env.get("cpu"), dict) else {}
    flags = " ".join(map(str, cpu.get("flags") or []))
    level = env.get("torch_cpu_capability")
    text = " ".join(part for part in (flags, f"(torch {level})" if level else "") if part)
    return text or UNKNOWN


def _threads(record: dict[str, Any]) -> str:
    """The torch threads the run computed with (``environment.torch_threads``, read in the training process)."""
    threads = _environment(record).get("torch_threads")
    return str(threads) if isinstance(threads, int) and not isinstance(threads, bool) else UNKNOWN


def run_provenance(record: dict[str, Any]) -> dict[str, str]:
    """The provenance fields of one record as text (``UNKNOWN`` where the record does not say)."""
    versions = record.get("versions") if isinstance(record.get("versions"), dict) else {}
    commit = record.get("git_commit")
    device = str(record.get("device") or UNKNOWN)
    return {
        "commit": str(commit)[:10] if commit else UNKNOWN,
        "dirty": _dirty(record),
        **{name: str(versions.get(name) or UNKNOWN) for name in ("torch", "timm", "numpy")},
        "device": device,
        "hardware": _hardware(record, device),
        "cpu_flags": _cpu_flags(record),
        "threads": _threads(record),
    }


def combined(values: Iterable[str]) -> str:
    """Distinct values joined by " | " in first-seen order (one value when all agree)."""
    return " | ".join(dict.fromkeys(values))


def _same_code(records: list[dict[str, Any]]) -> bool:
    """Every record carries the same code fingerprint (suite sources and plugins)."""
    codes = [r.get("code") for r in records]
    if not all(isinstance(c, dict) and c.get("suite") for c in codes):
        return False
    return len({json.dumps([c["suite"], c.get("plugins")], sort_keys=True) for c in codes}) == 1


def provenance_note(records: list[dict[str, Any]]) -> str:
    """One line for the notes under a table: the shared environment, or which fields differ between its runs."""
    runs = [run_provenance(r) for r in records]
    fields = {key: combined(p[key] for p in runs) for key in PROVENANCE_COLUMNS}
    text = (
        f"commit {fields['commit']} (uncommitted changes: {fields['dirty']}), torch {fields['torch']}, "
        f"timm {fields['timm']}, numpy {fields['numpy']}, device {fields['device']} ({fields['hardware']}; "
        f"CPU flags {fields['cpu_flags']}; {fields['threads']} torch threads)"
    )
    opencv = combined(
        str(r["versions"]["opencv"])
        for r in records
        if isinstance(r.get("versions"), dict) and r["versions"].get("opencv")
    )
    if opencv:  # classical flow (DIS, Farneback) depends on it; records before it was stored do not say
        text += f", opencv {opencv}"
    mixed = [key for key in PROVENANCE_COLUMNS if " | " in fields[key]]
    if mixed == ["commit"] and _same_code(records):
        return (
            f"provenance: {text}; the runs were made at {len(fields['commit'].split(' | '))} commits with the "
            "same computing code (equal code fingerprints, bench.run.fingerprint)"
        )
    if mixed:
        return (
            f"MIXED ENVIRONMENTS: the runs of this table differ in {', '.join(mixed)} (per-row values in the "
            f"CSV columns {', '.join(mixed)}); provenance: {text}"
        )
    return f"provenance: {text}"


def committed_files(paths: list[Path]) -> set[Path]:
    """Those of ``paths`` (files in one folder) that the HEAD commit of their git checkout holds, so a fresh
    clone has them; empty outside a git checkout or without git."""
    if not paths:
        return set()
    out = git("ls-tree", "--name-only", "HEAD", "--", *(p.name for p in paths), cwd=paths[0].parent)
    names = {Path(line).name for line in out.splitlines()} if out is not None else set()
    return {p for p in paths if p.name in names}


def machine(runs: Any) -> str:
    """A table's machine (``MACHINE_COLUMNS`` of its runs frame, distinct values joined): "cpu, AMD EPYC (family
    25, model 1), avx2 fma (torch AVX2), 2 threads"."""
    values = {key: combined(runs[key].astype(str)) if key in runs else UNKNOWN for key in MACHINE_COLUMNS}
    return f"{values['device']}, {values['hardware']}, {values['cpu_flags']}, {values['threads']} threads"


def machine_note(name: str, machines: dict[str, str]) -> str | None:
    """The note for table ``name`` when the tables of one report were made on different machines, kernel levels
    or thread counts (``machines``: table -> ``machine``); None when they all agree."""
    if len(set(machines.values())) < 2:
        return None
    others = "; ".join(f"{table}: {where}" for table, where in machines.items() if table != name)
    return (
        f"machines differ between the tables of this report (the same run gives other digits on another CPU, "
        f"kernel level or thread count; compare conclusions, not digits): this table: {machines[name]}; {others}"
    )


def machines_text(entries: dict[str, dict[str, Any]]) -> str | None:
    """The index's line when its tables (this report's and those already there) come from different machines."""
    machines = {name: e["machine"] for name, e in entries.items() if e.get("machine")}
    if len(set(machines.values())) < 2:
        return None
    return (
        "The tables were made on different machines, CPU kernel levels or thread counts; the same runs give other "
        "digits on another host, so compare their conclusions, not their digits: "
        + "; ".join(f"{name}: {where}" for name, where in machines.items())
    )

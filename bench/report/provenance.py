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
PROVENANCE_COLUMNS: tuple[str, ...] = ("commit", "dirty", "torch", "timm", "numpy", "device", "hardware")


def _dirty(record: dict[str, Any]) -> str:
    code = record.get("code") if isinstance(record.get("code"), dict) else {}
    env = record.get("environment") if isinstance(record.get("environment"), dict) else {}
    flag = code.get("dirty", env.get("git_dirty"))
    return UNKNOWN if flag is None else "yes" if flag else "no"


def _hardware(record: dict[str, Any], device: str) -> str:
    env = record.get("environment") if isinstance(record.get("environment"), dict) else {}
    latency = record.get("latency") if isinstance(record.get("latency"), dict) else {}
    if device.startswith("cuda") and env.get("gpu"):
        return str(env["gpu"])
    return str(env.get("cpu_model") or latency.get("device_name") or UNKNOWN)


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
        f"timm {fields['timm']}, numpy {fields['numpy']}, device {fields['device']} ({fields['hardware']})"
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

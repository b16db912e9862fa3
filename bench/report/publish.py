"""Publishing a report into its ``--out`` folder: atomic files, one report at a time, and an index merged with
what the folder already holds (a report never destroys what it did not make).

    with report_lock(out):                       # fcntl.flock on <out>/.report.lock: a second report waits
        stage = staging_dir(out)                 # <out>/.staging.*.tmp/: tables and figures are written here
        ...
        publish(stage, out)                      # each file os.replace-d into place (atomic), stage removed
        entries = merge_entries(out, tables, figures)   # <out>/index.json: these entries over those on disk

``index.json`` is what the index shows: ``{"tables": {name: {"ablation", "files": {ext: path}, "page",
"reading", "rows", "runs"}}, "figures": {name: {"files": [path], "reading"}}}``, paths relative to ``out``.
An entry whose files are gone from disk is dropped; a figure this report could not draw does not replace one
on disk; a folder written before ``index.json`` existed keeps the entries of its ``index.md``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.atomic import write_json_atomic

ENTRIES = "index.json"
LOCK = ".report.lock"
STAGE_PREFIX = ".staging."
Entries = dict[str, dict[str, dict[str, Any]]]


@contextmanager
def report_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``out/.report.lock`` (released when the process dies)."""
    with open(out / LOCK, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def staging_dir(out: Path) -> Path:
    """A fresh hidden folder inside ``out`` (same file system, so ``publish`` renames are atomic). Called under
    ``report_lock``: any other staging folder there is a killed report's, and is removed first (else it would stay
    forever)."""
    for left in out.glob(f"{STAGE_PREFIX}*.tmp"):
        if left.is_dir():
            shutil.rmtree(left, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, suffix=".tmp", dir=out))


def publish(stage: Path, out: Path) -> None:
    """Move every file of ``stage`` to the same relative path under ``out`` (``os.replace``), then remove it."""
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        target = out / path.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(stage, ignore_errors=True)


def relative(path: Path, out: Path) -> str:
    return Path(path).relative_to(out).as_posix()


def _present(out: Path, entry: dict[str, Any]) -> bool:
    files = entry.get("files") or {}
    paths = files.values() if isinstance(files, dict) else files
    return all((out / p).is_file() for p in paths)


def _legacy_entries(out: Path) -> Entries:
    """The tables and figures listed by an ``index.md`` written before ``index.json`` existed."""
    entries: Entries = {"tables": {}, "figures": {}}
    index = out / "index.md"
    section = ""
    for line in index.read_text(errors="replace").splitlines() if index.is_file() else []:
        section = line[3:].strip().lower() if line.startswith("## ") else section
        item = re.match(r"- \*\*(?P<name>.+?)\*\*(?P<rest>.*)$", line)
        if not item:
            continue
        name, rest = item["name"], item["rest"]
        links = dict(re.findall(r"\[(\w+)\]\(([^)]+)\)", rest))
        reading = rest.split("): ", 1)[1] if "): " in rest else rest.partition("not drawn: ")[2]
        if section == "tables":
            page = f"html/{name}.html"
            entries["tables"][name] = {
                "ablation": rest[2:].split(";", 1)[0],
                "files": links,
                "page": page if (out / page).is_file() else "",
                "reading": reading.rstrip("."),
                "rows": None,
                "runs": None,
            }
        elif section == "figures":
            entries["figures"][name] = {"files": list(links.values()), "reading": reading}
    return entries


def read_entries(out: Path) -> Entries:
    """``out/index.json`` (or the legacy ``index.md``'s entries); unreadable means none."""
    try:
        data = json.loads((out / ENTRIES).read_text())
        if isinstance(data, dict) and isinstance(data.get("tables"), dict) and isinstance(data.get("figures"), dict):
            return {"tables": data["tables"], "figures": data["figures"]}
    except (OSError, ValueError):
        pass
    return _legacy_entries(out)


def merge_entries(out: Path, tables: dict[str, dict[str, Any]], figures: dict[str, dict[str, Any]]) -> Entries:
    """This report's entries over those already in ``out`` whose files still exist; written to ``index.json``."""
    old = read_entries(out)
    merged: Entries = {
        "tables": {k: v for k, v in old["tables"].items() if _present(out, v)},
        "figures": {k: v for k, v in old["figures"].items() if _present(out, v)},
    }
    merged["tables"].update(tables)
    for name, entry in figures.items():
        if entry["files"] or not merged["figures"].get(name, {}).get("files"):
            merged["figures"][name] = entry
    write_json_atomic(out / ENTRIES, merged)
    return merged

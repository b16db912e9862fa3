"""The training log file (``log.jsonl``): one JSON object per line, appended while training, read by reports.

    append_log(path, {"iter": 50, "loss": 0.7})     # one line
    truncate_log(path, iteration=400, final=True)  # drop what came after a checkpoint (a resumed run)
    read = read_log(path)                          # LogRead(path, entries, bad lines, line count)

``bench.run.rundir.RunDir`` names the file (``RunDir.log``) and reads it for reports (``RunDir.read_log``); the
trainer writes it through the path it is given (``bench.engine.log_writer.TrainLog``). Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.atomic import write_atomic


def append_log(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line to the log file ``path``."""
    with open(path, "a") as handle:
        handle.write(json.dumps(entry) + "\n")


@dataclass(frozen=True)
class LogRead:
    """The JSON objects of a ``log.jsonl``, the (line number, reason) of lines that are not JSON, the line count."""

    path: Path
    entries: list[dict[str, Any]]
    bad: list[tuple[int, str]]
    lines: int


def read_log(path: Path) -> LogRead:
    """The log file ``path``. Raises ``FileNotFoundError`` when there is none."""
    rows = path.read_text(errors="replace").splitlines()
    entries, bad = [], []
    for number, line in enumerate(rows, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:  # e.g. a line cut short when the process was killed
            bad.append((number, err.msg))
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return LogRead(path, entries, bad, len(rows))


def truncate_log(path: Path, iteration: int, final: bool = False) -> None:
    """Drop the entries written after ``iteration`` (work lost when the run was interrupted: it is done again).
    ``final``: the checkpoint at ``iteration`` is the last one and is about to be evaluated again, so its
    validation line goes too (one validation line per evaluation). Every other line stays as it was, a line
    that is not a JSON object included (a line cut short by a kill, or one written by something else)."""
    if not path.is_file():
        return
    data = path.read_bytes()
    rows = data.splitlines()
    kept = [row for row in rows if not _redone(row, iteration, final)]
    if len(kept) != len(rows) or (data and not data.endswith(b"\n")):  # a cut-short last line ends here
        write_atomic(path, b"".join(row + b"\n" for row in kept))


def _redone(row: bytes, iteration: int, final: bool) -> bool:
    """Whether the log line ``row`` is an entry the resumed run writes again."""
    try:
        entry = json.loads(row)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    if not isinstance(entry, dict) or not isinstance(entry.get("iter", 0), int):
        return False
    at = entry.get("iter", 0)
    return at > iteration or (at == iteration and final and "val" in entry)

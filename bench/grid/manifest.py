"""A sweep's ``manifest.jsonl``: one ``submit`` line per launched run (with its job id) and one ``end`` line
per finished local run. Appends are single ``write`` calls, so concurrent writers do not interleave.

    append(manifest, {"event": "submit", "run_id": ..., "launcher": "local", "job_id": "local-123", ...})
    latest_submissions(manifest)["tmanet-0123456789"]   # the last submit line, its end line merged in
    recorded_signatures(manifest)                       # {"temporal_mean": ["memory_length", ...]}
    recorded_signatures(manifest, "plugins")            # {"temporal_mean": ["temporal_mean"]}

A sweep also writes a ``signatures`` line before it launches: the argument names each model's factory accepts
and the plugins each model depends on, so ``bench status`` and ``bench report`` can name the runs of a plugin
grid where the plugin is not importable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def append(path: Path, payload: dict[str, Any]) -> None:
    """Append one JSON line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(payload, default=str) + "\n")


def read(path: Path) -> list[dict[str, Any]]:
    """All JSON objects of a JSON-lines file (a torn last line is ignored)."""
    rows: list[dict[str, Any]] = []
    if not Path(path).is_file():
        return rows
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def latest_submissions(path: Path) -> dict[str, dict[str, Any]]:
    """Per run id, the last ``submit`` line, with its ``end`` line (returncode, end_reason) merged in if any."""
    latest: dict[str, dict[str, Any]] = {}
    for row in read(path):
        rid = row.get("run_id")
        if row.get("event") == "submit":
            latest[rid] = dict(row)
        elif row.get("event") == "end" and rid in latest and latest[rid].get("job_id") == row.get("job_id"):
            latest[rid].update(returncode=row.get("returncode"), end_reason=row.get("reason", ""))
    return latest


def recorded_signatures(path: Path, field: str = "models") -> dict[str, list[str]]:
    """Per model name, the accepted argument names (``field="plugins"``: the plugins it depends on) of the last
    ``signatures`` line that lists it."""
    found: dict[str, list[str]] = {}
    for row in read(path):
        if row.get("event") == "signatures" and isinstance(row.get(field), dict):
            found.update({str(k): list(v) for k, v in row[field].items() if isinstance(v, list)})
    return found

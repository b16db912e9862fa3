"""The paper's reported numbers (``results/paper_reference.yaml``) matched to table rows.

reference = load_paper_reference()
miou, note = paper_number(reference, "cityscapes", flat_config, "methods")   # (80.3, "TMANet-50: ...")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.report.sources import ReportError

PAPER_REFERENCE_PATH = Path(__file__).resolve().parents[2] / "results" / "paper_reference.yaml"


def load_paper_reference(path: str | Path = PAPER_REFERENCE_PATH) -> dict[str, Any]:
    """``results/paper_reference.yaml``: ``{"source", "entries", "missing"}``."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data.get("entries"), list):
        raise ReportError(f"{path}: expected a list under 'entries'")
    return data


def _matches(config: dict[str, Any], match: dict[str, Any]) -> bool:
    for key, wanted in match.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if config.get(key) not in options:
            return False
    return True


def paper_number(
    reference: dict[str, Any], dataset: str | None, config: dict[str, Any], ablation: str
) -> tuple[float | None, str]:
    """The paper's mIoU for a row's dataset and flattened config, and a note on its origin or absence."""
    if dataset == "synthetic":
        return None, "synthetic data: no paper number"
    missing = {m.get("ablation"): m.get("note", "") for m in reference.get("missing") or []}
    for entry in reference["entries"]:
        if entry.get("dataset") != dataset or not entry.get("match") or not _matches(config, entry["match"]):
            continue
        note = f"{entry['method']}: {entry.get('setting', '')}"
        if entry.get("caveat"):
            note += f" ({entry['caveat']})"
        if entry.get("source"):
            note += f"; source: {entry['source']}"
        if ablation in missing:
            note = f"paper main result at this setting, {note}; {missing[ablation]}"
        return float(entry["miou"]), note
    if ablation in missing:
        return None, f"missing: {missing[ablation]}"
    return None, "no paper number for this setting"


def paper_entry(reference: dict[str, Any], dataset: str | None, config: dict[str, Any]) -> dict[str, Any] | None:
    """The first reference entry whose ``match`` a row's dataset and flattened config satisfy, else None."""
    for entry in reference["entries"]:
        if entry.get("dataset") == dataset and entry.get("match") and _matches(config, entry["match"]):
            return entry
    return None


def method_entry(reference: dict[str, Any], dataset: str, method: str) -> dict[str, Any] | None:
    """The reference entry of the paper row ``method`` on ``dataset`` (with or without ``match``), else None."""
    return next((e for e in reference["entries"] if e.get("dataset") == dataset and e.get("method") == method), None)

"""THE validity check of a finished record: ``bench status``, ``bench sweep`` and ``bench report`` all call it,
so none of them shows as done what another rejects.

    from bench.run.validity import record_problem
    record_problem(record)     # None, or why the record cannot be trusted (one line, with what to do)

``bench.run.reads.read_record_at`` calls it for every record that says it is done: a record with a problem is
*corrupt* (``RecordState.CORRUPT`` with this reason) for every reader. A record is valid when this version can
read it (``schema`` at most ``RECORD_SCHEMA``), its fields have their types (``metrics.miou`` and the other
headline metrics finite fractions, ``per_class_iou`` a mapping, ``run_id`` a string, ``latency`` a mapping), its
headline ``metrics.miou`` agrees with its own per-image (or per-video) counts under its ``miou_convention``
(reports recompute from them, docs/statistics.md), and its stored config still validates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.config import Config, ConfigError, from_dict

RECORD_SCHEMA = 1  # the record.json layout this version writes and reads (docs/architecture.md, "record.json")
# |recomputed - stored| mIoU (fraction) beyond which a record's headline is called inconsistent with its counts:
# 0.01 mIoU points, far above float32 rounding of a mean of class IoUs
MIOU_TOLERANCE = 1e-4
FRACTIONS = ("miou", "pixel_agreement", "etc_tc", "tc", "pixel_acc")


def miou_from_sums(intersection: np.ndarray, union: np.ndarray, labelled: np.ndarray | None = None) -> np.ndarray:
    """(..., C) summed intersection and union -> (...) mIoU over the classes with union > 0, or with ``labelled``
    (summed labelled pixels) over the classes with labelled pixels (``present_in_gt``); NaN if no class is left."""
    intersection = np.asarray(intersection, dtype=float)
    union = np.asarray(union, dtype=float)
    counted = union > 0 if labelled is None else np.asarray(labelled) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(counted, intersection / np.where(union > 0, union, 1), np.nan)
    present = counted.sum(-1)
    total = np.nansum(iou, axis=-1)
    return np.where(present > 0, total / np.maximum(present, 1), np.nan)


def record_problem(record: Any) -> str | None:
    """Why ``record`` (a parsed ``record.json``) is not a valid finished record, or None (module docstring)."""
    if not isinstance(record, dict):
        return f"expected a JSON object (a run record), got {type(record).__name__ if record is not None else 'null'}"
    schema = record.get("schema", RECORD_SCHEMA)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema > RECORD_SCHEMA:
        return (
            f"schema {schema!r} was written by a newer version of the suite (this one reads schema "
            f"{RECORD_SCHEMA}); update bench (git pull) to read it, or train the run again"
        )
    if record.get("status") != "done":
        return f"status is {record.get('status')!r}, not 'done' (only finished runs are reported)"
    return _metrics_problem(record.get("metrics")) or _fields_problem(record) or _headline_problem(record["metrics"])


def _metrics_problem(metrics: Any) -> str | None:
    if not isinstance(metrics, dict):
        return f"metrics must be an object holding miou, got {metrics!r}"
    for key in FRACTIONS:
        value = metrics.get(key)
        if value is None and key != "miou":
            continue
        if not _is_fraction(value):
            return f"metrics.{key} must be a finite number in [0, 1], got {value!r}"
    per_class = metrics.get("per_class_iou")
    # None marks a class absent from both the labels and the predictions (bench.metrics.segmentation_summary)
    if per_class is not None and not (
        isinstance(per_class, dict) and all(v is None or _is_fraction(v) for v in per_class.values())
    ):
        return "metrics.per_class_iou must map class names to numbers in [0, 1] (or null for an absent class)"
    return None


def _fields_problem(record: dict[str, Any]) -> str | None:
    config = record.get("config")
    if (
        not isinstance(config, dict)
        or not isinstance(config.get("model"), dict)
        or not isinstance(config["model"].get("name"), str)
    ):
        return "config must be an object with model.name (the resolved config of the run)"
    if not isinstance(record.get("run_id"), str) or not record["run_id"]:
        return f"run_id must be a non-empty string, got {record.get('run_id')!r}"
    if not isinstance(record.get("latency") or {}, dict):
        return f"latency must be an object, got {record.get('latency')!r}"
    try:
        from_dict(Config, config)
    except (ConfigError, TypeError, ValueError) as err:
        return f"its stored config does not validate ({err}); re-run it or delete the folder"
    return None


def _headline_problem(metrics: dict[str, Any]) -> str | None:
    """The stored ``miou`` against the one recomputed from ``per_video`` (else ``per_image``) counts under the
    record's ``miou_convention`` (None without counts)."""
    key = "per_video" if metrics.get("per_video") else "per_image"
    counts = metrics.get(key)
    if not counts:
        return None
    try:
        names = counts["names"]
        arrays = [np.asarray(counts[name], dtype=np.int64) for name in ("intersection", "union", "label_pixels")]
    except (KeyError, TypeError, ValueError) as err:
        return f"metrics.{key} is malformed ({type(err).__name__}: {err}); re-run `bench eval` to rewrite the record"
    if any(a.ndim != 2 or a.shape != arrays[0].shape or a.shape[0] != len(names) for a in arrays):
        return f"metrics.{key} arrays must be (rows, classes), one row per name; re-run `bench eval`"
    labelled = arrays[2].sum(0) if metrics.get("miou_convention") == "present_in_gt" else None
    recomputed = float(miou_from_sums(arrays[0].sum(0), arrays[1].sum(0), labelled))
    if not abs(recomputed - metrics["miou"]) <= MIOU_TOLERANCE:
        return (
            f"metrics.miou {100 * metrics['miou']:.2f} disagrees with its own per-image counts "
            f"({100 * recomputed:.2f}); re-run `bench eval` to rewrite the record"
        )
    return None


def _is_fraction(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0.0 <= value <= 1.0
    )

"""Run records -> pandas frames: one row per run, metrics in percent, every config key as ``cfg:<key>``.

    runs = runs_frame(source.records)        # run_id, model, dataset, seed, miou, ..., latency_ms, cfg:model.name, ...
    varying_keys(runs)                       # the cfg: columns that differ between runs (seeds excluded)
    oracle_input(record["config"])           # "ground-truth flow" for a run fed ground-truth flow, else ""

Per run also: ``oracle`` (what oracle input the model received, "" for none), ``predicted_classes`` (1 = a
constant prediction), the streaming latency's IQR of
pass medians (``latency_iqr_ms``, quartiles ``latency_q25_ms`` / ``latency_q75_ms``) and GFLOPs per frame
(``gflops``), and the provenance fields of
``bench.report.provenance`` (commit, dirty, torch, timm, numpy, device, hardware). A ``model.*`` key that the
run's model does not take (``model.update_backbone`` of a DFF run) is blank: it cannot change the run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from bench.config import dotted_items
from bench.evaluation.protocols import augmentation_label
from bench.models import registry
from bench.models.registry import RegistryError
from bench.report.provenance import run_provenance
from bench.report.sources import get_dotted
from bench.run.arguments import dotted_model_keys

# Config keys that never distinguish table rows: seeds are pooled, the rest do not change results.
POOLED_KEY_SUFFIXES: tuple[str, ...] = ("seed",)
# plugins: the model name tells a plugin's rows apart; a built-in model's runs do not depend on the list
IGNORED_KEY_PREFIXES: tuple[str, ...] = (
    "name", "launch.", "device", "output_root", "run_dir", "checkpoint", "plugins"
)  # fmt: skip


def flatten_config(config: dict[str, Any]) -> dict[str, Any]:
    """Nested config -> ``{"model.memory_length": 2, ...}`` (``bench.config.dotted_items``); lists and empty
    mappings become JSON strings (hashable)."""
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in dotted_items(config).items()}


def latency_ms(record: dict[str, Any], mode: str = "streaming") -> float:
    """Per-frame latency of ``mode`` from the record's ``latency`` block, NaN if absent: the median, or for a
    keyframe model (``frame_types``) the mean over a keyframe cycle (a plain median would be a non-key frame's)."""
    modes = (record.get("latency") or {}).get("modes") or {}
    stats = modes.get(mode) or {}
    value = (stats.get("frame_types") or {}).get("cycle_mean_ms", stats.get("median_ms"))
    return float(value) if value is not None else math.nan


def video_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """The whole-video metrics of a run (mVC, bench.evaluation.videos): its ``metrics`` when it was evaluated on
    whole videos, else the ``videos`` section ``bench eval --record`` merged into the record; {} when neither."""
    metrics = record.get("metrics") or {}
    return metrics if metrics.get("whole_videos") else record.get("videos") or {}


def mvc(record: dict[str, Any], window: int) -> float:
    """mVC_``window`` in percent (the record's ``mvc_variant``), NaN if not measured."""
    return percent(video_metrics(record).get(f"mvc_{window}"))


def latency_field(record: dict[str, Any], key: str, mode: str = "streaming") -> float:
    """``latency.modes.<mode>.<key>`` (``iqr_ms``, ``gflops``...) as a float, NaN if absent."""
    modes = (record.get("latency") or {}).get("modes") or {}
    value = (modes.get(mode) or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def latency_quartiles(record: dict[str, Any], mode: str = "streaming") -> tuple[float, float]:
    """(25th, 75th) percentile of the pass medians of ``mode`` (linear interpolation, as ``iqr_ms``); from
    ``median_ms ± iqr_ms / 2`` when the record has no ``pass_medians_ms``; NaN when neither."""
    modes = (record.get("latency") or {}).get("modes") or {}
    medians = [float(v) for v in (modes.get(mode) or {}).get("pass_medians_ms") or [] if isinstance(v, (int, float))]
    if medians:
        low, high = np.percentile(medians, [25, 75])
        return float(low), float(high)
    median, iqr = latency_ms(record, mode), latency_field(record, "iqr_ms", mode)
    return median - iqr / 2, median + iqr / 2


def test_time_augmentation(config: dict[str, Any]) -> str:
    """A run's test-time augmentation in a table's words ("ms+flip (0.5-1.75)"), "" for single-scale."""
    scales, flip = get_or(config, "eval.scales") or [1.0], bool(get_or(config, "eval.flip"))
    label = augmentation_label(scales, flip)
    return "" if label == "single-scale" else label


def oracle_input(config: dict[str, Any]) -> str:
    """The oracle input a run's model received, "" for none: ground-truth flow (``model.flow.source``). Only
    inputs of the model count (the flow that ``eval`` uses to score temporal consistency is not an input)."""
    return "ground-truth flow" if get_or(config, "model.flow.source") == "ground_truth" else ""


def latency_unstable(record: dict[str, Any], mode: str = "streaming") -> bool:
    """True when ``bench latency`` flagged ``mode``'s median as unstable (pass medians spread > 10%)."""
    modes = (record.get("latency") or {}).get("modes") or {}
    return (modes.get(mode) or {}).get("unstable") is True


def unused_model_keys(model_name: str) -> set[str]:
    """The dotted ``model.*`` keys (``model.update_backbone``, ``model.flow.source``...) that the factory of
    ``model_name`` does not take, so they cannot change its runs (run ids leave them out); empty when the model
    is not registered here (a plugin that is not imported) and its argument names were not recorded."""
    try:
        accepted = registry.accepted_arguments(registry.get_factory(model_name))
    except RegistryError:
        accepted = registry.recorded_arguments(model_name)
        if accepted is None:
            return set()
    return {key for arg, key in dotted_model_keys().items() if arg not in accepted}


def predicted_classes(record: dict[str, Any]) -> int | None:
    """How many classes a run predicted anywhere on its validation split (the confusion matrix's non-empty
    columns; rows are ground truth, columns predictions); None when the record has no matrix. 1 means a constant
    prediction: one class everywhere, whose pixel agreement and ETC TC are trivially 100%."""
    matrix = (record.get("metrics") or {}).get("confusion_matrix")
    try:
        columns = np.asarray(matrix, dtype=np.int64).sum(axis=0)
    except (TypeError, ValueError):
        return None
    return int((columns > 0).sum()) if columns.ndim == 1 and columns.size else None


def runs_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: ids, metrics in percent, latency, and every config key as ``cfg:<dotted key>``."""
    rows, unused_of = [], {}
    for record in records:
        metrics = record.get("metrics") or {}
        config = record.get("config") or {}
        row: dict[str, Any] = {
            "run_id": record.get("run_id"),
            "model": record.get("model") or get_or(config, "model.name"),
            "dataset": record.get("dataset") or get_or(config, "data.dataset"),
            "seed": record.get("seed"),
            "miou": percent(metrics.get("miou")),
            # records before the rename stored pixel agreement as "tc" (read as such; _table_notes says so)
            "pixel_agreement": percent(metrics.get("pixel_agreement", metrics.get("tc"))),
            "etc_tc": percent(metrics.get("etc_tc")),
            "mvc_8": mvc(record, 8),
            "mvc_16": mvc(record, 16),
            "mvc_variant": video_metrics(record).get("mvc_variant"),
            "miou_convention": metrics.get("miou_convention", "nonzero_union"),
            "whole_videos": bool(metrics.get("whole_videos")),
            "pixel_acc": percent(metrics.get("pixel_acc")),
            "predicted_classes": predicted_classes(record),
            "latency_ms": latency_ms(record),
            "latency_recompute_ms": latency_ms(record, "recompute"),
            "latency_unstable": latency_unstable(record),
            "latency_iqr_ms": latency_field(record, "iqr_ms"),
            "latency_q25_ms": latency_quartiles(record)[0],
            "latency_q75_ms": latency_quartiles(record)[1],
            "gflops": latency_field(record, "gflops"),
            "checkpoint": record.get("checkpoint"),
            "run_dir": record.get("_run_dir"),
            **run_provenance(record),
        }
        name = str(row["model"])
        if name not in unused_of:
            unused_of[name] = unused_model_keys(name)
        unused = unused_of[name]
        row["oracle"] = "" if "model.flow.source" in unused else oracle_input(config)
        row["protocol"] = test_time_augmentation(config)
        # a key the model does not take is blank: it cannot tell two rows apart (the run ids leave it out)
        row.update({f"cfg:{k}": None if k in unused else v for k, v in flatten_config(config).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def per_class_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Runs x classes of per-class IoU in percent (index: run id)."""
    rows = {}
    for record in records:
        per_class = (record.get("metrics") or {}).get("per_class_iou") or {}
        if per_class:
            rows[record.get("run_id")] = {name: percent(v) for name, v in per_class.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def get_or(config: dict[str, Any], key: str) -> Any:
    try:
        return get_dotted(config, key)
    except (KeyError, AttributeError, TypeError):
        return None


def percent(value: Any) -> float:
    return 100.0 * float(value) if value is not None else math.nan


def mean_or_nan(column: pd.Series) -> float:
    return float(column.mean()) if column.notna().any() else math.nan


def _is_row_key(column: str) -> bool:
    key = column[len("cfg:") :]
    return not key.endswith(POOLED_KEY_SUFFIXES) and not key.startswith(IGNORED_KEY_PREFIXES)


def varying_keys(runs: pd.DataFrame) -> list[str]:
    """``cfg:`` columns whose value differs between runs, seeds and run-location keys excluded."""
    cols = [c for c in runs.columns if c.startswith("cfg:") and _is_row_key(c)]
    return [c for c in cols if runs[c].astype(str).nunique(dropna=False) > 1]

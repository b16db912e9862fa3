"""The published-vs-reproduced table of released weights (``bench reproduce SPEC``).

    rows = released_rows(outcomes)                       # bench.grid.released.reproduce_spec's outcomes
    markdown, csv_text = released_table(spec, rows)      # -> reports/tables/<spec name>.{md,csv}
    paths = write_released_table(spec, rows, "reports")

Columns: checkpoint | protocol | published | reproduced | Δ | Δ 95% CI | images | source. The weights are fixed,
so the unit of the interval is the **image**: a percentile bootstrap over the validation images of the reproduced
mIoU (``bench.report.stats.image_bootstrap_ci``: the per-image intersection and union counts of the record,
resampled with replacement, the split-level mIoU recomputed each time), shifted by the published number, a
constant. It says how much the number would move on another sample of images like these; it is not the
seed-level interval of the trained rows of other tables, and the two are never mixed in one table. A checkpoint
that is not present is a row with its reproduced columns empty and a note that says where to put which file.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.atomic import write_text_atomic
from bench.grid.released import Outcome, ReleasedSpec
from bench.report.stats import REPLICATES, RNG_SEED, counts_from_record, image_bootstrap_ci, run_miou
from bench.report.table_model import MISSING, fmt, fmt_ci

HEADER = ("checkpoint", "protocol", "published", "reproduced", "Δ", "Δ 95% CI (images)", "images", "source")


@dataclass(frozen=True)
class ReleasedRow:
    """One published number and its reproduction (NaN where the checkpoint was not evaluated)."""

    checkpoint: str
    protocol: str
    published: float
    reproduced: float
    ci_low: float
    ci_high: float
    images: int
    source: str
    note: str
    run_id: str
    sha256: str
    problem: str | None

    @property
    def delta(self) -> float:
        return self.reproduced - self.published


def _row(outcome: Outcome) -> ReleasedRow:
    item, record = outcome.evaluation, outcome.record
    reproduced = low = high = math.nan
    images, run_id, sha = 0, "", ""
    if record is not None:
        counts = counts_from_record(record)
        reproduced = 100 * run_miou(counts)
        if counts.has_images:
            images = counts.intersection.shape[0]
            low, high = (100 * v for v in image_bootstrap_ci(counts))
        run_id, sha = str(record.get("run_id", "")), str((record.get("weights") or {}).get("sha256", ""))
    return ReleasedRow(
        item.release.name, item.published.protocol, item.published.miou, reproduced, low, high, images,
        item.published.source, item.published.note, run_id, sha, outcome.problem,
    )  # fmt: skip


def released_rows(outcomes: list[Outcome]) -> list[ReleasedRow]:
    """A row per outcome, in the spec's order."""
    return [_row(o) for o in outcomes]


def _cells(row: ReleasedRow) -> list[str]:
    done = not math.isnan(row.reproduced)
    return [
        row.checkpoint,
        row.protocol,
        fmt(row.published),
        fmt(row.reproduced) if done else MISSING,
        fmt(row.delta, signed=True) if done else MISSING,
        fmt_ci(row.ci_low - row.published, row.ci_high - row.published, 2, signed=True) if done else MISSING,
        str(row.images) if done else MISSING,
        row.source,
    ]


def notes(spec: ReleasedSpec, rows: list[ReleasedRow]) -> list[str]:
    """The lines under the table: the unit and method of the interval, the runs, the missing files."""
    lines = [
        f"Unit: the image. The weights are fixed (one released checkpoint per row), so Δ 95% CI is a percentile "
        f"bootstrap over the validation images ({REPLICATES} replicates, seed {RNG_SEED}) of the reproduced mIoU, "
        f"minus the published number; it is not a seed-level interval and is never compared with one.",
        "Protocols: single-scale = one pass at the image's size; ms+flip = mmseg's --aug-test (ratios 0.5-1.75 "
        "and the mirrored image, softmax averaged); whole or slide as the checkpoint's config.",
    ]
    done = [r for r in rows if r.run_id]
    if done:
        lines.append("Runs: " + ", ".join(f"{r.checkpoint} {r.protocol} = {r.run_id} (sha256 {r.sha256[:8]})"
                                          for r in done))  # fmt: skip
    lines += [f"{r.checkpoint} ({r.protocol}): {r.note}" for r in rows if r.note]
    lines += [f"Not evaluated: {p}" for p in dict.fromkeys(r.problem for r in rows if r.problem)]
    return lines


def released_table(spec: ReleasedSpec, rows: list[ReleasedRow]) -> tuple[str, str]:
    """(Markdown with notes, CSV) of the rows."""
    title = f"# {spec.name}: published vs reproduced (released weights)"
    lines = [title, "", spec.description, ""] if spec.description else [title, ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    lines += [""] + [f"- {n}" for n in notes(spec, rows)]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["checkpoint", "protocol", "published", "reproduced", "delta", "delta_ci_low", "delta_ci_high",
                     "images", "source", "run_id", "sha256", "problem"])  # fmt: skip
    for r in rows:
        writer.writerow([r.checkpoint, r.protocol, r.published, _num(r.reproduced), _num(r.delta),
                         _num(r.ci_low - r.published), _num(r.ci_high - r.published), r.images, r.source, r.run_id,
                         r.sha256, r.problem or ""])  # fmt: skip
    return "\n".join(lines) + "\n", out.getvalue()


def _num(value: float) -> Any:
    return "" if math.isnan(value) else round(value, 4)


def write_released_table(spec: ReleasedSpec, rows: list[ReleasedRow], out: str | Path) -> list[Path]:
    """``<out>/tables/<spec name>.md`` and ``.csv``, written atomically; returns the paths."""
    markdown, csv_text = released_table(spec, rows)
    folder = Path(out) / "tables"
    return [
        write_text_atomic(folder / f"{spec.name}.md", markdown),
        write_text_atomic(folder / f"{spec.name}.csv", csv_text),
    ]

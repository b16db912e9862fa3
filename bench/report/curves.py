"""Training curves from runs' ``log.jsonl``: loss (and aux loss), learning rate and validation mIoU vs iteration.

    bench curves results/runs/<id>                                   # -> results/runs/<id>/curves.png
    bench curves results/runs/<id> results/runs/<other id> --out plots/curves.png

One line per run, the legend names the run id (``record.json``'s ``run_id``, else the folder name). The trainer
(``bench.engine.trainer``) writes ``{"iter", "loss", "aux_loss", "lr", ...}`` every ``train.log_every`` iterations
and ``{"iter", "val": {"miou", ...}}`` after each validation (mIoU a fraction, plotted in percent). A run without
validation lines has no mIoU points (the command says so); a torn last line (a run killed mid-write) is skipped.
Drawn with the matplotlib Figure API: importing this module changes no backend or global style.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from bench.atomic import output_file
from bench.engine import train_log
from bench.report.plotting import new_figure
from bench.report.sources import ReportError
from bench.run.rundir import RunDir


class CurvesError(ReportError):
    """A run folder without a readable ``log.jsonl``."""


@dataclass
class RunLog:
    """One run's logged series, each a list of (iteration, value) sorted by iteration."""

    run_id: str
    path: Path
    loss: list[tuple[int, float]] = field(default_factory=list)
    aux_loss: list[tuple[int, float]] = field(default_factory=list)
    lr: list[tuple[int, float]] = field(default_factory=list)
    miou: list[tuple[int, float]] = field(default_factory=list)  # validation mIoU in percent
    notes: list[str] = field(default_factory=list)


def _entries(run: str | Path) -> tuple[Path, list[dict], list[str]]:
    """(log path, its entries with an "iter", notes); a torn last line is dropped with a note, a bad line
    elsewhere is an error."""
    try:
        log = train_log.read_log(RunDir.log_of(run))
    except (FileNotFoundError, IsADirectoryError):
        raise CurvesError(f"{run}: no {RunDir.log_of(run).name}; give run folders written by `bench train`") from None
    notes = []
    for number, reason in log.bad:
        if number != log.lines:
            raise CurvesError(f"{log.path}:{number}: not JSON ({reason}); remove or repair that line")
        notes.append(f"torn last line {number} of {log.path} skipped")
    return log.path, [e for e in log.entries if "iter" in e], notes


def read_log(run: str | Path) -> RunLog:
    """The series of a run folder (or of its ``log.jsonl`` given directly); a repeated iteration keeps its last
    value (a run resumed from an older checkpoint logs those iterations again)."""
    path, entries, notes = _entries(run)
    run_dir = path.parent
    series: dict[str, dict[int, float]] = {"loss": {}, "aux_loss": {}, "lr": {}, "miou": {}}
    for entry in entries:
        it = int(entry["iter"])
        for key in ("loss", "aux_loss", "lr"):
            if isinstance(entry.get(key), (int, float)):
                series[key][it] = float(entry[key])
        miou = (entry.get("val") or {}).get("miou") if isinstance(entry.get("val"), dict) else None
        if isinstance(miou, (int, float)):
            series["miou"][it] = 100.0 * float(miou)
    log = RunLog(
        RunDir(run_dir).name(), path, notes=notes, **{key: sorted(values.items()) for key, values in series.items()}
    )
    if not log.miou:
        log.notes.append(f"{log.run_id}: no validation lines in {path}, so no mIoU points")
    if not log.loss:
        log.notes.append(f"{log.run_id}: no training lines in {path}")
    return log


def _plot(ax, points: list[tuple[int, float]], **style) -> None:
    if points:
        xs, ys = zip(*points)
        ax.plot(xs, ys, **style)


def curves_figure(logs: list[RunLog]) -> Figure:
    """Three stacked axes sharing the iteration axis: loss (solid) and aux loss (dashed), learning rate, and
    validation mIoU (markers). Line labels: the run id (``"<id> aux"`` for the aux loss)."""
    fig = new_figure(figsize=(8.0, 9.0), layout="constrained")
    ax_loss, ax_lr, ax_miou = fig.subplots(3, 1, sharex=True)
    for i, log in enumerate(logs):
        colour = f"C{i % 10}"
        _plot(ax_loss, log.loss, color=colour, label=log.run_id)
        if any(v != 0 for _, v in log.aux_loss):  # 0 when the model has no auxiliary head
            _plot(ax_loss, log.aux_loss, color=colour, linestyle="--", label=f"{log.run_id} aux")
        _plot(ax_lr, log.lr, color=colour, label=log.run_id)
        _plot(ax_miou, log.miou, color=colour, marker="o", label=log.run_id)
    ax_loss.set_ylabel("loss (dashed: aux loss)")
    ax_lr.set_ylabel("learning rate")
    ax_miou.set_ylabel("val mIoU (%)")
    ax_miou.set_xlabel("iteration")
    if not any(log.miou for log in logs):
        ax_miou.text(
            0.5, 0.5, "no validation lines in these logs", ha="center", va="center", transform=ax_miou.transAxes
        )
    for ax in (ax_loss, ax_lr, ax_miou):
        ax.grid(alpha=0.3)
    ax_loss.legend(title="run", fontsize="small")
    ax_loss.set_title("training curves")
    return fig


def curves_command(runs: list[str], out: str | Path | None = None) -> int:
    """``bench curves``: read every run's log, draw, save ``out`` (PNG; default ``curves.png`` in the first run's
    folder, never the working directory), print what each run contributed."""
    logs = [read_log(run) for run in runs]
    default = RunDir(logs[0].path.parent).curves_file
    out = output_file(out, default.name) if out else default
    out.parent.mkdir(parents=True, exist_ok=True)
    curves_figure(logs).savefig(out, dpi=120)
    for log in logs:
        last = f", last loss {log.loss[-1][1]:.4f} at iter {log.loss[-1][0]}" if log.loss else ""
        best = f", best val mIoU {max(v for _, v in log.miou):.2f}" if log.miou else ""
        print(f"{log.run_id}: {len(log.loss)} training points, {len(log.miou)} validation points{last}{best}")
        for note in log.notes:
            print(f"  note: {note}")
    print(out)
    return 0

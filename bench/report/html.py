"""The report as static HTML: ``<out>/index.html`` and one page per table, ``<out>/html/<table>.html``.

    bench report ablations/*.yaml --out reports      # build_report calls write_html; open reports/index.html

Pages are built from the same ``Table`` (``bench.report.tables``) and ``FigureResult`` (``bench.report.figures``)
objects as the Markdown, so the numbers are the ones in ``tables/*.md``. Each table page shows the table (mean,
std, n, 95% CI, Δ ref with its CI, p and significance marks), the pairwise summary line, the provenance,
the notes, the table's figures (PNG) and every run with relative links to its folder and files. Columns sort on
a click on their header (again: the other way); ``?sort=<column>&order=desc`` sorts on load and
``?click=<column>&click=...`` clicks those headers in turn (the keys are the ``data-key`` attributes of the
headers, e.g. ``miou_mean``, ``n``, ``p_ref`` or a row key such as ``memory_length``). Self-contained: CSS and
a few lines of JavaScript inline, no external assets, so the pages work offline and from ``file://``.
All text goes through ``html.escape``; links are relative and percent-encoded.
"""

from __future__ import annotations

import html
import math
import numbers
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.atomic import write_text_atomic
from bench.report.plotting import FigureResult
from bench.report.provenance import committed_files, machines_text
from bench.report.readings import best_text
from bench.report.table_files import display_frame
from bench.report.table_model import MISSING, Table
from bench.run.rundir import RunDir

PAGE_DIR = "html"
# Display column (``table_files.display_frame``) -> the numeric ``Table.frame`` column it sorts by and its data-key.
SORT_COLUMNS: dict[str, str] = {
    "mIoU (%)": "miou_mean",
    "std": "miou_std",
    "n": "n",
    "95% CI": "ci_low",
    "Δ ref": "delta_ref",
    "Δ ref 95% CI": "delta_ref_low",
    "p": "p_ref",
    "pixel agreement (%)": "pixel_agreement_mean",
    "ETC TC (%)": "etc_tc_mean",
    "mVC_8 (%)": "mvc_8_mean",
    "mVC_16 (%)": "mvc_16_mean",
    "latency ms": "latency_ms",
    "paper mIoU": "paper_miou",
    "Δ paper": "delta_paper",
}
# Per-table figure names drawn by ``bench.report.figures`` ("{t}" is the table name).
TABLE_FIGURES: tuple[str, ...] = ("{t}_miou_vs_memory_length", "{t}_bars", "qualitative_{t}")

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1400px;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .85rem; }
th, td { border-bottom: 1px solid #d0d4da; padding: .3rem .45rem; text-align: right; white-space: nowrap; }
th { background: #eef1f5; position: sticky; top: 0; }
th.sortable { cursor: pointer; user-select: none; } th.sortable:hover { background: #dde3ea; }
th[aria-sort=ascending]::after { content: " \\25B2"; } th[aria-sort=descending]::after { content: " \\25BC"; }
td.key, th.key { text-align: left; } td.runs { white-space: normal; } td.runs a { white-space: nowrap; }
details.runs summary { cursor: pointer; color: #3b73b9; white-space: nowrap; } details.runs a { display: block; }
.scroll { overflow-x: auto; } tr.ref td { background: #f4f6f9; } tr.best td { background: #e5f5e8; }
tr.oracle td { font-style: italic; }
.reading { border-left: 4px solid #3b73b9; background: #f3f7fc; padding: .6rem 1rem; }
.muted { color: #5f6670; font-size: .9rem; } code { background: #f0f0f0; padding: 0 .2rem; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; border: 1px solid #d0d4da; }
figcaption { font-size: .9rem; color: #3a3f45; }
"""

SORT_JS = """
function cellValue(row, col) {
  var v = row.cells[col].getAttribute("data-v");
  return v === null || v === "" ? null : (isNaN(Number(v)) ? v : Number(v));
}
function sortTable(table, col, descending) {
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = cellValue(a, col), y = cellValue(b, col);
    if (x === null || y === null) { return (x === null) - (y === null); }  // empty cells last
    var c = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
    return descending ? -c : c;
  });
  rows.forEach(function (r) { body.appendChild(r); });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    if (i === col) { th.setAttribute("aria-sort", descending ? "descending" : "ascending"); }
    else { th.removeAttribute("aria-sort"); }
  });
}
document.addEventListener("DOMContentLoaded", function () {
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      if (!th.classList.contains("sortable")) { return; }
      th.addEventListener("click", function () {
        sortTable(table, i, th.getAttribute("aria-sort") === "ascending");
      });
    });
  });
  var params = new URLSearchParams(window.location.search);
  function header(key) { return document.querySelector("table.sortable th[data-key='" + CSS.escape(key) + "']"); }
  var th = params.get("sort") && header(params.get("sort"));
  if (th) { sortTable(th.closest("table"), th.cellIndex, params.get("order") === "desc"); }
  params.getAll("click").forEach(function (key) { if (header(key)) { header(key).click(); } });
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _href(target: str | Path, page_dir: Path) -> str:
    """A percent-encoded link from a page in ``page_dir`` to ``target`` (relative; ``/`` kept)."""
    return quote(Path(os.path.relpath(Path(target).resolve(), page_dir.resolve())).as_posix())


def _anchor(kind: str, name: str) -> str:
    """An id attribute value safe in HTML and in a URL fragment."""
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _inline(text: str) -> str:
    """Escaped note text with Markdown `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _page(title: str, body: str, script: bool = False) -> str:
    js = f"<script>{SORT_JS}</script>\n" if script else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{_e(title)}</title>\n'
        f"<style>{CSS}</style>\n{js}</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _sort_value(frame_value: Any, text: str) -> str:
    """The ``data-v`` of a cell: its number when it has one ("" when missing), else its text."""
    if isinstance(frame_value, numbers.Real) and not isinstance(frame_value, bool):
        return "" if math.isnan(float(frame_value)) else repr(float(frame_value))
    return text


def _runs_cell(run_ids: list[str]) -> str:
    """The runs of a summary row: "3 runs", unfolding to one link per run id (an id never breaks across lines;
    the table stays readable at 1400 px however many seeds a row has)."""
    links = "".join(f'<a href="#{_anchor("run", r)}">{_e(r)}</a>' for r in run_ids)
    count = f"{len(run_ids)} run{'s' * (len(run_ids) != 1)}"
    return f'<details class="runs"><summary>{count}</summary>{links}</details>'


def table_html(table: Table) -> str:
    """The sortable summary table: the cells of ``display_frame`` plus a column of run links."""
    shown = display_frame(table)
    frame = table.frame
    keys = set(table.key_columns)
    head = (
        "".join(
            f'<th class="sortable{" key" if c in keys else ""}" data-key="{_e(SORT_COLUMNS.get(c, c))}" '
            f'scope="col">{_e(c)}</th>'
            for c in shown.columns
        )
        + '<th class="key" scope="col">runs</th>'
    )
    rows = []
    for i in shown.index:
        cells = []
        for column in shown.columns:
            text = str(shown.loc[i, column])
            number = frame.loc[i, SORT_COLUMNS.get(column, column)]
            if column == "Δ ref" and i == table.reference:
                number = 0.0  # the reference row differs from itself by 0
            cls = ' class="key"' if column in keys else ""
            cells.append(f'<td{cls} data-v="{_e(_sort_value(number, text))}">{_e(text)}</td>')
        cells.append(f'<td class="key runs">{_runs_cell(str(frame.loc[i, "run_ids"]).split())}</td>')
        best = table.best is not None and table.best.found and table.best.index == i
        cls = (
            ' class="best"'
            if best
            else ' class="ref"'
            if i == table.reference
            else ' class="oracle"'
            if frame.loc[i, "oracle"]
            else ""
        )
        rows.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="sortable" id="summary">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table></div>"
    )


def _run_links(run_dir: Any, page_dir: Path) -> str:
    """Links to a run's files that its git commit holds (they exist in a fresh clone); for a run whose files are
    not committed, "run not committed" and the links to this machine's copy, marked local."""
    if not run_dir or not Path(run_dir).is_dir():
        return "run not committed (no local copy)"
    files = RunDir(run_dir).reported_files()
    committed = committed_files(files)
    links = " · ".join(f'<a href="{_href(path, page_dir)}">{_e(path.name)}</a>' for path in files if path in committed)
    if committed and len(committed) == len(files):
        return links
    local = " · ".join(
        [f'<a href="{_href(run_dir, page_dir)}/">folder</a>']
        + [f'<a href="{_href(path, page_dir)}">{_e(path.name)}</a>' for path in files if path not in committed]
    )
    shown = f"{links} · " if links else ""
    return f'{shown}<span class="muted">run not committed (local copy: {local})</span>'


def runs_html(table: Table, page_dir: Path) -> str:
    """One row per run: id, seed, mIoU, and relative links to its folder and the files it has."""
    rows = []
    for _, run in table.runs.iterrows():
        run_id, run_dir = str(run["run_id"]), run.get("run_dir")
        links = _run_links(run_dir, page_dir)
        miou = MISSING if math.isnan(run["miou"]) else f"{run['miou']:.2f}"
        rows.append(
            f'<tr id="{_anchor("run", run_id)}"><td class="key" data-v="{_e(run_id)}"><code>{_e(run_id)}'
            f'</code></td><td data-v="{_e(_sort_value(run["seed"], str(run["seed"])))}">{_e(run["seed"])}</td>'
            f'<td data-v="{_sort_value(run["miou"], miou)}">{_e(miou)}</td>'
            f'<td class="key">{links}</td></tr>'
        )
    return (
        '<table class="sortable" id="runs">\n<thead><tr><th class="sortable key" data-key="run_id">run</th>'
        '<th class="sortable" data-key="seed">seed</th><th class="sortable" data-key="miou">mIoU (%)</th>'
        '<th class="key">files</th></tr></thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody>\n</table>"
    )


def figure_html(fig: FigureResult, page_dir: Path) -> str:
    """A PNG with its reading as the caption and links to every saved format; the reason when not drawn."""
    if not fig.paths:
        return f'<p class="muted"><strong>{_e(fig.name)}</strong>: not drawn: {_e(fig.reading)}</p>'
    png = next((p for p in fig.paths if p.suffix == ".png"), None)
    links = " · ".join(f'<a href="{_href(p, page_dir)}">{_e(p.suffix[1:])}</a>' for p in fig.paths)
    img = f'<img src="{_href(png, page_dir)}" alt="{_e(fig.name)}">' if png else ""
    return (
        f'<figure id="{_anchor("fig", fig.name)}">{img}<figcaption><strong>{_e(fig.name)}</strong> ({links}): '
        f"{_e(fig.reading)}</figcaption></figure>"
    )


def table_figures(table: Table, figures: list[FigureResult]) -> list[FigureResult]:
    """The figures drawn for this table, and the per-class heatmaps of its datasets."""
    names = {pattern.format(t=table.name) for pattern in TABLE_FIGURES}
    names |= {f"per_class_iou_{d}" for d in table.runs["dataset"].dropna().astype(str).unique()}
    return [f for f in figures if f.name in names]


def table_page(table: Table, paths: dict[str, Path], figures: list[FigureResult], page_dir: Path) -> str:
    """The body of ``html/<table>.html``."""
    files = " · ".join(f'<a href="{_href(p, page_dir)}">{_e(ext)}</a>' for ext, p in paths.items())
    notes = "\n".join(f"<li>{_inline(n)}</li>" for n in table.notes)
    drawn = (
        "\n".join(figure_html(f, page_dir) for f in table_figures(table, figures))
        or '<p class="muted">no figure for this table</p>'
    )
    return (
        f'<p><a href="../index.html">← all tables</a></p>\n<h1>{_e(table.name)}</h1>\n'
        f'<p class="muted">source <code>{_e(table.origin)}</code> · ablation {_e(table.ablation)} · '
        f"{files} · click a column header to sort</p>\n"
        f'<p class="reading" id="best">{_e(best_text(table))}.</p>\n'
        f'<p class="muted" id="provenance">{_inline(table.provenance)}</p>\n{table_html(table)}\n'
        f"<h2>Notes</h2>\n<ul>\n{notes}\n</ul>\n<h2>Figures</h2>\n{drawn}\n"
        f"<h2>Runs</h2>\n{runs_html(table, page_dir)}"
    )


def index_page(entries: dict[str, dict[str, dict[str, Any]]], out: Path) -> str:
    """The body of ``index.html``: every table of ``entries`` (``bench.report.publish``: this report's and those
    already in the folder) with its page and reading, then every figure."""
    items = []
    for name, entry in entries["tables"].items():
        files = " · ".join(f'<a href="{_href(out / p, out)}">{_e(ext)}</a>' for ext, p in entry["files"].items())
        title = f"<strong>{_e(name)}</strong>"
        if entry.get("page"):
            title = f'<a href="{_href(out / entry["page"], out)}">{title}</a>'
        counts = f"{entry['rows']} rows, {entry['runs']} runs; " if entry.get("rows") is not None else ""
        items.append(f"<li>{title} ({_e(entry['ablation'])}; {counts}{files}): {_e(entry['reading'])}.</li>")
    figures = [
        FigureResult(name, [out / p for p in e["files"]], e["reading"]) for name, e in entries["figures"].items()
    ]
    drawn = "\n".join(figure_html(f, out) for f in figures) or '<p class="muted">no figures</p>'
    differ = machines_text(entries["tables"])
    provenance = f'<h2>Provenance</h2>\n<p class="reading" id="machines">{_e(differ)}.</p>\n' if differ else ""
    return (
        '<h1>Reports</h1>\n<p class="muted">Generated by <code>bench report</code>; regenerate rather than '
        "edit. The same numbers as <code>index.md</code>.</p>\n"
        f"<h2>Tables</h2>\n<ul>\n{''.join(items)}\n</ul>\n{provenance}<h2>Figures</h2>\n{drawn}"
    )


def write_html(
    out_dir: str | Path, tables: list[tuple[Table, dict[str, Path]]], figures: list[FigureResult]
) -> dict[str, Path]:
    """``<out_dir>/html/<table>.html`` for each table (atomic writes): ``{table name: page}``."""
    out = Path(out_dir)
    page_dir = out / PAGE_DIR
    written: dict[str, Path] = {}
    for table, paths in tables:
        page = page_dir / f"{table.name}.html"
        write_text_atomic(
            page, _page(f"{table.name} — report", table_page(table, paths, figures, page_dir), script=True)
        )
        written[table.name] = page
    return written


def write_html_index(out_dir: str | Path, entries: dict[str, dict[str, dict[str, Any]]]) -> Path:
    """``<out_dir>/index.html`` from the merged index entries (atomic)."""
    out = Path(out_dir)
    return write_text_atomic(out / "index.html", _page("Reports", index_page(entries, out)))
